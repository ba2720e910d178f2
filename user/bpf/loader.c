// SPDX-License-Identifier: GPL-2.0
/* BPF lifecycle: probe the kernel, open -> size -> load -> attach, and drain the ring buffers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <sys/utsname.h>

#include "tapir/http.h"
#include "http.skel.h"
#include "http_compat.skel.h"
#include "lifecycle.skel.h"
#include "cgroups.h"
#include "grow.h"
#include "resources.h"
#include "llm.h"
#include "loader.h"
#include "log.h"

#define MAX_PROGS   64
#define VMLINUX_BTF "/sys/kernel/btf/vmlinux"
#define LOG_LINES   12 /* lines of a verifier log kept: its verdict is at the end */

/* The HTTP programs in whichever build was loaded (bpf/http.bpf.c, bpf/http_compat.bpf.c). */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct http_obj {
	const char *variant; /* "loop", "compat" */
	const char *hooks;   /* "socket", "syscall" once loaded */
	struct bpf_object *obj;
	void *skel;
	void (*destroy)(void *skel);
};

struct tapir_loader {
	struct http_obj http;	  /* .obj NULL when no variant loaded */
	struct lifecycle_bpf *lc; /* NULL when the lifecycle feature could not load */
	struct ring_buffer *rb;
	struct tapir_prog_status progs[MAX_PROGS];
	struct bpf_link *links[MAX_PROGS]; /* parallel to progs */
	size_t n_progs;
	char pin_dir[256]; /* "" when nothing is pinned */
	int agg_on;	   /* http_agg is in use (http_agg_knobs()) */
	int llm_on;	   /* LLM payload goes to llm_events (http_llm_knobs()) */
	int h2_on;	   /* HTTP/2 is followed, into h2_events */
	/* The socket-buffer hooks: hung on each top-most watched cgroup (tapir_loader__cover()). */
	struct bpf_program *skb_prog[2]; /* in, out; NULL when not loaded */
	int skb_idx[2];			 /* their index in progs */
	struct skb_hang *hang;		 /* sorted by cgroup id */
	size_t n_hang, cap_hang;
};

/* Where the socket-buffer hooks hang: one cgroup, its two links (NULL where attaching failed). */
struct skb_hang {
	uint64_t id;
	struct bpf_link *link[2];
	bool seen; /* still a top-most watched cgroup */
};

/* The end of the last verifier log libbpf printed, and the program it was about. */
static struct {
	char prog[48];
	char failed[48]; /* the program libbpf said failed to load, from its message */
	char tail[LOG_LINES * 160];
	bool quiet; /* tapir check: the table says it all */
} vlog;

/* Keep the last lines of "prog 'NAME': -- BEGIN PROG LOAD LOG --\n...-- END PROG LOAD LOG --". */
static void keep_log_tail(const char *msg)
{
	const char *name = strstr(msg, "prog '"), *body = strstr(msg, "LOAD LOG --\n");
	const char *end = strstr(msg, "-- END PROG LOAD LOG");
	const char *p;
	int lines = 0;
	size_t n;

	vlog.prog[0] = vlog.tail[0] = '\0';
	if (name) {
		name += 6;
		n = strcspn(name, "'");
		snprintf(vlog.prog, sizeof(vlog.prog), "%.*s", (int)n, name);
	}
	if (!body || !end || end < body)
		return;
	body += 12;
	/* Walk back LOG_LINES lines from the end. */
	for (p = end; p > body; p--)
		if (p[-1] == '\n' && p != end && ++lines > LOG_LINES)
			break;
	n = end - p;
	if (n >= sizeof(vlog.tail))
		p = end - (n = sizeof(vlog.tail) - 1);
	memcpy(vlog.tail, p, n);
	vlog.tail[n] = '\0';
}

/* The kept verifier lines, one log line each, so that nothing of the verdict is cut. */
static void log_verifier_tail(void)
{
	char *save = NULL, *line, copy[sizeof(vlog.tail)];

	snprintf(copy, sizeof(copy), "%s", vlog.tail);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		pr_warn("  verifier: %s", line);
}

