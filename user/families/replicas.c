// SPDX-License-Identifier: GPL-2.0
/* Replicas: what each container costs, whether it is up, and how often it died, per deployment. */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "identity.h"
#include "podmeta.h"
#include "log.h"
#include "labels.h"
#include "procfs.h"
#include "replica_table.h"
#include "grow.h"
#include "replicas.h"
#include "resources.h"

#define USAGE_EVERY_MS	 1000	 /* container figures are refreshed this often between scrapes */
#define TICK_BUDGET_NS	 2000000 /* cgroupfs reads per main-loop turn */
#define SCRAPE_BUDGET_NS 1000000 /* cgroupfs reads per scrape; the rest come from the turns */
#define GONE_GRACE_MS \
	60000 /* a vanished replica's series stay this long (and its name, to
			       recognise a restart in a new cgroup) */
/* Each family's own labels, after deployment_id (labels.h). */
static const char *const rep_extra[] = { "replica" };
static const char *const exit_extra[] = { "replica", "reason" };
static const char *const ready_extra[] = { "condition" };
static const char *const gpu_extra[] = { "replica", "gpu" };
#define N(a) (sizeof(a) / sizeof((a)[0]))

const char *tapir_exit_reason(int32_t status, int oom)
{
	if (oom)
		return "oom";
	if (status & 0x7f)
		return "signal";
	return (status >> 8) & 0xff ? "error" : "clean";
}

struct tapir_replicas *tapir_replicas__new(struct tapir_registry *reg,
					   const struct tapir_config *cfg, struct tapir_cgroups *cg)
{
	struct tapir_replicas *rs = calloc(1, sizeof(*rs));
	const char *rep_labels[TAPIR_LABELS_MAX], *dep_labels[TAPIR_LABELS_MAX];
	const char *exit_labels[TAPIR_LABELS_MAX], *ready_labels[TAPIR_LABELS_MAX];
	const char *gpu_labels[TAPIR_LABELS_MAX];
	size_t n_rep = tapir_labels(rep_labels, tapir_label_names, rep_extra, N(rep_extra));
	size_t n_dep = tapir_labels(dep_labels, tapir_label_names, NULL, 0);
	size_t n_exit = tapir_labels(exit_labels, tapir_label_names, exit_extra, N(exit_extra));
	size_t n_ready = tapir_labels(ready_labels, tapir_label_names, ready_extra, N(ready_extra));
	size_t n_gpu = tapir_labels(gpu_labels, tapir_label_names, gpu_extra, N(gpu_extra));

	if (!rs)
		return NULL;
	rs->cfg = cfg;
	rs->cg = cg;
	rs->cpu = tapir_registry__family(
		reg, "baseten_container_cpu_usage_seconds_total",
		"Cumulative CPU time consumed by the container in core-seconds.", TAPIR_COUNTER,
		rep_labels, n_rep, NULL, 0);
	rs->mem = tapir_registry__family(reg, "baseten_container_cpu_memory_working_set_bytes",
					 "Working set memory usage of the container in bytes.",
					 TAPIR_GAUGE, rep_labels, n_rep, NULL, 0);
	rs->restarts = tapir_registry__family(
		reg, "baseten_container_restarts_total",
		"Cumulative number of times the model container has been restarted.", TAPIR_COUNTER,
		dep_labels, n_dep, NULL, 0);
	rs->exits = tapir_registry__family(
		reg, "tapir_container_exits_total",
		"Exits of a container's main process, by reason: oom, signal, error or clean.",
		TAPIR_COUNTER, exit_labels, n_exit, NULL, 0);
	rs->active = tapir_registry__family(reg, "baseten_replicas_active",
					    "Number of replicas ready to serve model requests.",
					    TAPIR_GAUGE, dep_labels, n_dep, NULL, 0);
	rs->starting = tapir_registry__family(
		reg, "baseten_replicas_starting",
		"Number of replicas starting up: seen, and not ready since they appeared.",
		TAPIR_GAUGE, dep_labels, n_dep, NULL, 0);
	rs->readiness = tapir_registry__family(
		reg, "baseten_pod_readiness",
		"Number of pods grouped by their Ready condition, as tapir observes it.",
		TAPIR_GAUGE, ready_labels, n_ready, NULL, 0);
	rs->gpu_mem =
		tapir_registry__family(reg, "baseten_gpu_memory_used", "GPU memory used in MiB.",
				       TAPIR_GAUGE, gpu_labels, n_gpu, NULL, 0);
	rs->gpu_util =
		tapir_registry__family(reg, "baseten_gpu_utilization",
				       "GPU utilization as a percentage (between 0 and 100).",
				       TAPIR_GAUGE, gpu_labels, n_gpu, NULL, 0);
	if (!rs->cpu || !rs->mem || !rs->restarts || !rs->exits || !rs->active || !rs->starting ||
	    !rs->readiness || !rs->gpu_mem || !rs->gpu_util) {
		free(rs);
		errno = EINVAL;
		return NULL;
	}
	tapir_resources_init();
	return rs;
}

