// SPDX-License-Identifier: GPL-2.0
/* BPF lifecycle: probe the kernel, open -> size -> load -> attach, and drain the ring buffers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "http.skel.h"
#include "lifecycle.skel.h"
#include "loader.h"
#include "log.h"

#define MAX_PROGS 32

struct tapir_loader {
	struct http_bpf *http;
	struct lifecycle_bpf *lc; /* NULL when the lifecycle feature could not load */
	struct ring_buffer *rb;
	struct tapir_prog_status progs[MAX_PROGS];
	struct bpf_link *links[MAX_PROGS]; /* parallel to progs */
	size_t n_progs;
	char pin_dir[256]; /* "" when nothing is pinned */
};

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	if (level == LIBBPF_DEBUG && tapir_log_get_level() < TAPIR_LOG_DEBUG)
		return 0;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	tapir_log(level == LIBBPF_WARN ? TAPIR_LOG_WARN : TAPIR_LOG_DEBUG, "libbpf: %s", line);
	return 0;
}

int tapir_ensure_mount(const char *fstype, const char *dir)
{
	long want = strcmp(fstype, "bpf") == 0 ? BPF_FS_MAGIC : TRACEFS_MAGIC;
	struct statfs st;

	if (statfs(dir, &st) == 0 && (long)st.f_type == want)
		return 0;
	if (mount(fstype, dir, fstype, 0, NULL)) {
		int err = -errno;

		pr_err("cannot mount %s at %s: %s", fstype, dir, strerror(errno));
		return err;
	}
	pr_info("mounted %s at %s", fstype, dir);
	return 0;
}

static bool kernel_has_btf_type(const char *name, __u32 kind)
{
	static struct btf *vmlinux;

	if (!vmlinux)
		vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux)
		return false;
	return btf__find_by_name_kind(vmlinux, name, kind) > 0;
}

/* A syscall tracepoint's category/name from its "tracepoint/cat/name" section. */
static bool tracepoint_exists(const char *sec)
{
	char path[256];

	if (strncmp(sec, "tracepoint/", 11))
		return true;
	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s", sec + 11);
	return access(path, F_OK) == 0;
}

static void note_prog(struct tapir_loader *l, struct bpf_program *p, const char *feature,
		      const char *why)
{
	struct tapir_prog_status *s;

	if (l->n_progs >= MAX_PROGS)
		return;
	s = &l->progs[l->n_progs++];
	s->name = bpf_program__name(p);
	s->feature = feature;
	s->attached = false;
	s->why = why;
}

/* Turn off programs whose hooks this kernel lacks, so one missing hook costs one feature. */
static int probe_http(struct tapir_loader *l)
{
	bool sock_tp = kernel_has_btf_type("btf_trace_sock_recv_length", BTF_KIND_TYPEDEF) &&
		       kernel_has_btf_type("btf_trace_sock_send_length", BTF_KIND_TYPEDEF);
	struct bpf_program *p;

	if (libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_loop, NULL) != 1) {
		pr_err("this kernel lacks the bpf_loop helper (Linux 5.17+): HTTP tracing needs it");
		return -EOPNOTSUPP;
	}
	bpf_object__for_each_program (p, l->http->obj) {
		const char *sec = bpf_program__section_name(p);
		const char *why = NULL;

		if (!strncmp(sec, "tp_btf/", 7) && !sock_tp)
			why = "kernel lacks sock_{send,recv}_length (6.3+); fd-table fallback in use";
		else if (!tracepoint_exists(sec))
			why = "tracepoint not present in this kernel";
		if (why)
			bpf_program__set_autoload(p, false);
		note_prog(l, p, "http", why);
	}
	return 0;
}

static int open_http(struct tapir_loader *l, const struct tapir_config *cfg)
{
	int err;

	l->http = http_bpf__open();
	if (!l->http)
		return -errno;
	err = probe_http(l);
	if (err)
		return err;
	bpf_map__set_max_entries(l->http->maps.conns, cfg->max_connections);
	bpf_map__set_max_entries(l->http->maps.events, cfg->ringbuf_bytes);
	/* Wake the reader early only when the ring is an eighth full; otherwise it drains on
	 * its own short timer, which keeps wake-ups off the traced server's hot path. */
	l->http->rodata->wakeup_bytes = cfg->ringbuf_bytes / 8;
	l->http->rodata->self_tgid = getpid();
	err = http_bpf__load(l->http);
	if (err) {
		pr_err("loading the HTTP BPF programs failed: %s", strerror(-err));
		return err;
	}
	return 0;
}