/* The verifier's verdict: the last line of its log that is not a statistic. */
static const char *verifier_verdict(char *buf, size_t len)
{
	const char *end = vlog.tail + strlen(vlog.tail), *p;

	for (;;) {
		while (end > vlog.tail && (end[-1] == '\n' || end[-1] == ' '))
			end--;
		for (p = end; p > vlog.tail && p[-1] != '\n'; p--)
			;
		if (p == vlog.tail ||
		    (strncmp(p, "processed ", 10) && strncmp(p, "verification time", 17) &&
		     strncmp(p, "stack depth", 11)))
			break;
		end = p;
	}
	snprintf(buf, len, "%.*s", (int)(end - p), p);
	return buf;
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	bool debug = tapir_log_get_level() >= TAPIR_LOG_DEBUG;
	char *msg = NULL, *line, *save = NULL;
	const char *name, *end;

	if (level == LIBBPF_DEBUG && !debug)
		return 0;
	if (vasprintf(&msg, fmt, ap) < 0)
		return 0;
	/* "libbpf: prog 'NAME': failed to load: ERR": the one program of a failed load. */
	name = strstr(msg, "prog '");
	end = name ? strstr(name, "': failed to load") : NULL;
	if (end && end - name - 6 < (long)sizeof(vlog.failed))
		snprintf(vlog.failed, sizeof(vlog.failed), "%.*s", (int)(end - name - 6), name + 6);
	if (strstr(msg, "-- BEGIN PROG LOAD LOG --")) {
		/* Whole verifier logs run to megabytes: keep the verdict, log it with the
		 * feature that failed; the whole log only with -v. */
		keep_log_tail(msg);
		if (!debug) {
			free(msg);
			return 0;
		}
	}
	if (vlog.quiet && !debug) {
		free(msg);
		return 0;
	}
	for (line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		tapir_log(level == LIBBPF_WARN ? TAPIR_LOG_WARN : TAPIR_LOG_DEBUG, "%s%s",
			  strncmp(line, "libbpf: ", 8) ? "libbpf: " : "", line);
	free(msg);
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

/* The running kernel's BTF, parsed once for every lookup below (several MB: not per call), and
 * freed once the programs are attached (vmlinux_btf_release()): the daemon's RSS is 5 MiB less. */
static struct btf *vmlinux_cache;

static struct btf *vmlinux_btf(void)
{
	if (!vmlinux_cache)
		vmlinux_cache = btf__load_vmlinux_btf();
	return vmlinux_cache;
}

static void vmlinux_btf_release(void)
{
	btf__free(vmlinux_cache);
	vmlinux_cache = NULL;
}

static bool kernel_has_btf_type(const char *name, __u32 kind)
{
	struct btf *vmlinux = vmlinux_btf();

	return vmlinux && btf__find_by_name_kind(vmlinux, name, kind) > 0;
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

/* A program that is only ever tail-called (the compat walker): loaded, never attached. */
static bool tail_target(const struct bpf_program *p)
{
	return !strncmp(bpf_program__name(p), "walk_more", 9) ||
	       !strncmp(bpf_program__name(p), "h2_more", 7);
}

static const char *kernel_release(void)
{
	static struct utsname u;

	if (!u.release[0] && uname(&u))
		return "unknown";
	return u.release;
}

/*
 * What tapir cannot do without: kernel BTF (CO-RE relocations) and BPF ring buffers (5.8+).
 * Everything else is probed per feature and per program.
 */
static int preflight(void)
{
	if (access(VMLINUX_BTF, R_OK)) {
		pr_err("kernel BTF not found at %s (%s): tapir needs a kernel built with "
		       "CONFIG_DEBUG_INFO_BTF=y",
		       VMLINUX_BTF, strerror(errno));
		return -ENOENT;
	}
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) != 1) {
		pr_err("kernel %s lacks BPF ring buffers (BPF_MAP_TYPE_RINGBUF, Linux 5.8+): "
		       "tapir cannot run here",
		       kernel_release());
		return -EOPNOTSUPP;
	}
	return 0;
}

static struct tapir_prog_status *note_prog(struct tapir_loader *l, const struct bpf_program *p,
					   const char *feature, const char *variant,
					   const char *reason, const char *why)
{
	struct tapir_prog_status *s;

	if (l->n_progs >= MAX_PROGS)
		return NULL;
	s = &l->progs[l->n_progs++];
	snprintf(s->name, sizeof(s->name), "%s", bpf_program__name(p));
	s->feature = feature;
	s->variant = variant;
	s->attached = false;
	s->reason = reason;
	s->why = why;
	return s;
}

/* Forget the programs noted for @feature (a variant that did not load). */
static void drop_progs(struct tapir_loader *l, const char *feature)
{
	size_t i, j;

	for (i = j = 0; i < l->n_progs; i++) {
		if (!strcmp(l->progs[i].feature, feature)) {
			bpf_link__destroy(l->links[i]);
			l->links[i] = NULL;
			continue;
		}
		l->links[j] = l->links[i];
		l->progs[j++] = l->progs[i];
	}
	for (i = j; i < l->n_progs; i++)
		l->links[i] = NULL;
	l->n_progs = j;
}

static bool kernel_has_sock_tp(void)
{
	return kernel_has_btf_type("btf_trace_sock_recv_length", BTF_KIND_TYPEDEF) &&
	       kernel_has_btf_type("btf_trace_sock_send_length", BTF_KIND_TYPEDEF);
}

/* Arguments of kernel function @name per its BTF; -1 when this kernel has no such function. */
static int kernel_func_args(const char *name)
{
	struct btf *vmlinux = vmlinux_btf();
	const struct btf_type *t;
	int id;

	if (!vmlinux)
		return -1;
	id = btf__find_by_name_kind(vmlinux, name, BTF_KIND_FUNC);
	if (id <= 0)
		return -1;
	t = btf__type_by_id(vmlinux, btf__type_by_id(vmlinux, id)->type);
	return t && btf_is_func_proto(t) ? btf_vlen(t) : -1;
}

static bool kernel_has_tcp_funcs(void)
{
	int n = kernel_func_args("tcp_recvmsg");

	return kernel_func_args("tcp_sendmsg") == 3 && n >= 4 && n <= 6;
}

/* Why the fexit program @p cannot run on this kernel, NULL when it can: each wants its
 * function, and fexit_tcp_recvmsgN the N arguments it was written for. */
static const char *fexit_missing(const struct bpf_program *p)
{
	const char *func = bpf_program__section_name(p) + 6; /* after "fexit/" */
	const char *name = bpf_program__name(p);
	size_t len = strlen(name);

	if (kernel_func_args(func) < 0)
		return "kernel function not present (tcp_sendpage: before 6.5 only)";
	if (!strncmp(name, "fexit_tcp_recvmsg", 17) && len == 18 &&
	    kernel_func_args(func) != name[17] - '0')
		return "tcp_recvmsg takes another number of arguments here";
	return NULL;
}

/* The cgroup v2 mount into @buf (@len bytes); NULL: whether there is one. */
static bool cgroup2_root(char *buf, size_t len)
{
	char tmp[512];

	return !tapir_cgroup2_mount(buf ? buf : tmp, buf ? len : sizeof(tmp));
}

/* The hook set a program of the HTTP object belongs to, from its section. */
static int prog_hooks(const struct bpf_program *p)
{
	const char *sec = bpf_program__section_name(p);

	if (!strncmp(sec, "tp_btf/sock_", 12))
		return TAPIR_HOOKS_SOCKET;
	if (!strncmp(sec, "fexit/", 6))
		return TAPIR_HOOKS_FEXIT;
	if (!strncmp(sec, "tracepoint/syscalls/", 20))
		return TAPIR_HOOKS_SYSCALL;
	if (!strncmp(sec, "cgroup_skb/", 11))
		return TAPIR_HOOKS_SKB;
	return TAPIR_HOOKS_AUTO; /* both: connection state, the compat walker */
}

/*
 * Turn off programs whose hooks this kernel lacks, so one missing hook costs one program, and
 * those of the hook set not chosen (@hooks; TAPIR_HOOKS_AUTO keeps both, for tapir check).
 */
static void probe_hooks(struct tapir_loader *l, struct bpf_object *obj, const char *feature,
			const char *variant, int hooks)
{
	bool sock_tp = kernel_has_sock_tp();
	struct bpf_program *p;

	bpf_object__for_each_program (p, obj) {
		const char *sec = bpf_program__section_name(p);
		const char *why = NULL;
		int set = prog_hooks(p);

		if (hooks != TAPIR_HOOKS_AUTO && set != TAPIR_HOOKS_AUTO && set != hooks) {
			bpf_program__set_autoload(p, false);
			continue;
		}
		if (!strncmp(sec, "tp_btf/", 7) && !sock_tp)
			why = "kernel lacks sock_{send,recv}_length (6.3+): fexit or syscall hooks "
			      "serve HTTP";
		else if (!strncmp(sec, "fexit/", 6))
			why = fexit_missing(p);
		else if (!strncmp(sec, "cgroup_skb/", 11) && !cgroup2_root(NULL, 0))
			why = "no cgroup v2 hierarchy is mounted";
		else if (strncmp(sec, "tp_btf/", 7) && strncmp(sec, "fexit/", 6) &&
			 strncmp(sec, "cgroup_skb/", 11) && !tracepoint_exists(sec))
			why = "tracepoint not present in this kernel";
		if (why)
			bpf_program__set_autoload(p, false);
		note_prog(l, p, feature, variant, why ? "no_hook" : NULL, why);
	}
}

/* After a refused load: the program the verifier named, and every other one, say why. */
static void note_refusal(struct tapir_loader *l, const char *feature)
{
	size_t i;

	for (i = 0; i < l->n_progs; i++) {
		struct tapir_prog_status *s = &l->progs[i];

		if (strcmp(s->feature, feature) || s->reason)
			continue;
		if (!strcmp(s->name, vlog.prog)) {
			s->reason = "verifier";
			s->why = "refused by this kernel's verifier";
		} else {
			s->reason = "object_refused";
			s->why = "not loaded: another program of its object was refused";
		}
	}
}

/* The daemon's own cgroup v2 id, 0 when it cannot be read. */
static __u64 self_cgroup_id(void)
{
	char root[512], rel[512], path[1100];
	uint64_t id = 0;

	if (!cgroup2_root(root, sizeof(root)) || tapir_pid_cgroup2(getpid(), rel, sizeof(rel)))
		return 0;
	snprintf(path, sizeof(path), "%s%s", root, rel);
	return tapir_cgroup_id(path, &id) ? 0 : id;
}

/* TAPIR_TEST_VERIFIER_REFUSE=1 (tests only): the HTTP programs carry one the verifier refuses;
 * =h2: the compat build's h2_more only. */
static __u32 test_refuse(void)
{
	const char *v = getenv("TAPIR_TEST_VERIFIER_REFUSE");

	return !v ? 0 : !strcmp(v, "1") ? 1 : !strcmp(v, "h2") ? 2 : 0;
}

/*
 * TAPIR_VERIFIER_STATS=1 (the kernel matrix): each HTTP program's verifier statistics, logged
 * after a load, so that a kernel's matrix line shows how near each program is to the verifier's
 * 1M instructions. The kernel writes them into a buffer of each program's own, of 1 MiB: while
 * it runs its log grows far past the few lines it ends with, and a log that ran out of room fails
 * the load (8 KiB did, on 6.18). Pages it never wrote cost nothing.
 */
#define STATS_LOG (1 << 20)
struct verifier_stats {
	char (*buf)[STATS_LOG];
	size_t n;
};

static void stats_ask(struct verifier_stats *v, struct bpf_object *obj)
{
	struct bpf_program *p;
	size_t n = 0;

	const char *want = getenv("TAPIR_VERIFIER_STATS");

	v->n = 0;
	if (!want || !*want || !strcmp(want, "0"))
		return;
	bpf_object__for_each_program (p, obj)
		n++;
	v->buf = calloc(n ? n : 1, sizeof(*v->buf));
	if (!v->buf)
		return;
	bpf_object__for_each_program (p, obj) {
		bpf_program__set_log_buf(p, v->buf[v->n++], STATS_LOG);
		bpf_program__set_log_level(p, 4); /* BPF_LOG_STATS */
	}
}

/*
 * "verifier: PROGRAM processed N insns ..." for each program loaded, then the buffers go. libbpf
 * prints the log of a refused program only from a buffer of its own: the log of the program
 * libbpf said failed to load becomes the verdict kept for the fallbacks (keep_log_tail()), as
 * libbpf's would.
 */
static void stats_log(struct verifier_stats *v, struct bpf_object *obj, const char *what)
{
	struct bpf_program *p, *refused = NULL;
	const char *at;
	size_t i = 0, r = 0;
	char *msg;

	bpf_object__for_each_program (p, obj) {
		if (i >= v->n)
			break;
		at = strstr(v->buf[i], "processed ");
		if (bpf_program__fd(p) >= 0 && at)
			pr_info("%s: verifier: %s %.*s", what, bpf_program__name(p),
				(int)strcspn(at, "\n"), at);
		/* The program libbpf named as failed, not the first with a log: a failed load
		 * closes every program it loaded (the 6.12 matrix once named an earlier one for
		 * http_skb_in's E2BIG). One refused without a log (EPERM) has no verdict here. */
		if (bpf_program__fd(p) < 0 && bpf_program__autoload(p) && v->buf[i][0] &&
		    !strcmp(bpf_program__name(p), vlog.failed)) {
			refused = p;
			r = i;
		}
		i++;
	}
	if (refused &&
	    asprintf(&msg, "prog '%s': -- BEGIN PROG LOAD LOG --\n%s-- END PROG LOAD LOG --",
		     bpf_program__name(refused), v->buf[r]) >= 0) {
		keep_log_tail(msg);
		free(msg);
	}
	bpf_object__for_each_program (p, obj) {
		bpf_program__set_log_buf(p, NULL, 0);
		bpf_program__set_log_level(p, 0);
	}
	free(v->buf);
	v->buf = NULL;
	v->n = 0;
}

/* The knobs both builds share, set before load (@s: either skeleton). */
#define HTTP_KNOBS(s)                                                         \
	do {                                                                  \
		(s)->rodata->self_tgid = getpid();                            \
		(s)->rodata->self_cgid = self_cgroup_id();                    \
		(s)->rodata->test_refuse = test_refuse();                     \
		(s)->rodata->have_destroy_tp =                                \
			tracepoint_exists("tracepoint/tcp/tcp_destroy_sock"); \
	} while (0)

static int http_open(struct http_obj *h, int variant)
{
	if (variant == TAPIR_BPF_LOOP) {
		struct http_bpf *s = http_bpf__open();

		if (!s)
			return -errno;
		HTTP_KNOBS(s);
		*h = (struct http_obj){ .variant = "loop",
					.obj = s->obj,
					.skel = s,
					.destroy = (void (*)(void *))http_bpf__destroy };
	} else {
		struct http_compat_bpf *s = http_compat_bpf__open();

		if (!s)
			return -errno;
		HTTP_KNOBS(s);
		*h = (struct http_obj){ .variant = "compat",
					.obj = s->obj,
					.skel = s,
					.destroy = (void (*)(void *))http_compat_bpf__destroy };
	}
	return 0;
}

static void http_close(struct http_obj *h)
{
	if (h->skel)
		h->destroy(h->skel);
	memset(h, 0, sizeof(*h));
}

static struct bpf_map *http_map(const struct tapir_loader *l, const char *name)
{
	return l->http.obj ? bpf_object__find_map_by_name(l->http.obj, name) : NULL;
}

/* Wake the reader early only when the ring is an eighth full; otherwise it drains on its own
 * short timer, which keeps wake-ups off the traced server's hot path. The connection table has
 * a reserved slot per CPU beyond @max_conns (http_reserve_slots()). */
static void http_size(struct http_obj *h, __u32 max_conns, __u32 ringbuf_bytes, bool h2)
{
	__u64 *wakeup;

	bpf_map__set_max_entries(bpf_object__find_map_by_name(h->obj, "conns"),
				 max_conns + libbpf_num_possible_cpus());
	bpf_map__set_max_entries(bpf_object__find_map_by_name(h->obj, "events"), ringbuf_bytes);
	if (!strcmp(h->variant, "loop")) {
		wakeup = &((struct http_bpf *)h->skel)->rodata->wakeup_bytes;
		((struct http_bpf *)h->skel)->rodata->h2_wakeup_bytes = ringbuf_bytes / 8;
	} else {
		wakeup = &((struct http_compat_bpf *)h->skel)->rodata->wakeup_bytes;
		((struct http_compat_bpf *)h->skel)->rodata->h2_wakeup_bytes = ringbuf_bytes / 8;
		((struct http_compat_bpf *)h->skel)->rodata->h2_on = h2;
	}
	*wakeup = ringbuf_bytes / 8;
	/* HTTP/2 (bpf/http.bpf.c, "HTTP/2"): a walker per connection and a ring as large as the
	 * records'; a page and an entry where it is not followed. */
	if (h2) {
		bpf_map__set_max_entries(bpf_object__find_map_by_name(h->obj, "h2_conns"),
					 max_conns);
		bpf_map__set_max_entries(bpf_object__find_map_by_name(h->obj, "h2_events"),
					 ringbuf_bytes);
	} else {
		bpf_map__set_max_entries(bpf_object__find_map_by_name(h->obj, "h2_conns"), 1);
		bpf_map__set_max_entries(bpf_object__find_map_by_name(h->obj, "h2_events"), 4096);
	}
}

/* Kernel memory the aggregates may take, all CPUs together: what bounds limits.aggregated_series
 * on nodes with many CPUs (a per-CPU map holds a value per possible CPU for each entry). */
#define AGG_BUDGET_BYTES (64u << 20)

/* Bounds of a histogram in the kernel's units: nanoseconds or bytes. */
static void agg_bounds(volatile __u64 *out, const double *b, size_t n, double scale)
{
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = tapir_agg_bound(b[i], scale);
}

/*
 * Aggregation in the kernel (bpf/http.bpf.c, agg_record()), loop build only: its knobs and the
 * size of http_agg. Off, so that every request is a record, when limits.aggregated_series is 0
 * or the buckets or probe paths do not fit the kernel's fixed layout. Returns whether it is on.
 */
_Static_assert(TAPIR_AGG_BOUNDS == 24 && TAPIR_AGG_PROBES == 16, "the messages below");
static int http_agg_knobs(struct http_obj *h, const struct tapir_config *cfg)
{
	struct bpf_map *m = bpf_object__find_map_by_name(h->obj, "http_agg");
	__u64 per_entry = sizeof(struct tapir_agg) * (__u64)libbpf_num_possible_cpus();
	__u32 entries = cfg->aggregated_series;
	struct tapir_probe_prefix pp;
	struct http_bpf *s = h->skel;
	const char *why = NULL;
	size_t i;

	if (strcmp(h->variant, "loop"))
		why = "the compat build";
	else if (!entries)
		why = "limits.aggregated_series is 0";
	else if (cfg->n_latency_buckets > TAPIR_AGG_BOUNDS ||
		 cfg->n_size_buckets > TAPIR_AGG_BOUNDS)
		why = "more than 24 bucket bounds in a histogram";
	else if (cfg->n_probe_paths > TAPIR_AGG_PROBES)
		why = "more than 16 probe paths";
	if (why) {
		if (strcmp(h->variant, "loop") || entries)
			pr_info("http: every request is a ring-buffer record, none aggregated in the "
				"kernel: %s",
				why);
		bpf_map__set_max_entries(m, 1);
		return 0;
	}
	if ((__u64)entries * per_entry > AGG_BUDGET_BYTES) {
		entries = AGG_BUDGET_BYTES / per_entry;
		entries = entries ? entries : 1;
		pr_info("http: %u series aggregated in the kernel, not %u: %u MiB for %d CPUs; the "
			"rest go as records",
			entries, cfg->aggregated_series, AGG_BUDGET_BYTES >> 20,
			libbpf_num_possible_cpus());
	}
	bpf_map__set_max_entries(m, entries);
	s->rodata->agg_on = 1;
	s->rodata->n_lat_bounds = cfg->n_latency_buckets;
	s->rodata->n_size_bounds = cfg->n_size_buckets;
	agg_bounds(s->rodata->lat_bounds, cfg->latency_buckets, cfg->n_latency_buckets, 1e9);
	agg_bounds(s->rodata->size_bounds, cfg->size_buckets, cfg->n_size_buckets, 1);
	tapir_probe_prefixes(&pp, (const char *const *)cfg->probe_paths, cfg->n_probe_paths);
	s->rodata->n_probes = cfg->n_probe_paths;
	for (i = 0; i < TAPIR_AGG_PROBES; i++) {
		s->rodata->probe_word[i] = pp.word[i];
		s->rodata->probe_mask[i] = pp.mask[i];
	}
	return 1;
}

/* The LLM payload knobs of either skeleton (@s), from path table @t. */
#define LLM_KNOBS(s, cfg, t, n)                                                      \
	do {                                                                         \
		(s)->rodata->llm_on = 1;                                             \
		(s)->rodata->n_llm_paths = (n);                                      \
		memcpy((void *)(s)->rodata->llm_word, (t)->word, sizeof((t)->word)); \
		memcpy((void *)(s)->rodata->llm_mask, (t)->mask, sizeof((t)->mask)); \
		memcpy((void *)(s)->rodata->llm_len, (t)->len, sizeof((t)->len));    \
		memcpy((void *)(s)->rodata->llm_api_of, (t)->api, sizeof((t)->api)); \
		(s)->rodata->llm_req_bytes = (cfg)->llm_request_head_bytes;          \
		(s)->rodata->llm_resp_bytes = (cfg)->llm_response_bytes;             \
		(s)->rodata->llm_wakeup_bytes = (cfg)->llm_ringbuf_bytes / 8;        \
		(s)->rodata->heads_on = tapir_config__wants_heads(cfg);              \
	} while (0)

/*
 * LLM payload capture (bpf/http.bpf.c, "LLM payload"): the path table and budgets, and the size
 * of llm_events; a page when it is off. The same capture hands over request heads for async
 * rules (deployments[].async), with LLM off too. Returns whether it is on.
 */
static int http_llm_knobs(struct http_obj *h, const struct tapir_config *cfg)
{
	struct bpf_map *m = bpf_object__find_map_by_name(h->obj, "llm_events");
	const char *extra[TAPIR_LLM_TABLE];
	struct tapir_llm_path_table t;
	size_t n_extra = 0, i, k, j;
	int n = -EINVAL;

	/* llm.paths, then the rules' own lists: each path once (the config checked they fit). */
	for (i = 0; i < cfg->n_llm_paths && n_extra < TAPIR_LLM_TABLE; i++)
		extra[n_extra++] = cfg->llm_paths[i];
	for (i = 0; i < cfg->n_rules; i++)
		for (k = 0; k < cfg->rules[i].n_llm_paths && n_extra < TAPIR_LLM_TABLE; k++) {
			for (j = 0; j < n_extra && strcmp(extra[j], cfg->rules[i].llm_paths[k]);
			     j++)
				;
			if (j == n_extra)
				extra[n_extra++] = cfg->rules[i].llm_paths[k];
		}
	if (cfg->llm_enabled)
		n = tapir_llm_path_table(&t, extra, n_extra);
	if (n < 0 && cfg->llm_enabled) /* the config checked them: this is a bug */
		pr_warn("llm: the path table does not fit: LLM payload capture is off");
	if (n < 0 && !tapir_config__wants_heads(cfg)) {
		bpf_map__set_max_entries(m, 4096);
		return 0;
	}
	if (n < 0) { /* request heads only: an empty table */
		memset(&t, 0, sizeof(t));
		n = 0;
	}
	bpf_map__set_max_entries(m, cfg->llm_ringbuf_bytes);
	if (!strcmp(h->variant, "loop"))
		LLM_KNOBS((struct http_bpf *)h->skel, cfg, &t, n);
	else
		LLM_KNOBS((struct http_compat_bpf *)h->skel, cfg, &t, n);
	return 1;
}

/*
 * A slot of the connection table per CPU, at keys 1..CPUs (never a socket's address): where a
 * read that starts requests on a connection the table has no room for is walked, so that each
 * of them is counted lost (bpf/http.bpf.c, untracked_conn()).
 */
static int http_reserve_slots(struct http_obj *h)
{
	int fd = bpf_map__fd(bpf_object__find_map_by_name(h->obj, "conns"));
	int n = libbpf_num_possible_cpus(), i;
	struct tapir_conn c = { .state = TAPIR_CONN_IGNORED, .flags = TAPIR_CF_UNTRACKED };
	struct tapir_conn_key key;

	for (i = 0; i < n; i++) {
		key.sock = i + 1;
		if (bpf_map_update_elem(fd, &key, &c, BPF_NOEXIST))
			return -errno;
	}
	return 0;
}

/* The compat build's walkers continue through tail calls into themselves: each walk_more in
 * slot 0 of its hook's program array, each h2_more (the HTTP/2 frame walker) in slot 1. */
static int http_wire_tail_calls(struct http_obj *h)
{
	static const struct {
		const char *prog, *map;
		__u32 slot;
	} pairs[] = {
		{ "walk_more", "walkers", 0 },
		{ "walk_more_sendmsg", "walkers_sendmsg", 0 },
		{ "walk_more_recvmsg", "walkers_recvmsg", 0 },
		{ "walk_more_sendpage", "walkers_sendpage", 0 },
		{ "h2_more", "walkers", 1 },
		{ "h2_more_sendmsg", "walkers_sendmsg", 1 },
		{ "h2_more_recvmsg", "walkers_recvmsg", 1 },
		{ "h2_more_sendpage", "walkers_sendpage", 1 },
	};
	struct bpf_program *p;
	struct bpf_map *m;
	size_t i;
	int fd;

	for (i = 0; i < ARRAY_SIZE(pairs); i++) {
		p = bpf_object__find_program_by_name(h->obj, pairs[i].prog);
		m = bpf_object__find_map_by_name(h->obj, pairs[i].map);
		if (!p || !m || !bpf_program__autoload(p))
			continue;
		fd = bpf_program__fd(p);
		if (fd < 0 || bpf_map_update_elem(bpf_map__fd(m), &pairs[i].slot, &fd, BPF_ANY))
			return fd < 0 ? -EINVAL : -errno;
	}
	return 0;
}

static int variant_supported(int variant)
{
	if (variant == TAPIR_BPF_LOOP &&
	    libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_loop, NULL) != 1)
		return 0;
	return 1;
}

