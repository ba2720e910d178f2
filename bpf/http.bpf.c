// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Server-side HTTP/1.x from syscall tracepoints: one ring-buffer record per answered request. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "tapir/http.h"
#include "tapir.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Two variants of this file are built (see the loader): the default one walks a syscall's bytes
 * with bpf_loop (5.17+) and verifies its parser steps once as global functions; the compat
 * variant (http_compat.bpf.c, TAPIR_COMPAT) runs for kernels without bpf_loop or without global
 * functions that take pointers (5.12+): a bounded loop of COMPAT_STEPS steps per program run,
 * continued by tail calls. Both share every line of parsing and connection logic.
 */
#ifdef TAPIR_COMPAT
#define TAPIR_SUBPROG static __always_inline
#define COMPAT_STEPS  32 /* parser steps per run of walk_more; up to 33 runs per syscall */
#else
#define TAPIR_SUBPROG __noinline
#endif

/* Knobs the loader sets before load. */
const volatile __u32 loop_max = 65536;	     /* parser steps per syscall */
const volatile __u64 wakeup_bytes = 1 << 20; /* wake the reader once this much is queued */
const volatile __u32 self_tgid = 0;	     /* the daemon: never traced (its own /metrics) */
/* Fault injection for the tests (TAPIR_TEST_VERIFIER_REFUSE=1): a program the verifier must
 * refuse, so the degraded start is tested against a real refusal. */
const volatile __u32 test_refuse = 0;

#define IO_PLAIN TAPIR_IO_PLAIN
#define IO_IOV	 TAPIR_IO_IOV
#define IO_BLIND TAPIR_IO_BLIND
#define DIR_IN	 TAPIR_DIR_IN
#define DIR_OUT	 TAPIR_DIR_OUT

/* A syscall between its enter and exit tracepoints. */
struct tapir_io {
	__u64 buf; /* user buffer, or iovec array */
	__u64 ts;  /* entry time */
	__u32 fd;
	__u32 iovcnt;
	__u8 kind;    /* IO_* */
	__u8 dir;     /* DIR_* */
	__u8 peek;    /* MSG_PEEK: the bytes will be read again */
	__u8 sk_kind; /* TAPIR_FD_* from sock_{send,recv}_length, 0 if not seen */
	__u8 __pad[4];
};

/*
 * The walk and the connection driver (include/tapir/walk.h, conn.h) with this file's hooks:
 * stats and records into maps, reads of user memory. The parser step, the fast path and the
 * event handler are global functions in the loop build: the verifier checks each once, on its
 * own, instead of once per path into the loop callback, which keeps load time and the
 * 1M-instruction budget in check.
 */
static __always_inline void tapir_conn_stat(void *env, __u32 idx);
static __always_inline void tapir_conn_record(void *env, struct tapir_conn *c, __u32 slot,
					      __u8 outcome, __u16 status, __u64 now);
static __always_inline int tapir_walk_read(void *dst, __u32 n, __u64 src);
struct tapir_walk;
TAPIR_SUBPROG int http_feed(struct tapir_http_parser *p, __u32 c);
TAPIR_SUBPROG int http_fast(struct tapir_http_parser *p, __u64 x0, __u64 x1);
TAPIR_SUBPROG int handle_event(struct tapir_conn *c, int ev, struct tapir_walk *w);
#define TAPIR_CONN_ENV			void
#define TAPIR_WALK_FEED(p, c)		http_feed(p, c)
#define TAPIR_WALK_FAST(p, x0, x1)	http_fast(p, x0, x1)
#define TAPIR_WALK_EVENT(env, c, ev, w) handle_event(c, ev, w)
#include "tapir/walk.h"

struct tapir_scratch {
	struct tapir_walk w;
	struct tapir_conn tmpl; /* a new connection, built here rather than on the stack */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* cgroup v2 id */
	__type(value, struct tapir_cgroup_info);
} watched_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* resized by the loader from limits.max_connections */
	__type(key, struct tapir_conn_key);
	__type(value, struct tapir_conn);
} conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tapir_io);
} active_io SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by the loader from limits.ringbuf_bytes */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TAPIR_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tapir_scratch);
} scratch SEC(".maps");