static void drop_series(struct tapir_replicas *rs, struct replica *r)
{
	size_t i;

	tapir_series__remove(rs->cpu, r->cpu);
	tapir_series__remove(rs->mem, r->mem);
	r->cpu = r->mem = NULL;
	for (i = 0; i < 4; i++) {
		tapir_series__remove(rs->exits, r->exits[i]);
		r->exits[i] = NULL;
	}
	for (i = 0; i < rs->n_gpus; i++) {
		if (rs->gpus[i].replica_id != r->id)
			continue;
		tapir_series__remove(rs->gpu_mem, rs->gpus[i].mem);
		tapir_series__remove(rs->gpu_util, rs->gpus[i].util);
		rs->gpus[i--] = rs->gpus[--rs->n_gpus];
	}
}

static void drop(struct tapir_replicas *rs, struct replica *r)
{
	drop_series(rs, r);
	free(r->rel);
}

void tapir_replicas__free(struct tapir_replicas *rs)
{
	size_t i;

	if (!rs)
		return;
	for (i = 0; i < rs->n; i++)
		free(rs->r[i].rel);
	free(rs->r);
	free(rs->dep);
	free(rs);
}

static struct replica *find(struct tapir_replicas *rs, uint64_t id)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		if (rs->r[i].id == id)
			return &rs->r[i];
	return NULL;
}

/* The replica a cgroup belongs to. */
static struct replica *of_cgroup(struct tapir_replicas *rs, uint64_t cgroup_id)
{
	const struct tapir_watched *w = tapir_cgroups__find(rs->cg, cgroup_id);

	return w ? find(rs, w->replica_id) : NULL;
}

static const char *const *labels(struct tapir_replicas *rs, uint32_t labels_id)
{
	return tapir_cgroups__labels(rs->cg, labels_id);
}

bool tapir_replica_values(struct tapir_replicas *rs, const struct replica *r, const char **v,
			  const char *more)
{
	const char *const *l = labels(rs, r->labels_id);
	const char *extra[2] = { r->name, more };

	if (!l)
		return false;
	tapir_labels(v, l, extra, more ? 2 : 1);
	return true;
}

static void dep_values(const char *const *l, const char **v, const char *extra)
{
	tapir_labels(v, l, &extra, extra ? 1 : 0);
}

static void count_restart(struct tapir_replicas *rs, uint32_t labels_id)
{
	const char *const *l = labels(rs, labels_id);
	const char *v[TAPIR_LABELS_MAX];

	if (!l)
		return;
	dep_values(l, v, NULL);
	tapir_series__add(tapir_series__get(rs->restarts, v), 1);
}

