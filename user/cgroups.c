// SPDX-License-Identifier: GPL-2.0
/* Cgroup v2 discovery: walk the hierarchy, match rules, keep the BPF watched_cgroups map true. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "tapir/http.h"
#include "cgroups.h"
#include "log.h"

#define watched tapir_watched

struct tapir_cgroups {
	const struct tapir_config *cfg;
	int watched_fd;
	char root[512];
	size_t root_len;
	struct watched *w; /* sorted by id */
	size_t n, cap;
	uint32_t gen;
};

int tapir_cgroup2_mount(char *buf, size_t len)
{
	char line[4096], mnt[1024], fstype[64];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int found = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* "36 35 0:30 / /sys/fs/cgroup/unified rw,... shared:9 - cgroup2 cgroup2 rw" */
		char *dash = strstr(line, " - ");

		if (!dash || sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %1023s", mnt) != 1)
			continue;
		if ((size_t)snprintf(buf, len, "%s", mnt) >= len) {
			found = -ENAMETOOLONG;
			continue;
		}
		found = 0;
		break;
	}
	fclose(f);
	return found;
}

int tapir_cgroup_id(const char *path, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h;
	struct stat st;
	int mount_id;

	h.fh.handle_bytes = sizeof(h.id);
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) == 0 &&
	    h.fh.handle_bytes == sizeof(uint64_t)) {
		memcpy(id, h.fh.f_handle, sizeof(*id));
		return 0;
	}
	/* Kernels without handle support for kernfs: the inode number is the id on 64-bit. */
	if (stat(path, &st))
		return -errno;
	*id = st.st_ino;
	return 0;
}

int tapir_cgroup_matches(const char *glob, const char *rel)
{
	char path[4096];
	char *slash;

	if (snprintf(path, sizeof(path), "%s", rel) >= (int)sizeof(path))
		return 0;
	for (;;) {
		if (fnmatch(glob, path, FNM_PATHNAME) == 0)
			return 1;
		slash = strrchr(path, '/');
		if (!slash || slash == path)
			return fnmatch(glob, "/", FNM_PATHNAME) == 0;
		*slash = '\0';
	}
}

struct tapir_cgroups *tapir_cgroups__new(const struct tapir_config *cfg, int watched_fd)
{
	struct tapir_cgroups *cg = calloc(1, sizeof(*cg));
	int err;

	if (!cg)
		return NULL;
	cg->cfg = cfg;
	cg->watched_fd = watched_fd;
	err = tapir_cgroup2_mount(cg->root, sizeof(cg->root));
	if (err) {
		pr_err("no cgroup v2 hierarchy is mounted (%s); tapir needs one", strerror(-err));
		free(cg);
		errno = -err;
		return NULL;
	}
	cg->root_len = strlen(cg->root);
	while (cg->root_len > 1 && cg->root[cg->root_len - 1] == '/')
		cg->root[--cg->root_len] = '\0';
	pr_info("cgroup v2 hierarchy at %s", cg->root);
	return cg;
}

void tapir_cgroups__free(struct tapir_cgroups *cg)
{
	size_t i;

	if (!cg)
		return;
	for (i = 0; i < cg->n; i++)
		free(cg->w[i].rel);
	free(cg->w);
	free(cg);
}