#ifdef TAPIR_COMPAT
/* The walk continues in walk_more: slot 0, filled by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} walkers SEC(".maps");
#endif

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline struct tapir_scratch *get_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

static __always_inline struct tapir_cgroup_info *current_watched(void)
{
	__u64 id = bpf_get_current_cgroup_id();

	return bpf_map_lookup_elem(&watched_cgroups, &id);
}

/* Hooks of the connection driver (include/tapir/conn.h). Map keys are copied to the stack
 * first: some kernels (6.1) refuse a key that points into a function's pointer argument. */
static __always_inline void tapir_conn_stat(void *env, __u32 idx)
{
	stat_inc(idx);
}

static __always_inline void tapir_conn_record(void *env, struct tapir_conn *c, __u32 slot,
					      __u8 outcome, __u16 status, __u64 now)
{
	__u32 h = slot & (TAPIR_MAX_PENDING - 1);
	struct tapir_http_event *e;
	__u64 flags;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(TAPIR_STAT_RINGBUF_LOST);
		return;
	}
	e->type = TAPIR_REC_HTTP;
	e->labels_id = c->labels_id;
	e->cgroup_id = c->cgroup_id;
	e->start_ns = c->start_ns[h];
	e->first_byte_ns = c->first_byte_ns;
	e->end_ns = now;
	e->req_bytes = c->req_bytes[h];
	e->resp_bytes = c->resp_bytes;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->status = status;
	e->method = c->method[h];
	e->outcome = outcome;
	__builtin_memcpy(e->line, c->line[h], TAPIR_LINE_BYTES);
	/* Batch wake-ups: the reader polls on a short timer anyway, and a wake-up per request
	 * would cost the traced server a context switch per request. */
	flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
									      : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

static __always_inline int tapir_walk_read(void *dst, __u32 n, __u64 src)
{
	return bpf_probe_read_user(dst, n, (void *)src);
}

TAPIR_SUBPROG int http_feed(struct tapir_http_parser *p, __u32 c)
{
	if (!p)
		return TP_EV_ERROR;
	return tapir_http_feed(p, c);
}

TAPIR_SUBPROG int http_fast(struct tapir_http_parser *p, __u64 x0, __u64 x1)
{
	if (!p)
		return 0;
	return tapir_http_fast(p, x0, x1);
}

TAPIR_SUBPROG int handle_event(struct tapir_conn *c, int ev, struct tapir_walk *w)
{
	if (!c || !w)
		return TAPIR_STOP;
	return tapir_walk_event(NULL, c, ev, w);
}

static __always_inline int walk_step(struct tapir_walk *w, struct tapir_conn *c)
{
	return tapir_walk_step(NULL, w, c);
}

/* The walk of this CPU, and its connection (looked up again in each program run). */
static __always_inline struct tapir_conn *walk_conn(struct tapir_walk **wp)
{
	struct tapir_scratch *s = get_scratch();
	struct tapir_conn_key key;

	if (!s)
		return NULL;
	*wp = &s->w;
	key = s->w.key;
	return bpf_map_lookup_elem(&conns, &key);
}

#ifdef TAPIR_COMPAT
/* Steps of a walk, COMPAT_STEPS per run, each run tail-calling the next (up to 33 in all). */
SEC("tracepoint")
int walk_more(void *ctx)
{
	struct tapir_walk *w = NULL;
	struct tapir_conn *c = walk_conn(&w);
	int i;

	if (!c || !w)
		return 0;
	for (i = 0; i < COMPAT_STEPS; i++)
		if (walk_step(w, c))
			return 0;
	bpf_tail_call(ctx, &walkers, 0);
	/* Out of tail calls: a syscall longer than this variant can follow. */
	tapir_conn_abandon(NULL, c, TAPIR_STAT_SCAN_LIMIT);
	return 0;
}