static struct replica *add(struct tapir_replicas *rs, const struct tapir_watched *w,
			   uint64_t now_ms)
{
	struct tapir_identity ident = { 0 };
	char dir[4608];
	struct replica *r;
	size_t i;

	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 16;
		struct replica *nr = realloc(rs->r, cap * sizeof(*nr));

		if (!nr)
			return NULL;
		rs->r = nr;
		rs->cap = cap;
	}
	r = &rs->r[rs->n];
	memset(r, 0, sizeof(*r));
	r->rel = strdup(w->rel);
	if (!r->rel)
		return NULL;
	rs->n++;
	r->id = w->id;
	r->labels_id = w->labels_id;
	/* The replica label: a container's short id or a plain service's unit name where the
	 * path says so (systemd, containerd, CRI-O, Docker layouts), else the directory name. */
	/* A pod-level replica (its containers below it) is named after its pod once the kubelet
	 * tells the name; a container-level one keeps its container id, which stays unique
	 * when a pod has several containers. */
	if (tapir_identity_parse(w->rel, &ident) == 0 && ident.is_pod)
		snprintf(r->pod_uid, sizeof(r->pod_uid), "%s", ident.pod_uid);
	r->pod_named = !r->pod_uid[0];
	tapir_cgroup_name(w->rel, r->name, sizeof(r->name));
	r->present = true;
	r->appeared_ms = now_ms;
	r->probe_ok = r->request_ok = -1;
	r->probe_ns = r->request_ns = 0;
	snprintf(dir, sizeof(dir), "%s%s", tapir_cgroups__root(rs->cg), w->rel);
	r->main_pid = tapir_cgroup_first_pid(dir);
	r->checked = r->main_pid != 0;
	r->sandbox = r->checked && tapir_cgroup_is_sandbox(dir);
	/* The same replica name back in a new cgroup after its old one went: a restart. */
	for (i = 0; i + 1 < rs->n; i++) {
		struct replica *old = &rs->r[i];

		if (old->present || old->replaced || old->labels_id != r->labels_id ||
		    strcmp(old->name, r->name))
			continue;
		count_restart(rs, r->labels_id);
		old->replaced = true; /* forgotten at the next sync */
		break;
	}
	pr_debug("replica %s appeared (main pid %u)", r->name, r->main_pid);
	return r;
}

void tapir_replicas__set_kube(struct tapir_replicas *rs, struct tapir_podmeta *kube)
{
	rs->kube = kube;
}

void tapir_replicas__sync(struct tapir_replicas *rs, uint64_t now_ms)
{
	char name[sizeof(((struct replica *)0)->name)];
	const struct tapir_watched *w;
	struct replica *r;
	size_t n, i, j;

	for (i = 0; i < rs->n; i++)
		rs->r[i].present = false;
	w = tapir_cgroups__watched(rs->cg, &n);
	for (i = 0; i < n; i++) {
		if (w[i].replica_id != w[i].id)
			continue;
		r = find(rs, w[i].id);
		if (!r) {
			add(rs, &w[i], now_ms);
			continue;
		}
		r->present = true;
		if (r->labels_id != w[i].labels_id) {
			/* Relabelled (from its environment): its series start again. */
			drop_series(rs, r);
			r->labels_id = w[i].labels_id;
		}
		/* A replica of a pod is named after the pod once the kubelet told its name. */
		if (!r->pod_named && rs->kube &&
		    tapir_podmeta__pod_name(rs->kube, r->pod_uid, name, sizeof(name))) {
			r->pod_named = true;
			if (strcmp(name, r->name)) {
				drop_series(rs, r);
				snprintf(r->name, sizeof(r->name), "%s", name);
			}
		}
	}
	for (i = j = 0; i < rs->n; i++) {
		r = &rs->r[i];
		if (r->present) {
			r->gone_ms = 0;
		} else if (!r->gone_ms) {
			r->gone_ms = now_ms;
		}
		if (!r->present &&
		    (r->replaced ||
		     now_ms - r->gone_ms >= (uint64_t)rs->cfg->series_grace_s * 1000)) {
			drop(rs, r);
			continue;
		}
		rs->r[j++] = *r;
	}
	rs->n = j;
}

