// SPDX-License-Identifier: GPL-2.0
/* `tapir inspect`: which cgroups a running daemon watches, as what, with what in flight. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/types.h>

#include "tapir/http.h"
#include "cgroups.h"
#include "identity.h"
#include "inspect.h"
#include "loader.h"
#include "resources.h"

struct seen {
	__u64 id;
	struct tapir_cgroup_info info;
	char path[512];
	unsigned int conns, listening;
	long long inflight, websockets; /* summed over the cgroup's connections */
};

static struct seen *rows;
static size_t n_rows;
static size_t root_len;

static void name_cgroup(void *ctx, const char *path, int fd)
{
	uint64_t id;
	size_t i;

	if (tapir_cgroup_id_fd(fd, &id))
		return;
	for (i = 0; i < n_rows; i++)
		if (rows[i].id == id)
			snprintf(rows[i].path, sizeof(rows[i].path), "%s",
				 path[root_len] ? path + root_len : "/");
}

static int open_pin(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return bpf_obj_get(path);
}

static struct seen *row(__u64 id)
{
	size_t i;

	for (i = 0; i < n_rows; i++)
		if (rows[i].id == id)
			return &rows[i];
	return NULL;
}

/* "pod=UID qos=Q container=ID runtime=R", "sandbox" for a pod's pause container, "-" else. */
static void identity(const char *rel, char *buf, size_t len)
{
	struct tapir_identity id;
	char root[512], dir[1024];

	if (tapir_identity_parse(rel, &id) || (!id.pod_uid[0] && !id.container_id[0])) {
		snprintf(buf, len, "-");
		return;
	}
	if (id.container_id[0] && !tapir_cgroup2_mount(root, sizeof(root))) {
		snprintf(dir, sizeof(dir), "%s%s", root, rel);
		if (tapir_cgroup_is_sandbox(dir)) {
			snprintf(buf, len, "sandbox pod=%s", id.pod_uid);
			return;
		}
	}
	snprintf(buf, len, "pod=%s qos=%s container=%.12s runtime=%s",
		 id.pod_uid[0] ? id.pod_uid : "-", tapir_qos_name(id.qos),
		 id.container_id[0] ? id.container_id : "-", tapir_runtime_name(id.runtime));
}

int tapir_inspect(const char *pin_dir, const struct tapir_config *cfg, FILE *out)
{
	char ident[256];
	int wfd = open_pin(pin_dir, "watched_cgroups"), cfd = open_pin(pin_dir, "conns");
	int lfd = open_pin(pin_dir, "listeners");
	__u64 key, next, *prev = NULL, cg;
	struct tapir_conn_key ck, cnext, *cprev = NULL;
	struct tapir_conn c;
	char root[512];
	size_t i, cap = 0;
	int err = 0;

	if (wfd < 0) {
		err = -errno;
		fprintf(stderr, "tapir inspect: no maps pinned under %s (is tapir running?): %s\n",
			pin_dir, strerror(errno));
		goto out;
	}
	if (tapir_pin_dir_owned(pin_dir) == 0) {
		/* The maps outlive a daemon killed with -9: their figures froze when it died. */
		err = -ESRCH;
		fprintf(stderr,
			"tapir inspect: no running tapir owns the maps pinned under %s: they are "
			"left from a daemon that died, and what they show is stale\n",
			pin_dir);
		goto out;
	}
	while (bpf_map_get_next_key(wfd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (n_rows == cap) {
			cap = cap ? 2 * cap : 64;
			rows = realloc(rows, cap * sizeof(*rows));
			if (!rows) {
				err = -ENOMEM;
				goto out;
			}
		}
		memset(&rows[n_rows], 0, sizeof(*rows));
		rows[n_rows].id = key;
		strcpy(rows[n_rows].path, "?");
		if (!bpf_map_lookup_elem(wfd, &key, &rows[n_rows].info))
			n_rows++;
	}
	while (cfd >= 0 && bpf_map_get_next_key(cfd, cprev, &cnext) == 0) {
		struct seen *r;

		ck = cnext;
		cprev = &ck;
		if (bpf_map_lookup_elem(cfd, &ck, &c) || (c.flags & TAPIR_CF_UNTRACKED) ||
		    !(r = row(c.cgroup_id)))
			continue; /* a reserved slot is no connection */
		r->conns++;
		if (c.flags & TAPIR_CF_CLIENT)
			continue; /* its own outbound requests: not in flight as served ones */
		r->inflight += tapir_conn_in_flight(&c);
		r->websockets += c.state == TAPIR_CONN_UPGRADED;
	}
	prev = NULL;
	while (lfd >= 0 && bpf_map_get_next_key(lfd, prev, &next) == 0) {
		struct seen *r;

		key = next;
		prev = &key;
		if (!bpf_map_lookup_elem(lfd, &key, &cg) && (r = row(cg)))
			r->listening++;
	}
	if (!tapir_cgroup2_mount(root, sizeof(root))) {
		root_len = strlen(root);
		tapir_cgroup_walk(root, name_cgroup, NULL);
	}
	fprintf(out, "%-20s %-40s %-24s %8s %5s %6s %6s  %s\n", "CGROUP_ID", "PATH", "MODEL_NAME",
		"INFLIGHT", "WS", "CONNS", "LISTEN", "IDENTITY");
	for (i = 0; i < n_rows; i++) {
		const struct seen *r = &rows[i];
		const char *model = "?";
		size_t k;

		/* The static model_name of the rule matching the path ("-" when it comes from the
		 * environment or is empty); the daemon's interned label sets stay in the daemon. */
		for (k = 0; k < cfg->n_rules; k++) {
			if (!tapir_cgroup_matches(cfg->rules[k].cgroup, r->path))
				continue;
			model = cfg->rules[k].labels[TAPIR_L_MODEL_NAME];
			model = *model ? model : "-";
			break;
		}

		identity(r->path, ident, sizeof(ident));
		fprintf(out, "%-20llu %-40s %-24s %8lld %5lld %6u %6u  %s\n",
			(unsigned long long)r->id, r->path, model, (long long)r->inflight,
			(long long)r->websockets, r->conns, r->listening, ident);
	}
out:
	free(rows);
	rows = NULL;
	n_rows = 0;
	if (wfd >= 0)
		close(wfd);
	if (cfd >= 0)
		close(cfd);
	if (lfd >= 0)
		close(lfd);
	return err;
}