static __always_inline void run_walk(void *ctx, struct tapir_walk *w, struct tapir_conn *c)
{
	bpf_tail_call(ctx, &walkers, 0);
	tapir_conn_abandon(NULL, c, TAPIR_STAT_SCAN_LIMIT); /* walk_more is missing */
}
#else
struct walk_args {
	struct tapir_walk *w;
	struct tapir_conn *c;
};

static long walk_cb(__u32 i, void *arg)
{
	struct walk_args *a = arg;

	return walk_step(a->w, a->c);
}

static __always_inline void run_walk(void *ctx, struct tapir_walk *w, struct tapir_conn *c)
{
	struct walk_args a = { .w = w, .c = c };

	bpf_loop(loop_max, walk_cb, &a, 0);
	if (!w->done)
		tapir_conn_abandon(NULL, c, TAPIR_STAT_SCAN_LIMIT);
}
#endif

/* Start walking a syscall's @len bytes through connection @c. */
static __always_inline void walk(void *ctx, struct tapir_conn_key *key, struct tapir_io *io,
				 __u64 len, struct tapir_conn *c)
{
	struct tapir_scratch *s = get_scratch();

	if (!s)
		return;
	tapir_walk_begin(&s->w, key, io->kind, io->dir, io->buf, io->iovcnt, len, io->ts,
			 bpf_ktime_get_ns());
	run_walk(ctx, &s->w, c);
}

/* Track a new connection; @full_stat counts it when the conns map has no room. */
static __always_inline struct tapir_conn *new_conn(struct tapir_conn_key *key, __u32 labels_id,
						   __u64 cgid, __u32 full_stat)
{
	struct tapir_scratch *s = get_scratch();
	struct tapir_conn *t;

	if (!s)
		return NULL;
	t = &s->tmpl;
	__builtin_memset(t, 0, sizeof(*t));
	t->state = TAPIR_CONN_NEW;
	t->cgroup_id = cgid;
	t->labels_id = labels_id;
	tapir_http_init(&t->req, TP_KIND_REQUEST);
	tapir_http_init(&t->resp, TP_KIND_RESPONSE);
	if (bpf_map_update_elem(&conns, key, t, BPF_ANY)) {
		stat_inc(full_stat);
		return NULL;
	}
	return bpf_map_lookup_elem(&conns, key);
}

/*
 * A read on an fd we never saw accepted (the connection predates tapir, came through a path
 * we do not hook, or found the conns map full at accept): follow it from here if it is TCP
 * and the bytes open a request line.
 */
static __always_inline struct tapir_conn *pick_up(struct tapir_conn_key *key, struct tapir_io *io,
						  __u64 len)
{
	struct tapir_cgroup_info *cg;
	__u64 ubuf = io->buf, tok = 0, cgid;
	__u8 head[8];
	int i, kind;

	if (io->kind == IO_BLIND || len < 4)
		return NULL;
	if (io->kind == IO_IOV && bpf_probe_read_user(&ubuf, sizeof(ubuf), (void *)io->buf))
		return NULL;
	if (bpf_probe_read_user(head, sizeof(head), (void *)ubuf))
		return NULL;
	for (i = 0; i < 8; i++) {
		if (head[i] == ' ')
			break;
		tok = (tok << 8) | head[i];
	}
	i = tapir_method_id(tok);
	if (i == TP_M_UNKNOWN || i == TP_M_PRI)
		return NULL;
	kind = io->sk_kind ? io->sk_kind : tapir_fd_kind(io->fd);
	if (kind != TAPIR_FD_TCP) {
		if (kind == TAPIR_FD_SOCK) /* e.g. an HTTP-looking UDP datagram */
			stat_inc(TAPIR_STAT_IGNORED_NOT_TCP);
		return NULL;
	}
	cgid = bpf_get_current_cgroup_id();
	cg = bpf_map_lookup_elem(&watched_cgroups, &cgid);
	if (!cg)
		return NULL;
	/* A request starts here and cannot be followed: one record lost. */
	return new_conn(key, cg->labels_id, cgid, TAPIR_STAT_REQ_UNTRACKED);
}