/*
 * The lifecycle feature (cgroups, processes, listening sockets) is optional: without it, new
 * cgroups are found by periodic rescans and restarts and readiness are not tracked. Programs
 * whose tracepoint is missing are turned off one by one.
 */
static void open_lifecycle(struct tapir_loader *l)
{
	struct bpf_program *p;
	int err;

	l->lc = lifecycle_bpf__open();
	if (!l->lc) {
		pr_warn("lifecycle programs did not open: %s", strerror(errno));
		return;
	}
	bpf_object__for_each_program (p, l->lc->obj) {
		const char *why = tracepoint_exists(bpf_program__section_name(p))
					  ? NULL
					  : "tracepoint not present in this kernel";

		if (why)
			bpf_program__set_autoload(p, false);
		note_prog(l, p, "lifecycle", why);
	}
	err = bpf_map__reuse_fd(l->lc->maps.watched_cgroups,
				bpf_map__fd(l->http->maps.watched_cgroups));
	if (!err)
		err = lifecycle_bpf__load(l->lc);
	if (err) {
		pr_warn("lifecycle programs did not load (%s): no restarts or readiness, cgroups "
			"found by periodic rescans",
			strerror(-err));
		lifecycle_bpf__destroy(l->lc);
		l->lc = NULL;
	}
}

struct tapir_loader *tapir_loader__new(const struct tapir_config *cfg, tapir_record_fn fn,
				       void *ctx)
{
	struct tapir_loader *l;
	int err;

	libbpf_set_print(libbpf_log);
	err = tapir_ensure_mount("tracefs", "/sys/kernel/tracing");
	if (err)
		goto fail_errno;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	err = open_http(l, cfg);
	if (err)
		goto cleanup;
	open_lifecycle(l);
	l->rb = ring_buffer__new(bpf_map__fd(l->http->maps.events), (ring_buffer_sample_fn)fn, ctx,
				 NULL);
	if (!l->rb) {
		err = -errno;
		goto cleanup;
	}
	if (l->lc && ring_buffer__add(l->rb, bpf_map__fd(l->lc->maps.lifecycle_events),
				      (ring_buffer_sample_fn)fn, ctx)) {
		pr_warn("cannot read lifecycle events; rescanning periodically");
		lifecycle_bpf__destroy(l->lc);
		l->lc = NULL;
	}
	return l;

cleanup:
	tapir_loader__free(l);
fail_errno:
	errno = -err;
	return NULL;
}

static int attach_all(struct tapir_loader *l, struct bpf_object *obj, const char *feature)
{
	struct bpf_program *p;
	int attached = 0;
	size_t i;

	bpf_object__for_each_program (p, obj) {
		if (!bpf_program__autoload(p))
			continue;
		for (i = 0; i < l->n_progs; i++)
			if (!strcmp(l->progs[i].name, bpf_program__name(p)) &&
			    !strcmp(l->progs[i].feature, feature))
				break;
		if (i == l->n_progs)
			continue;
		l->links[i] = bpf_program__attach(p);
		if (!l->links[i]) {
			l->progs[i].why = "attach failed";
			pr_warn("%s: cannot attach %s: %s", feature, bpf_program__name(p),
				strerror(errno));
			continue;
		}
		l->progs[i].attached = true;
		attached++;
	}
	return attached;
}

int tapir_loader__attach(struct tapir_loader *l)
{
	int n;

	n = attach_all(l, l->http->obj, "http");
	if (n == 0) {
		pr_err("no HTTP program could be attached");
		return -ENOENT;
	}
	if (l->lc)
		n += attach_all(l, l->lc->obj, "lifecycle");
	pr_info("%d BPF programs attached", n);
	return 0;
}

static struct bpf_map *pinned_maps(const struct tapir_loader *l, size_t i)
{
	switch (i) {
	case 0: return l->http->maps.conns;
	case 1: return l->http->maps.watched_cgroups;
	case 2: return l->http->maps.stats;
	case 3: return l->http->maps.active_io;
	case 4: return l->lc ? l->lc->maps.listeners : NULL;
	}
	return NULL;
}