/* Open, size and load one variant of the HTTP programs with one hook set; notes every program's
 * fate. */
static int load_http_variant(struct tapir_loader *l, const struct tapir_config *cfg, int variant,
			     int hooks, bool h2)
{
	struct verifier_stats stats = { 0 };
	struct bpf_program *p;
	int err;

	err = http_open(&l->http, variant);
	if (err) {
		pr_warn("http (%s): cannot open the BPF object: %s",
			variant == TAPIR_BPF_LOOP ? "loop" : "compat", strerror(-err));
		return err;
	}
	probe_hooks(l, l->http.obj, "http", l->http.variant, hooks);
	/* The compat build without its HTTP/2 walker (h2_more), for a verifier that refuses it:
	 * HTTP/2 connections count as ignored (http2), HTTP/1.x goes on. */
	if (!h2)
		bpf_object__for_each_program (p, l->http.obj)
			if (!strncmp(bpf_program__name(p), "h2_more", 7))
				bpf_program__set_autoload(p, false);
	l->h2_on = h2;
	http_size(&l->http, cfg->max_connections, cfg->ringbuf_bytes, h2);
	l->agg_on = http_agg_knobs(&l->http, cfg);
	l->llm_on = http_llm_knobs(&l->http, cfg);
	if (hooks == TAPIR_HOOKS_SKB) {
		/* The segments' bytes, not the processes'. */
		struct http_bpf *s = l->http.skel;

		s->rodata->skb_on = 1;
		s->rodata->h2_on = h2;
	} else {
		/* Bytes that end a handshake reach the listening socket only with these hooks. */
		bpf_map__set_max_entries(bpf_object__find_map_by_name(l->http.obj, "early"), 1);
	}
	if (!strcmp(l->http.variant, "loop"))
		((struct http_bpf *)l->http.skel)->rodata->outbound_on = cfg->outbound_enabled;
	else
		((struct http_compat_bpf *)l->http.skel)->rodata->outbound_on =
			cfg->outbound_enabled;
	vlog.prog[0] = vlog.tail[0] = vlog.failed[0] = '\0';
	stats_ask(&stats, l->http.obj);
	err = bpf_object__load(l->http.obj);
	stats_log(&stats, l->http.obj, "http");
	if (!err)
		err = http_wire_tail_calls(&l->http);
	if (!err)
		err = http_reserve_slots(&l->http);
	if (!err)
		return 0;
	if (vlog.prog[0]) {
		pr_warn("http (%s variant): the verifier of kernel %s refused program '%s'; its "
			"last lines:",
			l->http.variant, kernel_release(), vlog.prog);
		log_verifier_tail();
	} else {
		pr_warn("http (%s variant): loading failed on kernel %s: %s", l->http.variant,
			kernel_release(), strerror(-err));
	}
	note_refusal(l, "http");
	return err;
}