void tapir_replicas__lifecycle(struct tapir_replicas *rs, const struct tapir_lifecycle_event *e,
			       uint64_t now_ms)
{
	struct replica *r = of_cgroup(rs, e->cgroup_id);
	const char *v[TAPIR_LABELS_MAX], *reason;
	int k;

	if (!r)
		return;
	switch (e->what) {
	case TAPIR_LC_EXEC:
		if (r->main_pid)
			return; /* a child of the running main process */
		if (r->main_dead)
			count_restart(rs, r->labels_id);
		r->main_pid = e->tgid;
		r->main_dead = false;
		break;
	case TAPIR_LC_EXIT:
		if (e->tgid != r->main_pid)
			return;
		reason = tapir_exit_reason(e->code, !!(e->aux & TAPIR_LC_F_OOM));
		k = reason[0] == 'o' ? 0 : reason[0] == 's' ? 1 : reason[0] == 'e' ? 2 : 3;
		if (!r->exits[k]) {
			if (!tapir_replica_values(rs, r, v, reason))
				break;
			r->exits[k] = tapir_series__get(rs->exits, v);
		}
		tapir_series__add(r->exits[k], 1);
		pr_info("replica %s: main process %u exited (%s, status 0x%x)", r->name, e->tgid,
			reason, e->code);
		r->main_pid = 0;
		r->main_dead = true;
		r->last_signal_ms = now_ms;
		break;
	case TAPIR_LC_LISTEN: r->last_signal_ms = now_ms; break;
	}
}

/* Is the request line's path one of the configured readiness probe paths? */
static bool is_probe(const struct tapir_config *cfg, const __u8 *line)
{
	char path[TAPIR_LINE_BYTES + 1];
	size_t i, j = 0, k;

	for (i = 0; i < TAPIR_LINE_BYTES && line[i] && line[i] != ' '; i++)
		;
	for (i++; i < TAPIR_LINE_BYTES && line[i] && line[i] != ' ' && line[i] != '?'; i++)
		path[j++] = line[i];
	path[j] = '\0';
	for (k = 0; k < cfg->n_probe_paths; k++)
		if (!strcmp(path, cfg->probe_paths[k]))
			return true;
	return false;
}

void tapir_replicas__signal(struct tapir_replicas *rs, uint64_t replica_id, bool probe,
			    uint16_t status, uint64_t end_ns)
{
	struct replica *r = find(rs, replica_id);
	int ok = status >= 200 && status < 300;

	if (!r)
		return;
	if (probe && end_ns >= r->probe_ns) {
		r->probe_ok = ok;
		r->probe_ns = end_ns;
	} else if (!probe && end_ns >= r->request_ns) {
		r->request_ok = ok;
		r->request_ns = end_ns;
	}
	if (end_ns / 1000000 > r->last_signal_ms)
		r->last_signal_ms = end_ns / 1000000;
}

void tapir_replicas__request(struct tapir_replicas *rs, uint64_t replica_id,
			     const struct tapir_http_event *e)
{
	tapir_replicas__signal(rs, replica_id, is_probe(rs->cfg, e->line),
			       tapir_status_label(e->outcome, e->status), e->end_ns);
}

struct seed_ctx {
	uint64_t cgroup_id;
	int listeners_fd;
};

static void seed_listener(void *ctx, const struct tapir_proc_sock *s)
{
	const struct seed_ctx *c = ctx;
	__u64 key = s->inode;

	if (s->state == TAPIR_TCP_LISTEN)
		bpf_map_update_elem(c->listeners_fd, &key, &c->cgroup_id, BPF_NOEXIST);
}

/* Sockets that were listening before tapir started, so readiness does not wait for a relisten. */
static void seed_pid(int pid, uint64_t cgroup_id, int listeners_fd)
{
	struct seed_ctx c = { cgroup_id, listeners_fd };

	tapir_proc_tcp_fds(pid, seed_listener, &c);
}