static __always_inline int enter_io(__u32 fd, __u64 buf, __u32 iovcnt, __u8 kind, __u8 dir,
				    __u8 peek)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tapir_conn_key key = { .tgid = id >> 32, .fd = fd };
	struct tapir_io io = {};
	struct tapir_conn *c;

	if (key.tgid == self_tgid)
		return 0;
	if (dir == DIR_OUT) {
		/* Connections exist only in watched cgroups: for a write, the connection lookup
		 * is the filter, one lookup for unwatched processes as for reads. */
		c = bpf_map_lookup_elem(&conns, &key);
		if (!c || c->state >= TAPIR_CONN_IGNORED)
			return 0;
	} else {
		if (!current_watched())
			return 0;
		c = bpf_map_lookup_elem(&conns, &key);
		if (c && c->state >= TAPIR_CONN_IGNORED)
			return 0; /* not HTTP/1.x, or no longer */
	}
	io.buf = buf;
	io.ts = bpf_ktime_get_ns();
	io.fd = fd;
	io.iovcnt = iovcnt;
	io.kind = kind;
	io.dir = dir;
	io.peek = peek;
	if (bpf_map_update_elem(&active_io, &id, &io, BPF_ANY))
		stat_inc(TAPIR_STAT_IO_TABLE_FULL);
	return 0;
}

/* A new connection whose first bytes start a TLS handshake is not followed. */
static __always_inline bool starts_tls(struct tapir_io *io)
{
	__u64 ubuf = io->buf;
	__u8 first = 0;

	if (io->kind == IO_BLIND)
		return false;
	if (io->kind == IO_IOV && bpf_probe_read_user(&ubuf, sizeof(ubuf), (void *)io->buf))
		return false;
	return !bpf_probe_read_user(&first, 1, (void *)ubuf) && first == 0x16;
}

static __always_inline int exit_io(void *ctx, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tapir_conn_key key;
	struct tapir_io *iop, io;
	struct tapir_conn *c;

	iop = bpf_map_lookup_elem(&active_io, &id);
	if (!iop)
		return 0;
	io = *iop;
	bpf_map_delete_elem(&active_io, &id);

	key.tgid = id >> 32;
	key.fd = io.fd;
	c = bpf_map_lookup_elem(&conns, &key);
	if (ret <= 0) {
		if (c && ((ret == 0 && io.dir == DIR_IN) || ret == -ECONNRESET || ret == -EPIPE))
			c->flags |= TAPIR_CF_PEER_GONE;
		return 0;
	}
	if (io.peek)
		return 0;
	if (!c) {
		if (io.dir != DIR_IN)
			return 0;
		c = pick_up(&key, &io, ret);
		if (!c)
			return 0;
	}
	if (c->state >= TAPIR_CONN_IGNORED)
		return 0;
	if (c->state == TAPIR_CONN_NEW && io.dir == DIR_OUT && !(c->flags & TAPIR_CF_PRESTART)) {
		tapir_conn_abandon(NULL, c,
				   TAPIR_STAT_IGNORED_NOT_HTTP); /* the server spoke first */
		return 0;
	}
	if (c->state == TAPIR_CONN_NEW && io.dir == DIR_IN && starts_tls(&io)) {
		tapir_conn_abandon(NULL, c, TAPIR_STAT_IGNORED_TLS); /* a TLS ClientHello record */
		return 0;
	}
	walk(ctx, &key, &io, ret, c);
	return 0;
}