static const char *hooks_name(int hooks)
{
	return hooks == TAPIR_HOOKS_SOCKET  ? "socket"
	       : hooks == TAPIR_HOOKS_FEXIT ? "fexit"
	       : hooks == TAPIR_HOOKS_SKB   ? "skb"
					    : "syscall";
}

/* The note of @feature's program @p, or -1. */
static int prog_index(const struct tapir_loader *l, const struct bpf_program *p,
		      const char *feature)
{
	size_t i;

	for (i = 0; i < l->n_progs; i++)
		if (!strcmp(l->progs[i].name, bpf_program__name(p)) &&
		    !strcmp(l->progs[i].feature, feature))
			return (int)i;
	return -1;
}

static int attach_rank(const struct bpf_program *p);

/*
 * Whether this kernel runs BPF trampolines: the loaded fexit programs of the send side attached
 * now (the send side may go live first, see attach_rank). Some kernels load them and refuse to
 * attach them (lockdown, or no ftrace direct calls, as this project's own CI host does with
 * EPERM); those get the syscall hooks instead. The links stay: before 5.11 a trampoline program
 * attaches once, so a trial attach must be the attach.
 */
static int trampolines_work(struct tapir_loader *l)
{
	struct bpf_program *p;
	int i, err = -ENOENT;

	bpf_object__for_each_program (p, l->http.obj) {
		if (!bpf_program__autoload(p) || prog_hooks(p) != TAPIR_HOOKS_FEXIT ||
		    tail_target(p) || attach_rank(p) != 0 || (i = prog_index(l, p, "http")) < 0)
			continue;
		l->links[i] = bpf_program__attach(p);
		if (!l->links[i]) {
			err = -errno;
			pr_info("http: this kernel (%s) loads fexit programs but does not attach "
				"them (%s)",
				kernel_release(), strerror(-err));
			goto undo;
		}
		l->progs[i].attached = true;
		err = 0;
	}
	return err;
undo:
	for (i = 0; i < (int)l->n_progs; i++) {
		if (strncmp(l->progs[i].name, "fexit_", 6))
			continue;
		bpf_link__destroy(l->links[i]);
		l->links[i] = NULL;
		l->progs[i].attached = false;
		l->progs[i].reason = "attach_failed";
		l->progs[i].why = "the kernel refused to attach a trampoline";
	}
	return err;
}