void tapir_replicas__seed_listeners(struct tapir_replicas *rs, int listeners_fd)
{
	const struct tapir_watched *w;
	char path[4608];
	size_t n, i;
	FILE *f;
	int pid;

	if (listeners_fd < 0)
		return;
	w = tapir_cgroups__watched(rs->cg, &n);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s%s/cgroup.procs", tapir_cgroups__root(rs->cg),
			 w[i].rel);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fscanf(f, "%d", &pid) == 1)
			seed_pid(pid, w[i].id, listeners_fd);
		fclose(f);
	}
}

static void count_listeners(struct tapir_replicas *rs, int listeners_fd)
{
	__u64 key, next, *prev = NULL, cgid;
	struct replica *r;
	size_t i;

	for (i = 0; i < rs->n; i++)
		rs->r[i].listening = 0;
	if (listeners_fd < 0)
		return;
	while (bpf_map_get_next_key(listeners_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(listeners_fd, &key, &cgid))
			continue;
		r = of_cgroup(rs, cgid);
		if (r)
			r->listening++;
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Is @r shown (its figures worth reading)? Without rules every cgroup is watched, and only
 * those that served HTTP are shown. */
static bool shown_replica(struct tapir_replicas *rs, const struct replica *r, size_t nl)
{
	return r->present && !r->sandbox && r->labels_id < nl &&
	       (rs->cfg->n_rules > 0 || tapir_cgroups__served(rs->cg, r->labels_id));
}

/*
 * Read the cgroupfs figures (first process, CPU, memory) of replicas whose figures are at least
 * @min_age_ms old, round robin from where the last call stopped, for about @budget_ns at most.
 * A few containers are all read at every scrape; a thousand are read a slice per main-loop turn,
 * so that neither a scrape nor the drain of records waits for a thousand cgroup directories.
 */
static void read_figures(struct tapir_replicas *rs, uint64_t now_ms, uint64_t min_age_ms,
			 uint64_t budget_ns)
{
	size_t nl = tapir_cgroups__n_labelsets(rs->cg), k, n = rs->n;
	uint64_t t0 = mono_ns();
	struct replica *r;

	for (k = 0; k < n; k++) {
		bool io = false;

		r = &rs->r[(rs->cursor + k) % n];
		if (!r->checked && r->present && now_ms - r->checked_ms >= USAGE_EVERY_MS) {
			char dir[4608];

			r->checked_ms = now_ms;
			snprintf(dir, sizeof(dir), "%s%s", tapir_cgroups__root(rs->cg), r->rel);
			if (tapir_cgroup_first_pid(dir)) {
				r->checked = true;
				r->sandbox = tapir_cgroup_is_sandbox(dir);
			}
			io = true;
		}
		if (shown_replica(rs, r, nl) &&
		    (!r->usage_ms || now_ms - r->usage_ms >= min_age_ms)) {
			tapir_containers_usage(rs, r);
			r->usage_ms = now_ms;
			io = true;
		}
		/* The look for a first process counts too: a thousand empty cgroups are a
		 * thousand directory reads. */
		if (io && mono_ns() - t0 > budget_ns) {
			k++;
			break;
		}
	}
	rs->cursor = n ? (rs->cursor + k) % n : 0;
}

void tapir_replicas__tick(struct tapir_replicas *rs, uint64_t now_ms)
{
	read_figures(rs, now_ms, USAGE_EVERY_MS, TICK_BUDGET_NS);
}

static const char *const conditions[] = { "true", "false", "unknown" };

/*
 * The deployment-level series of label set @id (values @l), looked up where missing and kept
 * until the set is forgotten; NULL without memory for them.
 */
static struct dep_series *dep_series(struct tapir_replicas *rs, uint32_t id, const char *const *l)
{
	const char *v[TAPIR_LABELS_MAX];
	struct dep_series *ds;
	int c;

	if (tapir_grow_zeroed((void **)&rs->dep, &rs->n_dep, id, sizeof(*ds)))
		return NULL;
	ds = &rs->dep[id];
	if (!ds->active || !ds->starting) {
		dep_values(l, v, NULL);
		if (!ds->active)
			ds->active = tapir_series__get(rs->active, v);
		if (!ds->starting)
			ds->starting = tapir_series__get(rs->starting, v);
	}
	for (c = 0; c < 3; c++) {
		if (ds->readiness[c])
			continue;
		dep_values(l, v, conditions[c]);
		ds->readiness[c] = tapir_series__get(rs->readiness, v);
	}
	return ds;
}

void tapir_replicas__refresh(struct tapir_replicas *rs, int listeners_fd, struct tapir_gpu *gpu,
			     uint64_t now_ms)
{
	size_t nl = tapir_cgroups__n_labelsets(rs->cg), i;
	double *sum = calloc(nl ? 5 * nl : 1, sizeof(*sum)); /* active, starting, t, f, u */
	uint64_t quiet_ms = (uint64_t)rs->cfg->unknown_after_s * 1000, last;
	struct replica *r;
	bool ready;
	int kready;

	if (!sum)
		return;
	/* Without rules every cgroup is watched: only those that served HTTP are shown. */
	bool all = rs->cfg->n_rules > 0, *shown = calloc(nl ? nl : 1, sizeof(*shown));

	if (!shown) {
		free(sum);
		return;
	}
	count_listeners(rs, listeners_fd);
	/* Everything not read in this very millisecond, as far as the budget goes. */
	read_figures(rs, now_ms, 1, SCRAPE_BUDGET_NS);
	for (i = 0; i < rs->n; i++) {
		r = &rs->r[i];
		if (!shown_replica(rs, r, nl))
			continue;
		shown[r->labels_id] = true;
		ready = r->listening && (r->probe_ok >= 0 ? r->probe_ok == 1 : r->request_ok == 1);
		/* The kubelet's Ready condition, where it has one for this pod, wins. */
		kready = rs->kube && r->pod_uid[0] ? tapir_podmeta__pod_ready(rs->kube, r->pod_uid)
						   : -1;
		if (kready >= 0)
			ready = kready;
		if (ready)
			r->ever_ready = true;
		last = r->last_signal_ms > r->appeared_ms ? r->last_signal_ms : r->appeared_ms;
		sum[5 * r->labels_id] += ready;
		sum[5 * r->labels_id + 1] += !ready && !r->ever_ready;
		if (now_ms - last > quiet_ms)
			sum[5 * r->labels_id + 4]++;
		else
			sum[5 * r->labels_id + (ready ? 2 : 3)]++;
	}
	for (i = 0; i < nl; i++) {
		const char *const *l = labels(rs, i);
		struct dep_series *ds;
		int c;

		if (!l || (!all && !shown[i]) || !(ds = dep_series(rs, i, l)))
			continue;
		tapir_series__set(ds->active, sum[5 * i]);
		tapir_series__set(ds->starting, sum[5 * i + 1]);
		for (c = 0; c < 3; c++)
			tapir_series__set(ds->readiness[c], sum[5 * i + 2 + c]);
	}
	free(sum);
	free(shown);
	tapir_containers_gpus(rs, gpu);
}

void tapir_replicas__forget(struct tapir_replicas *rs, uint32_t labels_id, const char *const *l)
{
	struct tapir_family *fams[] = { rs->restarts, rs->active, rs->starting };
	const char *v[TAPIR_LABELS_MAX];
	size_t i;

	dep_values(l, v, NULL);
	for (i = 0; i < 3; i++)
		tapir_series__remove(fams[i], tapir_series__get(fams[i], v));
	for (i = 0; i < 3; i++) {
		dep_values(l, v, conditions[i]);
		tapir_series__remove(rs->readiness, tapir_series__get(rs->readiness, v));
	}
	if (labels_id < rs->n_dep)
		rs->dep[labels_id] = (struct dep_series){ 0 };
}