static struct watched *find(const struct tapir_cgroups *cg, uint64_t id, size_t *pos)
{
	size_t lo = 0, hi = cg->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (cg->w[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return lo < cg->n && cg->w[lo].id == id ? &cg->w[lo] : NULL;
}

static int add(struct tapir_cgroups *cg, uint64_t id, uint32_t labels_id, uint64_t replica_id,
	       const char *rel)
{
	struct tapir_cgroup_info info = { .labels_id = labels_id };
	struct watched *w;
	char *copy;
	size_t pos;

	w = find(cg, id, &pos);
	if (w) {
		w->seen = cg->gen;
		return 0;
	}
	if (cg->n == cg->cap) {
		size_t cap = cg->cap ? cg->cap * 2 : 64;
		struct watched *nw = realloc(cg->w, cap * sizeof(*nw));

		if (!nw)
			return -ENOMEM;
		cg->w = nw;
		cg->cap = cap;
	}
	copy = strdup(rel);
	if (!copy)
		return -ENOMEM;
	/* NOEXIST: never reset the gauges BPF keeps in an existing entry. */
	if (bpf_map_update_elem(cg->watched_fd, &id, &info, BPF_NOEXIST) && errno != EEXIST) {
		pr_warn("cannot watch cgroup %s: %s", rel, strerror(errno));
		free(copy);
		return -errno;
	}
	memmove(&cg->w[pos + 1], &cg->w[pos], (cg->n - pos) * sizeof(*cg->w));
	cg->w[pos] = (struct watched){ .id = id,
				       .labels_id = labels_id,
				       .seen = cg->gen,
				       .replica_id = replica_id,
				       .rel = copy };
	cg->n++;
	pr_debug("watching cgroup %s (id %llu) as %s", rel, (unsigned long long)id,
		 cg->cfg->rules[labels_id].labels[TAPIR_L_MODEL_NAME]);
	return 0;
}

/* The shortest ancestor-or-self of @rel that @glob matches by itself: the replica. */
static int replica_of(struct tapir_cgroups *cg, const char *glob, const char *rel, uint64_t *id)
{
	char path[4096];
	size_t i, len = strlen(rel);

	for (i = 1; i <= len; i++) {
		if (i < len && rel[i] != '/')
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%.*s", (int)i, rel) >= sizeof(path))
			return -ENAMETOOLONG;
		if (fnmatch(glob, path, FNM_PATHNAME) == 0) {
			char abs[4608];

			snprintf(abs, sizeof(abs), "%s%s", cg->root, path);
			return tapir_cgroup_id(abs, id);
		}
	}
	return -ENOENT;
}

/* nftw() has no user pointer. Scans run on the main thread only. */
static struct tapir_cgroups *scanning;

static int visit(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	struct tapir_cgroups *cg = scanning;
	const char *rel = path + cg->root_len;
	uint64_t id, replica;
	size_t i;

	if (type != FTW_D)
		return FTW_CONTINUE;
	if (!*rel)
		rel = "/";
	for (i = 0; i < cg->cfg->n_rules; i++) {
		if (!tapir_cgroup_matches(cg->cfg->rules[i].cgroup, rel))
			continue;
		if (tapir_cgroup_id(path, &id) == 0 &&
		    replica_of(cg, cg->cfg->rules[i].cgroup, rel, &replica) == 0)
			add(cg, id, i, replica, rel);
		break;
	}
	return FTW_CONTINUE;
}

int tapir_cgroups__scan(struct tapir_cgroups *cg)
{
	size_t i, j;

	if (!cg->cfg->n_rules)
		return 0;
	cg->gen++;
	scanning = cg;
	/* A cgroup removed mid-walk makes nftw skip it, which is what we want. */
	nftw(cg->root, visit, 64, FTW_PHYS | FTW_MOUNT | FTW_ACTIONRETVAL);
	scanning = NULL;
	for (i = j = 0; i < cg->n; i++) {
		if (cg->w[i].seen == cg->gen) {
			cg->w[j++] = cg->w[i];
			continue;
		}
		bpf_map_delete_elem(cg->watched_fd, &cg->w[i].id);
		pr_debug("cgroup %s is gone", cg->w[i].rel);
		free(cg->w[i].rel);
	}
	cg->n = j;
	return (int)cg->n;
}

const char *tapir_cgroups__root(const struct tapir_cgroups *cg)
{
	return cg->root;
}

const struct tapir_watched *tapir_cgroups__watched(const struct tapir_cgroups *cg, size_t *n)
{
	*n = cg->n;
	return cg->w;
}

const struct tapir_watched *tapir_cgroups__find(const struct tapir_cgroups *cg, uint64_t id)
{
	size_t pos;

	return find(cg, id, &pos);
}

size_t tapir_cgroups__n_watched(const struct tapir_cgroups *cg)
{
	return cg->n;
}

const char *const *tapir_cgroups__labels(const struct tapir_cgroups *cg, uint32_t id)
{
	if (id >= cg->cfg->n_rules)
		return NULL;
	return (const char *const *)cg->cfg->rules[id].labels;
}

size_t tapir_cgroups__n_labelsets(const struct tapir_cgroups *cg)
{
	return cg->cfg->n_rules;
}