/*
 * Whether the loaded socket-buffer program @p can hang on a cgroup (0, else -errno): tried on the
 * cgroup v2 root (where it hangs when every cgroup is watched) and taken down at once. A kernel
 * or a security policy that refuses it would leave every watched cgroup unseen: the socket
 * hooks serve then.
 */
static int skb_try_root(struct bpf_program *p)
{
	struct bpf_link *link;
	char root[512];
	int fd, err = 0;

	if (!cgroup2_root(root, sizeof(root)))
		return -ENOENT;
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	link = bpf_program__attach_cgroup(p, fd);
	if (!link)
		err = -errno;
	bpf_link__destroy(link);
	close(fd);
	return err;
}

/* skb_try_root() for each loaded socket-buffer program of the HTTP object. */
static bool skb_hang_works(const struct tapir_loader *l)
{
	struct bpf_program *p;
	int err;

	bpf_object__for_each_program (p, l->http.obj) {
		if (prog_hooks(p) != TAPIR_HOOKS_SKB || !bpf_program__autoload(p))
			continue;
		err = skb_try_root(p);
		if (err) {
			pr_warn("http: the socket-buffer hooks cannot hang on the cgroup v2 root: "
				"%s",
				strerror(-err));
			return false;
		}
	}
	return true;
}

/*
 * The HTTP feature, in the best variant this kernel takes: the loop build on the socket-buffer
 * hooks where it loads (5.17+) and a cgroup v2 hierarchy takes them, else with socket hooks
 * where the kernel has sock_{send,recv}_length (6.3+), else with fexit or syscall hooks, else
 * the compat build; each refusal falls through to the next.
 */