#define N_PINNED 5

int tapir_loader__pin(struct tapir_loader *l, const char *dir)
{
	char path[512];
	struct bpf_map *m;
	size_t i;
	int err;

	err = tapir_ensure_mount("bpf", "/sys/fs/bpf");
	if (err)
		return err;
	if (mkdir(dir, 0700) && errno != EEXIST) {
		err = -errno;
		pr_warn("cannot create %s: %s; maps are not pinned", dir, strerror(errno));
		return err;
	}
	for (i = 0; i < N_PINNED; i++) {
		m = pinned_maps(l, i);
		if (!m)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(m));
		unlink(path); /* an earlier instance's pin */
		err = bpf_map__pin(m, path);
		if (err) {
			pr_warn("cannot pin %s: %s", path, strerror(-err));
			return err;
		}
	}
	snprintf(l->pin_dir, sizeof(l->pin_dir), "%s", dir);
	pr_info("maps pinned under %s", dir);
	return 0;
}

/* Remove our pins, unless a newer instance replaced them with its own maps. */
static void unpin(struct tapir_loader *l)
{
	struct bpf_map_info mine, theirs;
	__u32 len;
	char path[512];
	struct bpf_map *m;
	size_t i;
	int fd;

	if (!l->pin_dir[0])
		return;
	for (i = 0; i < N_PINNED; i++) {
		m = pinned_maps(l, i);
		if (!m)
			continue;
		snprintf(path, sizeof(path), "%s/%s", l->pin_dir, bpf_map__name(m));
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		memset(&mine, 0, sizeof(mine));
		memset(&theirs, 0, sizeof(theirs));
		len = sizeof(mine);
		bpf_obj_get_info_by_fd(bpf_map__fd(m), &mine, &len);
		len = sizeof(theirs);
		bpf_obj_get_info_by_fd(fd, &theirs, &len);
		close(fd);
		if (mine.id == theirs.id)
			unlink(path);
	}
	rmdir(l->pin_dir); /* fails, harmlessly, while another instance's pins are there */
}

int tapir_loader__poll(struct tapir_loader *l, int timeout_ms)
{
	int n, m;

	/* The BPF side submits most records without a wake-up, so a poll that times out
	 * must still drain whatever is queued. */
	n = ring_buffer__poll(l->rb, timeout_ms);
	if (n < 0 && n != -EINTR)
		return n;
	m = ring_buffer__consume(l->rb);
	if (m < 0)
		return m;
	return (n > 0 ? n : 0) + m;
}

void tapir_loader__free(struct tapir_loader *l)
{
	size_t i;

	if (!l)
		return;
	if (l->http)
		unpin(l);
	for (i = 0; i < l->n_progs; i++)
		bpf_link__destroy(l->links[i]);
	ring_buffer__free(l->rb);
	lifecycle_bpf__destroy(l->lc);
	http_bpf__destroy(l->http);
	free(l);
}

int tapir_loader__watched_fd(const struct tapir_loader *l)
{
	return bpf_map__fd(l->http->maps.watched_cgroups);
}

int tapir_loader__conns_fd(const struct tapir_loader *l)
{
	return bpf_map__fd(l->http->maps.conns);
}

int tapir_loader__stats_fd(const struct tapir_loader *l)
{
	return bpf_map__fd(l->http->maps.stats);
}

int tapir_loader__listeners_fd(const struct tapir_loader *l)
{
	return l->lc ? bpf_map__fd(l->lc->maps.listeners) : -1;
}

unsigned long long tapir_loader__lifecycle_lost(const struct tapir_loader *l)
{
	int ncpu = libbpf_num_possible_cpus(), i;
	unsigned long long sum = 0;
	__u32 zero = 0;
	__u64 *vals;

	if (!l->lc || ncpu <= 0)
		return 0;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return 0;
	if (!bpf_map_lookup_elem(bpf_map__fd(l->lc->maps.lifecycle_lost), &zero, vals))
		for (i = 0; i < ncpu; i++)
			sum += vals[i];
	free(vals);
	return sum;
}

size_t tapir_loader__programs(const struct tapir_loader *l, const struct tapir_prog_status **out)
{
	*out = l->progs;
	return l->n_progs;
}