static __always_inline int exit_accept(long ret)
{
	struct tapir_conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = ret };
	struct tapir_cgroup_info *cg;
	struct tapir_conn *old, *c;
	__u64 cgid;
	int kind;

	if (test_refuse) /* dead code unless set: the verifier knows the value */
		return *(volatile __u32 *)(unsigned long)test_refuse;
	if (ret < 0 || key.tgid == self_tgid)
		return 0;
	cgid = bpf_get_current_cgroup_id();
	cg = bpf_map_lookup_elem(&watched_cgroups, &cgid);
	if (!cg)
		return 0;
	kind = tapir_fd_kind(ret);
	old = bpf_map_lookup_elem(&conns, &key);
	if (old) {
		/* The fd was closed behind our back (close_range, exec, dup2): settle it. */
		stat_inc(TAPIR_STAT_CONN_REPLACED);
		tapir_conn_finalize(NULL, old, bpf_ktime_get_ns());
	}
	c = new_conn(&key, cg->labels_id, cgid, TAPIR_STAT_CONN_TABLE_FULL);
	if (c && kind != TAPIR_FD_TCP) {
		/* Unix (or other) stream sockets: remembered as ignored so that their reads
		 * cost one lookup and are not looked at as a possible mid-stream pick-up. */
		stat_inc(TAPIR_STAT_IGNORED_NOT_TCP);
		c->state = TAPIR_CONN_IGNORED;
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return exit_accept(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int sys_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return exit_accept(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_close")
int sys_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	struct tapir_conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32,
				      .fd = ctx->args[0] };
	struct tapir_conn *c;

	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	if (c->count && !(c->flags & TAPIR_CF_PEER_GONE) && tapir_fd_peer_gone(key.fd))
		c->flags |= TAPIR_CF_PEER_GONE;
	tapir_conn_finalize(NULL, c, bpf_ktime_get_ns());
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_read")
int sys_enter_read(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], ctx->args[1], 0, IO_PLAIN, DIR_IN, 0);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int sys_enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], ctx->args[1], 0, IO_PLAIN, DIR_IN,
			!!(ctx->args[3] & MSG_PEEK));
}

SEC("tracepoint/syscalls/sys_enter_readv")
int sys_enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], ctx->args[1], ctx->args[2], IO_IOV, DIR_IN, 0);
}

static __always_inline int enter_msg(struct trace_event_raw_sys_enter *ctx, __u8 dir)
{
	struct user_msghdr msg;

	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)ctx->args[1]))
		return 0;
	return enter_io(ctx->args[0], (__u64)msg.msg_iov, msg.msg_iovlen, IO_IOV, dir,
			dir == DIR_IN && (ctx->args[2] & MSG_PEEK));
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int sys_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	return enter_msg(ctx, DIR_IN);
}

SEC("tracepoint/syscalls/sys_enter_write")
int sys_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], ctx->args[1], 0, IO_PLAIN, DIR_OUT, 0);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int sys_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], ctx->args[1], 0, IO_PLAIN, DIR_OUT, 0);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int sys_enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], ctx->args[1], ctx->args[2], IO_IOV, DIR_OUT, 0);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sys_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return enter_msg(ctx, DIR_OUT);
}

SEC("tracepoint/syscalls/sys_enter_sendfile64")
int sys_enter_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	return enter_io(ctx->args[0], 0, 0, IO_BLIND, DIR_OUT, 0);
}

/* Every exit shares one body: the entry stashed what kind of I/O it was. */
#define EXIT_PROG(name)                                           \
	SEC("tracepoint/syscalls/sys_exit_" #name)                \
	int sys_exit_##name(struct trace_event_raw_sys_exit *ctx) \
	{                                                         \
		return exit_io(ctx, ctx->ret);                    \
	}

EXIT_PROG(read)
EXIT_PROG(recvfrom)
EXIT_PROG(readv)
EXIT_PROG(recvmsg)
EXIT_PROG(write)
EXIT_PROG(sendto)
EXIT_PROG(writev)
EXIT_PROG(sendmsg)
EXIT_PROG(sendfile64)

/*
 * Kernels with the sock_{send,recv}_length tracepoints (6.3+) tell us which socket a syscall
 * used while it runs, sparing the file-table walk when a connection is picked up mid-stream.
 * Only threads inside a followed syscall pay more than the active_io lookup. The loader turns
 * these off on older kernels.
 */
static __always_inline int note_sock(struct sock *sk)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tapir_io *io = bpf_map_lookup_elem(&active_io, &id);

	if (io)
		io->sk_kind =
			tapir_sock_kind(sk->__sk_common.skc_family, sk->sk_type, sk->sk_protocol);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(tp_sock_recv_length, struct sock *sk, int ret, int flags)
{
	return note_sock(sk);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(tp_sock_send_length, struct sock *sk, int ret, int flags)
{
	return note_sock(sk);
}