static void open_http(struct tapir_loader *l, const struct tapir_config *cfg)
{
	/* variant, hooks, HTTP/2 followed */
	static const int order[][3] = {
		{ TAPIR_BPF_LOOP, TAPIR_HOOKS_SKB, 1 },
		/* Asked for only (--bpf-hooks skb): the other hooks follow HTTP/2 where a
		 * verifier refuses the frame walker in these programs. */
		{ TAPIR_BPF_LOOP, TAPIR_HOOKS_SKB, 0 },
		{ TAPIR_BPF_LOOP, TAPIR_HOOKS_SOCKET, 1 },
		{ TAPIR_BPF_LOOP, TAPIR_HOOKS_FEXIT, 1 },
		{ TAPIR_BPF_LOOP, TAPIR_HOOKS_SYSCALL, 1 },
		{ TAPIR_BPF_COMPAT, TAPIR_HOOKS_FEXIT, 1 },
		{ TAPIR_BPF_COMPAT, TAPIR_HOOKS_FEXIT, 0 },
		{ TAPIR_BPF_COMPAT, TAPIR_HOOKS_SYSCALL, 1 },
		{ TAPIR_BPF_COMPAT, TAPIR_HOOKS_SYSCALL, 0 },
	};
	char refused[sizeof(vlog.prog)] = ""; /* the program the last try's verifier refused */
	bool tried = false;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(order); i++) {
		int variant = order[i][0], hooks = order[i][1], h2 = order[i][2];

		/* Without the HTTP/2 walker only when the verifier refused it in the try before. */
		if (!h2 && strncmp(refused, "h2_more", 7) &&
		    (hooks != TAPIR_HOOKS_SKB || strncmp(refused, "http_skb_", 9)))
			continue;
		if (hooks == TAPIR_HOOKS_SKB && cfg->bpf_hooks != TAPIR_HOOKS_SKB &&
		    (!h2 || !cgroup2_root(NULL, 0)))
			continue;
		if ((cfg->bpf_variant != TAPIR_BPF_AUTO && cfg->bpf_variant != variant) ||
		    (cfg->bpf_hooks != TAPIR_HOOKS_AUTO && cfg->bpf_hooks != hooks))
			continue;
		if (!variant_supported(variant)) {
			pr_info("http: this kernel (%s) lacks the bpf_loop helper (5.17+): using "
				"the compat variant",
				kernel_release());
			continue;
		}
		if (hooks == TAPIR_HOOKS_SOCKET && !kernel_has_sock_tp()) {
			pr_info("http: this kernel (%s) lacks the sock_{send,recv}_length "
				"tracepoints (6.3+)",
				kernel_release());
			if (cfg->bpf_hooks != TAPIR_HOOKS_SOCKET)
				continue;
		}
		if (hooks == TAPIR_HOOKS_FEXIT && !kernel_has_tcp_funcs()) {
			pr_info("http: this kernel (%s) has no BTF for tcp_sendmsg and tcp_recvmsg",
				kernel_release());
			if (cfg->bpf_hooks != TAPIR_HOOKS_FEXIT)
				continue;
		}
		if (tried) {
			pr_warn("http: trying the %s variant with %s hooks%s",
				variant == TAPIR_BPF_LOOP ? "loop" : "compat", hooks_name(hooks),
				h2 ? "" : ", without HTTP/2");
			http_close(&l->http);
			drop_progs(l, "http"); /* the refused variant's notes */
		}
		tried = true;
		vlog.prog[0] = '\0';
		if (!load_http_variant(l, cfg, variant, hooks, h2) &&
		    (hooks != TAPIR_HOOKS_FEXIT || !trampolines_work(l)) &&
		    (hooks != TAPIR_HOOKS_SKB || cfg->bpf_hooks == TAPIR_HOOKS_SKB ||
		     skb_hang_works(l))) {
			l->http.hooks = hooks_name(hooks);
			pr_info("http: %s variant loaded, %s hooks%s", l->http.variant,
				l->http.hooks, h2 ? "" : "; HTTP/2 not followed");
			return;
		}
		snprintf(refused, sizeof(refused), "%s", vlog.prog);
	}
	/* Nothing loaded: the refusal stays noted; everything else runs on. */
	http_close(&l->http);
	pr_warn("http: no variant loaded on kernel %s: request metrics are off; container, "
		"restart, readiness and GPU metrics go on",
		kernel_release());
}

/*
 * The lifecycle feature (cgroups, processes, listening sockets) is optional: without it, new
 * cgroups are found by periodic rescans and restarts and readiness are not tracked. Programs
 * whose tracepoint is missing are turned off one by one.
 */
static void open_lifecycle(struct tapir_loader *l)
{
	struct bpf_map *watched = http_map(l, "watched_cgroups");
	int err;

	l->lc = lifecycle_bpf__open();
	if (!l->lc) {
		pr_warn("lifecycle programs did not open: %s", strerror(errno));
		return;
	}
	probe_hooks(l, l->lc->obj, "lifecycle", "", TAPIR_HOOKS_AUTO);
	/* Shares watched_cgroups with the HTTP feature when that one loaded. */
	err = watched ? bpf_map__reuse_fd(l->lc->maps.watched_cgroups, bpf_map__fd(watched)) : 0;
	vlog.prog[0] = vlog.tail[0] = '\0';
	if (!err)
		err = lifecycle_bpf__load(l->lc);
	if (err) {
		if (vlog.prog[0]) {
			pr_warn("lifecycle: the verifier of kernel %s refused program '%s'; its last "
				"lines:",
				kernel_release(), vlog.prog);
			log_verifier_tail();
		} else {
			pr_warn("lifecycle: loading failed on kernel %s: %s", kernel_release(),
				strerror(-err));
		}
		pr_warn("lifecycle: off: no restarts or readiness, cgroups found by periodic "
			"rescans");
		note_refusal(l, "lifecycle");
		lifecycle_bpf__destroy(l->lc);
		l->lc = NULL;
	}
}

struct tapir_loader *tapir_loader__new(const struct tapir_config *cfg, tapir_record_fn fn,
				       void *ctx)
{
	struct tapir_loader *l;
	struct bpf_map *events;
	int err;

	libbpf_set_print(libbpf_log);
	err = preflight();
	if (err)
		goto fail_errno;
	err = tapir_ensure_mount("tracefs", "/sys/kernel/tracing");
	if (err)
		goto fail_errno;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	open_http(l, cfg);
	open_lifecycle(l);
	if (!l->http.obj && !l->lc) {
		pr_err("no BPF feature loaded on kernel %s", kernel_release());
		err = -EOPNOTSUPP;
		goto cleanup;
	}
	events = http_map(l, "events");
	if (events)
		l->rb = ring_buffer__new(bpf_map__fd(events), (ring_buffer_sample_fn)fn, ctx, NULL);
	if (l->lc) {
		int lfd = bpf_map__fd(l->lc->maps.lifecycle_events);

		if (l->rb)
			err = ring_buffer__add(l->rb, lfd, (ring_buffer_sample_fn)fn, ctx);
		else
			l->rb = ring_buffer__new(lfd, (ring_buffer_sample_fn)fn, ctx, NULL);
	}
	if (!l->rb || err) {
		err = -(errno ? errno : EINVAL);
		pr_err("cannot read the BPF ring buffers: %s", strerror(-err));
		goto cleanup;
	}
	return l;

cleanup:
	tapir_loader__free(l);
fail_errno:
	errno = -err;
	return NULL;
}

/*
 * Under load every program goes live at its own moment, and a connection must never be seen
 * half: a request read while the hook of its answer was not yet attached would stay pending,
 * and every later answer on its connection would be paired with the request before it (a
 * request in flight forever, a phantom 499 at its close). So what settles a request goes live
 * before what starts one: the end of a socket and the sends first, then the receives, and the
 * creation of connections last. Before that, a connection has no entry: it is picked up at its
 * next request line, and an answer to a request nobody saw is not followed at all.
 */
static int attach_rank(const struct bpf_program *p)
{
	const char *name = bpf_program__name(p);

	if (!strcmp(name, "http_sock_state"))
		return 2;
	if (strstr(name, "read") || strstr(name, "recv") || !strcmp(name, "http_skb_in"))
		return 1;
	return 0;
}

/* Attach @p, noting its fate in l->progs; returns 1 when attached. */
static int attach_one(struct tapir_loader *l, struct bpf_program *p, const char *feature)
{
	int i;

	if (!bpf_program__autoload(p) || (i = prog_index(l, p, feature)) < 0)
		return 0;
	if (l->links[i])
		return 1; /* attached at load (trampolines_work) */
	if (tail_target(p)) {
		/* In the prog array since load: running whenever its callers run. */
		l->progs[i].attached = true;
		return 0;
	}
	if (prog_hooks(p) == TAPIR_HOOKS_SKB) {
		/* Hung on cgroups as they are watched: tapir_loader__cover(). */
		int in = attach_rank(p) == 1;

		l->skb_prog[!in] = p;
		l->skb_idx[!in] = i;
		l->progs[i].attached = true;
		return 1;
	}
	l->links[i] = bpf_program__attach(p);
	if (!l->links[i]) {
		l->progs[i].reason = "attach_failed";
		l->progs[i].why = "attach failed";
		pr_warn("%s: cannot attach %s: %s", feature, bpf_program__name(p), strerror(errno));
		return 0;
	}
	l->progs[i].attached = true;
	return 1;
}

static int attach_all(struct tapir_loader *l, struct bpf_object *obj, const char *feature)
{
	struct bpf_program *p;
	int attached = 0, rank;

	for (rank = 0; rank <= 2; rank++)
		bpf_object__for_each_program (p, obj)
			if (attach_rank(p) == rank)
				attached += attach_one(l, p, feature);
	return attached;
}

int tapir_loader__attach(struct tapir_loader *l)
{
	int n = 0;

	if (l->http.obj) {
		n = attach_all(l, l->http.obj, "http");
		if (n == 0)
			pr_warn("http: no program could be attached: request metrics are off");
	}
	if (l->lc)
		n += attach_all(l, l->lc->obj, "lifecycle");
	pr_info("%d BPF programs attached", n);
	vmlinux_btf_release(); /* asked again, it is parsed again */
	return 0;
}

/* The skb hang at @id, or where it would go (*@pos). */
static struct skb_hang *hang_find(const struct tapir_loader *l, uint64_t id, size_t *pos)
{
	size_t i = tapir_id_index(l->hang, l->n_hang, sizeof(*l->hang), id);

	*pos = i;
	return i < l->n_hang && l->hang[i].id == id ? &l->hang[i] : NULL;
}

/* Attach the skb hooks to the cgroup at @path if it is still cgroup @id; 0 or -errno. */
static int hang_on(struct tapir_loader *l, struct skb_hang *h, const char *path)
{
	uint64_t id = 0;
	int fd, d, err = 0;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (tapir_cgroup_id_fd(fd, &id) || id != h->id) {
		close(fd);
		return -ESTALE; /* removed and made again under the walk: the next scan */
	}
	for (d = 1; d >= 0; d--) { /* the way out first, as attach_rank() orders them */
		if (!l->skb_prog[d])
			continue;
		h->link[d] = bpf_program__attach_cgroup(l->skb_prog[d], fd);
		if (!h->link[d] && !err)
			err = -errno;
	}
	close(fd);
	return err;
}

bool tapir_loader__skb_hooks(const struct tapir_loader *l)
{
	return l->skb_prog[0] || l->skb_prog[1];
}

int tapir_loader__cover(struct tapir_loader *l, const char *mount,
			const struct tapir_watched *const *tops, size_t n)
{
	size_t i, j, pos, failed = 0;
	struct skb_hang *h;
	char path[4608];
	int err, d;

	if (!tapir_loader__skb_hooks(l))
		return 0;
	for (i = 0; i < l->n_hang; i++)
		l->hang[i].seen = false;
	for (i = 0; i < n; i++) {
		h = hang_find(l, tops[i]->id, &pos);
		if (h) {
			h->seen = true;
			continue;
		}
		if (tapir_grow_zeroed((void **)&l->hang, &l->cap_hang, l->n_hang, sizeof(*l->hang)))
			return -ENOMEM;
		memmove(&l->hang[pos + 1], &l->hang[pos], (l->n_hang - pos) * sizeof(*l->hang));
		h = &l->hang[pos];
		*h = (struct skb_hang){ .id = tops[i]->id, .seen = true };
		l->n_hang++;
		snprintf(path, sizeof(path), "%s%s", mount, tops[i]->rel);
		err = hang_on(l, h, path);
		if (err == -ESTALE || err == -ENOENT) {
			/* Gone already: forgotten below, tried again if the scan still sees it. */
			h->seen = false;
		} else if (err) {
			/* Not tried again (a warning every scan); counted in the programs' status. */
			pr_warn("cannot attach the socket-buffer hooks to cgroup %s: %s; its "
				"connections are not seen",
				tops[i]->rel, strerror(-err));
		} else {
			pr_debug("socket-buffer hooks on cgroup %s", tops[i]->rel);
		}
	}
	/* Only now the ones no longer top-most: a descendant's segments were walked by both for a
	 * moment, and the second walk skips them as bytes seen (the sequence numbers). */
	for (i = j = 0; i < l->n_hang; i++) {
		h = &l->hang[i];
		if (!h->seen) {
			for (d = 0; d < 2; d++)
				bpf_link__destroy(h->link[d]);
			continue;
		}
		for (d = 0; d < 2; d++)
			if (l->skb_prog[d] && !h->link[d])
				failed++;
		l->hang[j++] = *h;
	}
	l->n_hang = j;
	for (d = 0; d < 2; d++) {
		struct tapir_prog_status *st = &l->progs[l->skb_idx[d]];

		if (!l->skb_prog[d])
			continue;
		st->attached = !failed;
		st->reason = failed ? "attach_failed" : NULL;
		st->why = failed ? "attach failed on a watched cgroup (see the log)" : NULL;
	}
	return (int)failed;
}

static struct bpf_map *pinned_maps(const struct tapir_loader *l, size_t i)
{
	switch (i) {
	case 0: return http_map(l, "conns");
	case 1:
		return l->http.obj ? http_map(l, "watched_cgroups")
				   : (l->lc ? l->lc->maps.watched_cgroups : NULL);
	case 2: return http_map(l, "stats");
	case 3: return http_map(l, "active_io");
	case 4: return l->lc ? l->lc->maps.listeners : NULL;
	}
	return NULL;
}

#define N_PINNED 5

int tapir_pin_dir_claim(const char *dir)
{
	int err, fd, tries;

	err = tapir_ensure_mount("bpf", "/sys/fs/bpf");
	if (err)
		return err;
	if (mkdir(dir, 0700) && errno != EEXIST) {
		err = -errno;
		pr_err("cannot create the pin directory %s: %s", dir, strerror(errno));
		return err;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		pr_err("cannot open the pin directory %s: %s", dir, strerror(errno));
		return err;
	}
	/* A daemon killed a moment ago holds the lock until its exit has torn its BPF
	 * programs down: give that a few seconds before calling the directory taken. */
	for (tries = 0; flock(fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK && tries < 50; tries++)
		usleep(100 * 1000);
	if (tries == 50 || flock(fd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK || tries == 50 ? -EBUSY : -errno;
		if (err == -EBUSY)
			pr_err("pin directory %s is owned by a running tapir: give this one another "
			       "--pin-dir, or --pin-dir none",
			       dir);
		else
			pr_err("cannot lock the pin directory %s: %s", dir, strerror(errno));
		close(fd);
		return err;
	}
	return fd;
}

int tapir_pin_dir_owned(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), owned;

	if (fd < 0)
		return -errno;
	/* A shared lock is granted only while no daemon holds its exclusive one. */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		owned = 0;
		flock(fd, LOCK_UN);
	} else {
		owned = errno == EWOULDBLOCK ? 1 : -errno;
	}
	close(fd);
	return owned;
}

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

static int map_fd(const struct bpf_map *m);

int tapir_loader__llm_fd(const struct tapir_loader *l)
{
	return l->llm_on ? map_fd(http_map(l, "llm_events")) : -1;
}

int tapir_loader__h2_fd(const struct tapir_loader *l)
{
	return l->http.obj && l->h2_on ? map_fd(http_map(l, "h2_events")) : -1;
}

int tapir_loader__ring_fd(const struct tapir_loader *l)
{
	return ring_buffer__epoll_fd(l->rb);
}

int tapir_loader__consume(struct tapir_loader *l)
{
	return ring_buffer__consume(l->rb);
}

void tapir_loader__free(struct tapir_loader *l)
{
	size_t i;

	if (!l)
		return;
	unpin(l);
	for (i = 0; i < l->n_hang; i++) {
		bpf_link__destroy(l->hang[i].link[0]);
		bpf_link__destroy(l->hang[i].link[1]);
	}
	free(l->hang);
	for (i = 0; i < l->n_progs; i++)
		bpf_link__destroy(l->links[i]);
	ring_buffer__free(l->rb);
	lifecycle_bpf__destroy(l->lc);
	http_close(&l->http);
	free(l);
}

static int map_fd(const struct bpf_map *m)
{
	return m ? bpf_map__fd(m) : -1;
}

int tapir_loader__watched_fd(const struct tapir_loader *l)
{
	return map_fd(pinned_maps(l, 1));
}

int tapir_loader__prestart_fd(const struct tapir_loader *l)
{
	return map_fd(http_map(l, "prestart"));
}

int tapir_loader__conns_fd(const struct tapir_loader *l)
{
	return map_fd(http_map(l, "conns"));
}

int tapir_loader__agg_fd(const struct tapir_loader *l)
{
	return l->agg_on ? map_fd(http_map(l, "http_agg")) : -1;
}

int tapir_loader__own_clients_fd(const struct tapir_loader *l)
{
	return map_fd(http_map(l, "own_clients"));
}

int tapir_loader__stats_fd(const struct tapir_loader *l)
{
	return map_fd(http_map(l, "stats"));
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

/* tapir check: one object of @feature/@variant opened with only program @k set to load. */
static int check_open(const char *feature, int variant, struct http_obj *h)
{
	struct lifecycle_bpf *lc;

	if (!strcmp(feature, "http"))
		return http_open(h, variant);
	lc = lifecycle_bpf__open();
	if (!lc)
		return -errno;
	*h = (struct http_obj){ .variant = "",
				.obj = lc->obj,
				.skel = lc,
				.destroy = (void (*)(void *))lifecycle_bpf__destroy };
	return 0;
}

/* Load each program of one feature/variant on its own; returns how many could not load. */
/*
 * Load each program of @feature alone and print its fate. Returns how many required programs
 * failed; @opt_bad[hooks] counts failures of the optional hook sets (socket, fexit, skb), which
 * only decide where the loop build watches sends and receives.
 */
static int check_feature(const char *feature, int variant, FILE *out, int *opt_bad)
{
	struct tapir_loader probe = { 0 };
	struct http_obj h;
	struct bpf_program *p;
	struct bpf_link *link;
	int n = 0, k, j, failed = 0, err, set;
	char verdict[200], why[160];

	if (check_open(feature, variant, &h))
		return 1;
	bpf_object__for_each_program (p, h.obj)
		n++;
	http_close(&h);
	for (k = 0; k < n; k++) {
		const struct tapir_prog_status *st;
		const char *result = "loaded";
		int bad = 0;

		if (check_open(feature, variant, &h))
			return failed + 1;
		probe.n_progs = 0;
		probe_hooks(&probe, h.obj, feature, h.variant, TAPIR_HOOKS_AUTO);
		j = 0;
		bpf_object__for_each_program (p, h.obj)
			bpf_program__set_autoload(p, j++ == k && bpf_program__autoload(p));
		st = &probe.progs[k];
		p = bpf_object__find_program_by_name(h.obj, st->name);
		set = prog_hooks(p);
		if (!strcmp(feature, "http"))
			http_size(&h, 1024, 1 << 16, true); /* small maps: a dry run */
		if (set == TAPIR_HOOKS_SKB) /* as the daemon loads them (load_http_variant()) */
			((struct http_bpf *)h.skel)->rodata->skb_on = 1;
		vlog.prog[0] = vlog.tail[0] = '\0';
		if (st->reason) {
			result = st->why;
			/* A missing hook is expected only where a function's arguments pick one
			 * program out of several (fexit_tcp_recvmsgN); any other counts. */
			bad = set != TAPIR_HOOKS_FEXIT ||
			      strncmp(st->name, "fexit_tcp_recvmsg", 17) ||
			      kernel_func_args("tcp_recvmsg") < 0;
		} else if ((err = bpf_object__load(h.obj))) {
			snprintf(verdict, sizeof(verdict), "REFUSED: %s",
				 vlog.tail[0] ? verifier_verdict(why, sizeof(why))
					      : strerror(-err));
			result = verdict;
			bad = 1;
		} else if (set == TAPIR_HOOKS_FEXIT) {
			/* Some kernels load trampolines and refuse to attach them. */
			link = bpf_program__attach(p);
			if (!link) {
				snprintf(verdict, sizeof(verdict), "loaded, attach REFUSED: %s",
					 strerror(errno));
				result = verdict;
				bad = 1;
			}
			bpf_link__destroy(link);
		} else if (set == TAPIR_HOOKS_SKB && (err = skb_try_root(p))) {
			/* As the daemon tries them before it picks them (skb_hang_works()). */
			snprintf(verdict, sizeof(verdict), "loaded, attach REFUSED: %s",
				 strerror(-err));
			result = verdict;
			bad = 1;
		}
		if (bad && (set == TAPIR_HOOKS_SOCKET || set == TAPIR_HOOKS_FEXIT ||
			    set == TAPIR_HOOKS_SKB))
			opt_bad[set]++;
		else if (bad)
			failed++;
		fprintf(out, "%-22s %-10s %-7s %s\n", st->name, feature, h.variant, result);
		http_close(&h);
	}
	return failed;
}

int tapir_loader_check(const struct tapir_config *cfg, FILE *out)
{
	bool has_loop = variant_supported(TAPIR_BPF_LOOP);
	int http_bad[2] = { 0, 0 }, opt_bad[2][TAPIR_HOOKS_SKB + 1] = { { 0 } }, lc_bad, err, v;
	const char *loop_hooks;

	vlog.quiet = true;
	libbpf_set_print(libbpf_log);
	err = preflight();
	if (!err)
		err = tapir_ensure_mount("tracefs", "/sys/kernel/tracing");
	if (err)
		return err;
	fprintf(out, "kernel %s: BTF yes, ring buffer yes, bpf_loop %s\n\n", kernel_release(),
		has_loop ? "yes" : "no (5.17+): the compat variant serves HTTP");
	fprintf(out, "%-22s %-10s %-7s %s\n", "PROGRAM", "FEATURE", "VARIANT", "RESULT");
	for (v = 0; v < 2; v++) {
		int variant = v ? TAPIR_BPF_COMPAT : TAPIR_BPF_LOOP;

		if (!variant_supported(variant)) {
			fprintf(out, "%-22s %-10s %-7s %s\n", "(all)", "http", "loop",
				"not available: no bpf_loop helper");
			http_bad[v] = 1;
			continue;
		}
		http_bad[v] = check_feature("http", variant, out, opt_bad[v]);
	}
	lc_bad = check_feature("lifecycle", 0, out, opt_bad[1]);
	loop_hooks = cgroup2_root(NULL, 0) && !opt_bad[0][TAPIR_HOOKS_SKB]
			     ? "work (loop variant, skb hooks)"
		     : kernel_has_sock_tp() && !opt_bad[0][TAPIR_HOOKS_SOCKET]
			     ? "work (loop variant, socket hooks)"
		     : kernel_has_tcp_funcs() && !opt_bad[0][TAPIR_HOOKS_FEXIT]
			     ? "work (loop variant, fexit hooks)"
			     : "work (loop variant, syscall hooks)";
	fprintf(out, "\nrequest families (http): %s\n",
		!http_bad[0]   ? loop_hooks
		: !http_bad[1] ? (kernel_has_tcp_funcs() && !opt_bad[1][TAPIR_HOOKS_FEXIT]
					  ? "work (compat variant, fexit hooks)"
					  : "work (compat variant, syscall hooks)")
			       : "CANNOT WORK: no variant loads completely");
	fprintf(out, "socket-buffer hooks (--bpf-hooks skb): %s\n",
		!has_loop		      ? "no (the loop variant's)"
		: opt_bad[0][TAPIR_HOOKS_SKB] ? "DO NOT LOAD: see http_skb_in, http_skb_out"
					      : "work");
	fprintf(out, "restarts, exit reasons, readiness (lifecycle): %s\n",
		lc_bad ? "DEGRADED: see the programs above" : "work");
	fprintf(out, "container CPU, memory and GPU: work (no BPF needed)\n");
	(void)cfg;
	return (http_bad[0] && http_bad[1]) || lc_bad ? 1 : 0;
}
