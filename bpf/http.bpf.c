// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Server-side HTTP/1.x from socket or syscall hooks: each answered request aggregated per series,
 * or handed to the daemon as a ring-buffer record. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#ifdef TAPIR_COMPAT
/* The compat build inlines every parser step COMPAT_STEPS times into one program: its steps
 * keep to the 16-byte fast path, one shortcut, no header-value shortcuts and no whole heads,
 * which keeps the verifier's walk of it under its 1M-instruction budget on 5.10. */
#define TAPIR_SKIPS	   0
#define TAPIR_HEADS	   0
#define TAPIR_LOAD_BARRIER 0
#define TAPIR_OPS_PER_STEP 1
#define TAPIR_FEED_IN_OPS  0
#define TAPIR_FAST_VALUES  0
#endif

#ifndef TAPIR_COMPAT
#define TAPIR_HEAD_LINE_FN http_head_line /* defined below */
#endif

#include "tapir/http.h"
#include "tapir/h2_frame.h"
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
#define COMPAT_STEPS  32 /* parser steps per run of walk_more; up to 32 runs per syscall */
#else
#define TAPIR_SUBPROG __noinline
#endif

/* Knobs the loader sets before load. */
const volatile __u32 loop_max = 65536;	     /* parser steps per syscall */
const volatile __u64 wakeup_bytes = 1 << 20; /* wake the reader once this much is queued */
const volatile __u32 self_tgid = 0;	     /* the daemon: never traced (its own /metrics) */
const volatile __u32 have_destroy_tp = 0;    /* tcp:tcp_destroy_sock is attached */
const volatile __u32 outbound_on = 0;	     /* follow the connections watched processes open */
/* Aggregation in the kernel (include/tapir/agg.h); off in the compat build and when the
 * configured buckets do not fit. Bounds in nanoseconds and bytes. */
const volatile __u32 agg_on = 0;
const volatile __u32 n_lat_bounds = 0;
const volatile __u32 n_size_bounds = 0;
const volatile __u32 n_probes = 0;
const volatile __u64 lat_bounds[TAPIR_AGG_BOUNDS] = {};
const volatile __u64 size_bounds[TAPIR_AGG_BOUNDS] = {};
const volatile __u64 probe_word[TAPIR_AGG_PROBES] = {};
const volatile __u64 probe_mask[TAPIR_AGG_PROBES] = {};
/* LLM payload: the path table (struct tapir_llm_chunk in include/tapir/http.h), as the loader
 * writes it: each entry's first TAPIR_LLM_PATH_WORDS * 8 path bytes under a mask, its length,
 * and the API it names; and the bytes handed over of a request (from its line) and an answer. */
const volatile __u32 llm_on = 0;
const volatile __u32 n_llm_paths = 0;
const volatile __u64 llm_word[TAPIR_LLM_PATHS][TAPIR_LLM_PATH_WORDS] = {};
const volatile __u64 llm_mask[TAPIR_LLM_PATHS][TAPIR_LLM_PATH_WORDS] = {};
const volatile __u8 llm_len[TAPIR_LLM_PATHS] = {};
const volatile __u8 llm_api_of[TAPIR_LLM_PATHS] = {};
const volatile __u32 llm_req_bytes = 16384;
const volatile __u32 llm_resp_bytes = 1 << 20;
const volatile __u64 llm_wakeup_bytes = 1 << 20;
const volatile __u64 h2_wakeup_bytes = 1 << 20; /* h2_events: wake the reader this full */
const volatile __u32 h2_on = 1; /* follow HTTP/2 (off: the compat build without h2_more) */
/* The socket-buffer hooks (http_skb_in, http_skb_out) are the ones attached: new connections
 * start their sequence numbers where the kernel's socket has them. */
const volatile __u32 skb_on = 0;
/*
 * Is this a socket-buffer hook's path (@skb: its segment, or NULL, a constant elsewhere)? With
 * those hooks no other is loaded, so skb_on decides, a value the verifier knows: older
 * verifiers (6.1) do not know that a context pointer is never NULL, and would walk the other
 * branch, whose helpers (bpf_get_current_cgroup_id) a cgroup_skb program may not call.
 */
#define SKB_PATH(skb) (skb_on || (skb) != NULL)
/* The daemon's own cgroup (v2 id): with those hooks no process is known, so its connections (its
 * /metrics, its engine scrapes) are told apart by their cgroup, never followed. */
const volatile __u64 self_cgid = 0;
/* Some rule has async rules (TAPIR_CF_HEADS connections may exist): without, the verifier drops
 * the head capture's branch (the compat build's walk is near the 1M-instruction limit). */
const volatile __u32 heads_on = 0;
/* Fault injection for the tests (TAPIR_TEST_VERIFIER_REFUSE=1, or =h2 for h2_more alone): a
 * program the verifier must refuse, so the degraded start is tested against a real refusal. */
const volatile __u32 test_refuse = 0;

#define IO_PLAIN TAPIR_IO_PLAIN
#define IO_IOV	 TAPIR_IO_IOV
#define IO_BLIND TAPIR_IO_BLIND
#define DIR_IN	 TAPIR_DIR_IN
#define DIR_OUT	 TAPIR_DIR_OUT

/* A send or receive being followed: from the syscall's entry to its exit (syscall hooks), or
 * rebuilt from the syscall's registers inside the socket layer (socket hooks). */
struct tapir_io {
	__u64 buf;  /* user buffer, or iovec array */
	__u64 ts;   /* entry time (syscall hooks); the time of the socket call (socket hooks) */
	__u64 sock; /* struct sock */
	__u32 fd;
	__u32 iovcnt;
	__u8 kind;    /* IO_* */
	__u8 dir;     /* DIR_* */
	__u8 peek;    /* MSG_PEEK: the bytes will be read again */
	__u8 at_call; /* ts was taken in the socket call itself: it is "now" too */
	__u32 tgid;
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
static __always_inline int tapir_walk_read(void *env, void *dst, __u32 n, __u64 src);
struct tapir_walk;
TAPIR_SUBPROG int http_feed(struct tapir_http_parser *p, __u32 c);
TAPIR_SUBPROG int http_fast(struct tapir_http_parser *p, __u64 x0, __u64 x1);
TAPIR_SUBPROG int handle_event(struct tapir_conn *c, int ev, struct tapir_walk *w);
TAPIR_SUBPROG int conn_settle(struct tapir_conn *c);
TAPIR_SUBPROG int http_skip(struct tapir_http_parser *p, struct tapir_walk *w, __u32 at);
TAPIR_SUBPROG int http_head(struct tapir_http_parser *p, struct tapir_walk *w, __u32 at);
#define TAPIR_CONN_ENV			void
#define TAPIR_WALK_FEED(p, c)		http_feed(p, c)
#define TAPIR_WALK_FAST(p, x0, x1)	http_fast(p, x0, x1)
#define TAPIR_WALK_EVENT(env, c, ev, w) handle_event(c, ev, w)
#define TAPIR_WALK_SKIP(p, w, at)	http_skip(p, w, at)
#define TAPIR_WALK_HEAD(p, w, at)	http_head(p, w, at)
#define TAPIR_CONN_SETTLE(env, c)	conn_settle(c)
#include "tapir/walk.h"

/* The fields a socket-buffer hook's run touches first come first, on one cache line. */
struct tapir_scratch {
	__u32 nest; /* slot 0's: socket-buffer hook runs under way on this CPU (skb_prog()) */
	__u32 __pad;
	struct tapir_io io; /* a socket-buffer hook's segment, for skb_conn_io() */
	struct tapir_walk w;
	struct tapir_conn tmpl; /* a new connection, built here rather than on the stack */
	struct tapir_agg zero;	/* a new series: never written */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* cgroup v2 id */
	__type(value, struct tapir_cgroup_info);
} watched_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); /* limits.max_connections, and a slot per CPU (the loader) */
	__type(key, struct tapir_conn_key);
	__type(value, struct tapir_conn);
} conns SEC(".maps");

/*
 * With the socket-buffer hooks: connections whose first bytes came with the handshake's last ACK
 * (a lost bare ACK, TCP_DEFER_ACCEPT, a client that writes at once). Those bytes reach the
 * listening socket before the connection exists; they are walked there, into an entry here
 * keyed by early_id(), which the connection takes over in conns when it is established. Its
 * sock field keeps that id: the records of its requests all carry the one number. Entries of
 * handshakes that never ended go as the LRU needs room.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct tapir_conn_key);
	__type(value, struct tapir_conn);
} early SEC(".maps");

/* A connection's number before its socket exists: the first byte's sequence number and both
 * ports (host order); odd, where a socket's address is not. */
static __always_inline __u64 early_id(__u32 seq, __u16 lport, __u16 rport)
{
	return ((__u64)seq << 32 | (__u64)lport << 16 | rport) | 1;
}

/* Server connections open when the daemon started, by socket inode (value: cgroup id): the
 * daemon seeds it from /proc; each entry is taken the first time its socket is read or
 * written. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} prestart SEC(".maps");

/* Local addresses and ports of the connections tapir itself makes to the servers it watches
 * (its engine scrapes, user/sources/engine_scrape.c), while they last: not their traffic. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct tapir_peer_key);
	__type(value, __u8);
} own_clients SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tapir_io);
} active_io SEC(".maps");

/* Requests per series and CPU (include/tapir/agg.h): read, never reset, by the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024); /* limits.aggregated_series, bounded by the loader */
	__type(key, struct tapir_agg_key);
	__type(value, struct tapir_agg);
} http_agg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by the loader from limits.ringbuf_bytes */
} events SEC(".maps");

/* LLM payload, apart from the records: its volume must never crowd them out. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* llm.ringbuf_bytes */
} llm_events SEC(".maps");

/* A copy of a syscall's bytes into llm_events, piece by piece. */
struct llm_copy {
	struct tapir_llm_chunk hdr;
	__u8 data[TAPIR_LLM_CHUNK]; /* right after hdr: the two go out as one record */
	__u64 buf;		    /* user buffer, or iovec array */
	__u64 seg_base;		    /* the user address of the rest of the current segment */
	__u64 seg_left;
	__u64 skip; /* bytes at the start of the syscall that are not the request's */
	__u64 left; /* bytes of the syscall not yet copied, skipped or counted lost */
	__u64 seen; /* bytes of the request's direction handed over or lost, this one's too */
	__u32 budget;
	__u32 iov_i;
	__u32 iovcnt;
	__u8 kind;
	__u8 __pad[3];
};

/* Slot 1 is a socket-buffer hook's inside another's, as in scratch. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct llm_copy);
} llm_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TAPIR_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Slot 1 is for a socket-buffer hook's run inside another's on the same CPU: one may run inside
 * another (a softirq's receive interrupting a process's send), each with a slot of its own.
 * Slot 0's nest counts them: one map value touched per run, not two. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct tapir_scratch);
} scratch SEC(".maps");

/* HTTP/2 (see "HTTP/2"): both frame walkers of a connection in TAPIR_CONN_H2, and the hook of
 * include/tapir/h2_conn.h that hands what they find to h2_events. */
struct h2_args;
struct tapir_h2_conn_state;
#define TAPIR_H2_ENV struct h2_args
static __always_inline int tapir_h2_emit(struct h2_args *a, struct tapir_h2_conn_state *h, __u32 d,
					 __u8 kind, __u32 sid, __u32 value, __u32 value2,
					 __u8 flags, __u32 off, __u32 len);
#include "tapir/h2_conn.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384); /* limits.max_connections (the loader) */
	__type(key, __u64);	    /* struct tapir_conn_key */
	__type(value, struct tapir_h2_conn_state);
} h2_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* limits.ringbuf_bytes (the loader) */
} h2_events SEC(".maps");

#ifdef TAPIR_COMPAT
/*
 * The walk continues in walk_more: slot 0 of a program array, filled by the loader. A tail call
 * stays within one program type and, for trampoline programs, one kernel function (some
 * kernels check the attach point too): the syscall tracepoints share `walkers`, and each fexit
 * hook has its array and its walk_more.
 */
#define WALKERS(name)                                  \
	struct {                                       \
		__uint(type, BPF_MAP_TYPE_PROG_ARRAY); \
		__uint(max_entries, 2);                \
		__type(key, __u32);                    \
		__type(value, __u32);                  \
	} name SEC(".maps")

WALKERS(walkers);
WALKERS(walkers_sendmsg);
WALKERS(walkers_recvmsg);
WALKERS(walkers_sendpage);
#define TAILS(map) (&(map))
#else
#define TAILS(map) NULL
#endif

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += n;
}

/* The slot of this run in a scratch map: a socket-buffer hook's (@skb) its depth's, any
 * other's 0. */
static __always_inline __u32 scratch_slot(void *skb)
{
	struct tapir_scratch *s0;
	__u32 k = 0;

	if (SKB_PATH(skb)) {
		s0 = bpf_map_lookup_elem(&scratch, &k);
		k = s0 && s0->nest > 1;
	}
	return k;
}

static __always_inline struct tapir_scratch *scratch_for(void *skb)
{
	__u32 k = scratch_slot(skb);

	return bpf_map_lookup_elem(&scratch, &k);
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

#ifndef TAPIR_COMPAT
/*
 * An ordinary request into the aggregate of its series on this CPU: 0 when it is counted there,
 * else it goes as a record. A series is made on its first request; when the map has no room for
 * it, its requests go as records (counted: TAPIR_STAT_AGG_FULL), never lost. A global function:
 * the verifier checks it once, not once per place a request can end.
 */
__noinline int agg_record(struct tapir_conn *c, __u32 slot, __u32 status, __u64 now)
{
	__u32 h = slot & (TAPIR_MAX_PENDING - 1), at;
	struct tapir_agg_key key = {};
	struct tapir_scratch *s;
	struct tapir_agg *a;
	__u64 start;

	/* An LLM request (its record meets its payload), an outbound one, or any request of an
	 * async rule's cgroup (the daemon classifies each, even one whose head it did not get). */
	if (!c || c->llm_id[h] || (c->flags & (TAPIR_CF_CLIENT | TAPIR_CF_HEADS)))
		return -1;
	/* Eight bytes from the path's start (at most 8 + 8 of the line's 32) tell a request
	 * that may be a readiness probe: the daemon compares its whole path. */
	at = tapir_path_start(c->method[h]);
	if (!at || tapir_probe_candidate(TAPIR_LOAD64(&c->line[h][at & 15]), probe_word, probe_mask,
					 n_probes))
		return -1;
	key.cgroup_id = c->cgroup_id;
	key.labels_id = c->labels_id;
	key.status = status;
	a = bpf_map_lookup_elem(&http_agg, &key);
	if (!a) {
		s = get_scratch();
		if (!s)
			return -1;
		/* EEXIST: another CPU made it meanwhile, and the lookup finds it. */
		bpf_map_update_elem(&http_agg, &key, &s->zero, BPF_NOEXIST);
		a = bpf_map_lookup_elem(&http_agg, &key);
		if (!a) {
			stat_inc(TAPIR_STAT_AGG_FULL);
			return -1;
		}
	}
	start = c->start_ns[h];
	a->requests++;
	a->last_ns = now;
	/* The daemon's rules for a record, in nanoseconds and bytes (daemon.c, account()). */
	if (now >= start)
		tapir_agg_observe(&a->e2e, lat_bounds, n_lat_bounds, now - start);
	if (c->first_byte_ns && c->first_byte_ns >= start)
		tapir_agg_observe(&a->ttfb, lat_bounds, n_lat_bounds, c->first_byte_ns - start);
	tapir_agg_observe(&a->req_size, size_bounds, n_size_bounds, c->req_bytes[h]);
	tapir_agg_observe(&a->resp_size, size_bounds, n_size_bounds, c->resp_bytes);
	return 0;
}
#endif

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

#ifndef TAPIR_COMPAT
	/* A 101 is always a record: the daemon pairs an h2c upgrade with its stream 1. */
	if (agg_on && outcome != TAPIR_OUT_UPGRADED &&
	    !agg_record(c, slot, tapir_status_label(outcome, status), now))
		return;
#endif
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(TAPIR_STAT_RINGBUF_LOST);
		return;
	}
	e->type = (c->flags & TAPIR_CF_CLIENT) ? TAPIR_REC_HTTP_OUT : TAPIR_REC_HTTP;
	e->labels_id = c->labels_id;
	e->cgroup_id = c->cgroup_id;
	e->start_ns = c->start_ns[h];
	e->first_byte_ns = c->first_byte_ns;
	e->end_ns = now;
	e->req_bytes = c->req_bytes[h];
	e->resp_bytes = c->resp_bytes;
	e->tgid = c->tgid;
	e->status = status;
	e->method = c->method[h];
	e->outcome = outcome;
	__builtin_memcpy(e->line, c->line[h], TAPIR_LINE_BYTES);
	e->sock = c->sock;
	e->llm_id = c->llm_id[h];
	e->llm_out = c->llm_out_off;
	/* Batch wake-ups: the reader polls on a short timer anyway, and a wake-up per request
	 * would cost the traced server a context switch per request. */
	flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
									      : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/* @env: NULL, or the segment (struct __sk_buff) the socket-buffer hooks walk, where @src is an
 * offset. NULL is a constant wherever the caller is no such hook: the other branch goes. */
static __always_inline int tapir_walk_read(void *env, void *dst, __u32 n, __u64 src)
{
#ifndef TAPIR_COMPAT
	if (SKB_PATH(env)) {
		if (!n)
			return -1;
		return bpf_skb_load_bytes(env, src, dst, n);
	}
#endif
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

TAPIR_SUBPROG int http_skip(struct tapir_http_parser *p, struct tapir_walk *w, __u32 at)
{
	if (!p || !w)
		return 0;
	return tapir_walk_skip(p, w, at);
}

#ifndef TAPIR_COMPAT
__noinline int http_head_line(struct tapir_http_parser *q, const struct tapir_http_win *w, __u32 o,
			      __u32 n, __u32 cls)
{
	if (!q || !w)
		return 0;
	return tapir_http_head_line(q, w, o, n, cls);
}
#endif

TAPIR_SUBPROG int http_head(struct tapir_http_parser *p, struct tapir_walk *w, __u32 at)
{
	if (!p || !w)
		return 0;
	return tapir_walk_head(p, w, at);
}

TAPIR_SUBPROG int handle_event(struct tapir_conn *c, int ev, struct tapir_walk *w)
{
	if (!c || !w)
		return TAPIR_STOP;
	return tapir_walk_event(NULL, c, ev, w);
}

/* The record of a request answered before its last byte came (include/tapir/conn.h): a call
 * from each place a connection ends or is given up, its body verified once. */
TAPIR_SUBPROG int conn_settle(struct tapir_conn *c)
{
	if (c)
		tapir_conn_settle_answered(NULL, c);
	return 0;
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

/*
 * --- LLM payload ------------------------------------------------------------------------------
 *
 * A request whose line is "POST <a path of the table>" is numbered on its connection (llm_id);
 * its bytes from its line on (at most llm_req_bytes) and those of its answer (at most
 * llm_resp_bytes) go to llm_events as they move, with the time they moved. A piece the ring has
 * no room for, or that cannot be read, is counted and leaves a gap in the offsets; bytes past
 * the answer's budget are counted in one go. Any other request pays a compare of its line's
 * first word, and any other answer a load of its request's llm_id.
 *
 * The same capture hands over request heads for async rules: on a server connection of a cgroup
 * with TAPIR_CGI_HEADS (TAPIR_CF_HEADS), a request that is no LLM request is numbered all the
 * same, with TAPIR_API_HEAD, and its bytes go over until its head is complete (TAPIR_HEAD_BYTES
 * at most); its answer's never. Such requests never aggregate. Only the newest request that
 * begins in a read is numbered: one pipelined behind it in the same read has no head.
 */
#define LLM_PIECES	  64 /* pieces per syscall at most, 1 MiB (loop build) */
#define LLM_PIECES_COMPAT 8  /* 128 KiB (compat build: a bounded loop, verified unrolled) */
#define LLM_POST	  0x2054534f50ULL /* "POST ", little-endian */

static __always_inline void llm_lost(struct llm_copy *s, __u32 why, __u64 n)
{
	if (why != TAPIR_STAT_MAX && s->hdr.dir == DIR_OUT)
		stat_add(why, n);
	s->seen += n;
	s->left -= n;
}

/* The next piece of the copy in @s (from the segment @skb, or NULL: a constant, from the
 * process's memory); 1 when it is over. */
static __always_inline int llm_piece(struct llm_copy *s, struct __sk_buff *skb)
{
	struct tapir_iovec iov;
	__u64 n;

	if (!s->left)
		return 1;
	if (!s->seg_left) {
		if (s->kind == IO_PLAIN && !s->iov_i) {
			s->seg_base = s->buf;
			s->seg_left = s->left;
		} else if (s->kind == IO_IOV && s->iov_i < s->iovcnt && s->iov_i < TAPIR_MAX_IOV &&
			   !bpf_probe_read_user(&iov, sizeof(iov),
						(void *)(s->buf + s->iov_i * sizeof(iov)))) {
			s->seg_base = iov.base;
			s->seg_left = iov.len < s->left ? iov.len : s->left;
		} else {
			llm_lost(s, TAPIR_STAT_LLM_UNREADABLE, s->left);
			return 1;
		}
		s->iov_i++;
		return 0;
	}
	if (s->skip) {
		n = s->skip < s->seg_left ? s->skip : s->seg_left;
		s->skip -= n;
		s->seg_base += n;
		s->seg_left -= n;
		s->left -= n;
		return 0;
	}
	if (!s->budget) {
		/* The request's head is all its parsers need (TAPIR_STAT_MAX: not a loss). */
		llm_lost(s, s->hdr.dir == DIR_OUT ? TAPIR_STAT_LLM_CAP : TAPIR_STAT_MAX, s->left);
		return 1;
	}
	n = s->seg_left < s->budget ? s->seg_left : s->budget;
	if (n > TAPIR_LLM_CHUNK)
		n = TAPIR_LLM_CHUNK;
	/* 1 to TAPIR_LLM_CHUNK already (seg_left and budget are not 0): so the verifier knows it
	 * (a segment's read may not be empty). */
	n = ((n - 1) & (TAPIR_LLM_CHUNK - 1)) + 1;
	s->seg_base += n;
	s->seg_left -= n;
	s->budget -= n;
	if (tapir_walk_read(skb, s->data, n, s->seg_base - n)) {
		llm_lost(s, TAPIR_STAT_LLM_UNREADABLE, n);
		return 0;
	}
	s->hdr.off = s->seen > 0xffffffffULL ? 0xffffffffU : s->seen;
	s->hdr.len = n;
	if (bpf_ringbuf_output(&llm_events, &s->hdr, sizeof(s->hdr) + n,
			       bpf_ringbuf_query(&llm_events, BPF_RB_AVAIL_DATA) >= llm_wakeup_bytes
				       ? BPF_RB_FORCE_WAKEUP
				       : BPF_RB_NO_WAKEUP)) {
		llm_lost(s, TAPIR_STAT_LLM_DROPPED, n);
		return 0;
	}
	s->seen += n;
	s->left -= n;
	return 0;
}

#ifndef TAPIR_COMPAT
struct llm_args {
	struct llm_copy *s;
	struct __sk_buff *skb;
};

static long llm_cb(__u32 i, void *arg)
{
	struct llm_args *a = arg;

	return llm_piece(a->s, NULL);
}

/* From a segment: a callback of its own, as walk_skb_cb(). */
static long llm_skb_cb(__u32 i, void *arg)
{
	struct llm_args *a = arg;

	return llm_piece(a->s, a->skb);
}

/*
 * The pieces of the copy in llm_scratch's slot @k, from the segment @skb. A global function: the
 * verifier walks it once per program, with nothing known of @k, where an inlined loop would be
 * walked at each of its call sites, for each state that reaches it (7.3 refused http_skb_in at
 * 1M instructions that way). Only ever called with a segment, so no other program has it.
 */
__noinline int llm_pump_skb(struct __sk_buff *skb, __u32 k)
{
	struct llm_copy *s = bpf_map_lookup_elem(&llm_scratch, &k);
	struct llm_args a = { .s = s, .skb = skb };

	if (s)
		bpf_loop(LLM_PIECES, llm_skb_cb, &a, 0);
	return 0;
}
#endif

/*
 * Hand over @len bytes of a syscall or segment (@kind, @buf, @iovcnt as struct tapir_io; @skb
 * the segment, or NULL), from offset @skip, as request @id's direction @dir, @seen bytes of it
 * before, at most @budget; the bytes of that direction seen after it, saturated to 32 bits.
 */
static __always_inline __u32 llm_copy(struct tapir_conn *c, __u32 slot, __u8 dir, __u8 kind,
				      __u64 buf, __u32 iovcnt, __u64 len, __u64 skip, __u64 ts,
				      __u32 seen, __u32 budget, struct __sk_buff *skb)
{
	__u32 k = scratch_slot(skb), h = slot & (TAPIR_MAX_PENDING - 1);
	struct llm_copy *s = bpf_map_lookup_elem(&llm_scratch, &k);

	if (!s)
		return seen;
	s->hdr.type = TAPIR_REC_LLM;
	s->hdr.id = c->llm_id[h];
	s->hdr.sock = c->sock;
	s->hdr.cgroup_id = c->cgroup_id;
	s->hdr.start_ns = c->start_ns[h];
	s->hdr.ts = ts;
	s->hdr.labels_id = c->labels_id;
	s->hdr.dir = dir;
	s->hdr.api = c->llm_api[h];
	s->hdr.flags = (c->flags & TAPIR_CF_CLIENT) ? TAPIR_LLM_F_CLIENT : 0;
	s->buf = buf;
	s->kind = kind;
	s->iovcnt = iovcnt;
	s->iov_i = 0;
	s->seg_left = 0;
	s->skip = skip < len ? skip : len;
	s->left = len;
	s->seen = seen;
	s->budget = budget;
	if (!budget && !skip) {
		llm_lost(s, dir == DIR_OUT ? TAPIR_STAT_LLM_CAP : TAPIR_STAT_MAX, len);
	} else if (kind == IO_BLIND) {
		llm_lost(s, TAPIR_STAT_LLM_UNREADABLE, len - s->skip);
	} else {
#ifdef TAPIR_COMPAT
		int i;

		for (i = 0; i < LLM_PIECES_COMPAT; i++)
			if (llm_piece(s, NULL))
				break;
#else
		struct llm_args a = { .s = s };

		/* skb is NULL, a constant, in every other program: the call is not in them. */
		if (SKB_PATH(skb)) {
			if (skb)
				llm_pump_skb(skb, k);
		} else {
			bpf_loop(LLM_PIECES, llm_cb, &a, 0);
		}
#endif
		if (s->left) /* more pieces than one syscall gets: a budget too */
			llm_lost(s, TAPIR_STAT_LLM_CAP, s->left);
	}
	return s->seen > 0xffffffffULL ? 0xffffffffU : s->seen;
}

/* The path table entry the request line in @slot names, or -1. */
static __always_inline int llm_match(struct tapir_conn *c, __u32 slot)
{
	const __u8 *l = c->line[slot & (TAPIR_MAX_PENDING - 1)];
	__u64 p0, p1, p2;
	__u32 i, end;
	__u8 t;

	if ((TAPIR_LOAD64(l) & 0xffffffffffULL) != LLM_POST)
		return -1;
	p0 = TAPIR_LOAD64(l + 5);
	p1 = TAPIR_LOAD64(l + 13);
	p2 = TAPIR_LOAD64(l + 21);
	for (i = 0; i < TAPIR_LLM_PATHS; i++) {
		if (i >= n_llm_paths)
			break;
		if ((p0 & llm_mask[i][0]) != llm_word[i][0] ||
		    (p1 & llm_mask[i][1]) != llm_word[i][1] ||
		    (p2 & llm_mask[i][2]) != llm_word[i][2])
			continue;
		/* The path ends there: its query, the space before the version, or a trailing '/'
		 * before either (not /v1/messages/count_tokens nor /v1/responses/ID/cancel). */
		end = 5 + llm_len[i];
		if (end >= TAPIR_LINE_BYTES)
			return i;
		t = l[end & (TAPIR_LINE_BYTES - 1)];
		if (t == '/' && end + 1 < TAPIR_LINE_BYTES)
			t = l[(end + 1) & (TAPIR_LINE_BYTES - 1)];
		if (t == ' ' || t == '?')
			return i;
	}
	return -1;
}

/*
 * An answer is being written (a server's write), or read (a client's read, at its return): the
 * LLM request it answers gets its bytes, with the time they moved.
 */
static __always_inline void llm_answer(struct tapir_conn *c, struct tapir_io *io, __u64 len,
				       struct __sk_buff *skb)
{
	__u32 h = TAPIR_SLOT(c, 0);
	__u64 ts = io->ts;

	if (!c->count || !c->llm_id[h] || c->llm_api[h] == TAPIR_API_HEAD)
		return;
	if ((c->flags & TAPIR_CF_CLIENT) && !io->at_call)
		ts = bpf_ktime_get_ns();
	c->llm_out_off = llm_copy(
		c, h, DIR_OUT, io->kind, io->buf, io->iovcnt, len, 0, ts, c->llm_out_off,
		c->llm_out_off < llm_resp_bytes ? llm_resp_bytes - c->llm_out_off : 0, skb);
}

/*
 * A read was walked: an LLM request that began in it is numbered, and the bytes of the one
 * being read go over, from its line on.
 */
static __always_inline void llm_read(struct tapir_conn *c, struct tapir_walk *w,
				     struct __sk_buff *skb)
{
	__u32 t = tapir_conn_newest(c) & (TAPIR_MAX_PENDING - 1), i, slot, budget;
	struct tapir_cgroup_info *cg;
	bool head;
	__u64 skip = 0, cgid;
	__u8 api = 0;
	int e;

	if (c->count && c->start_ns[t] == w->pos.now && !c->llm_id[t]) {
		e = llm_match(c, t);
		if (e >= 0) {
			cgid = c->cgroup_id;
			cg = bpf_map_lookup_elem(&watched_cgroups, &cgid);
			/* A bound, not a mask: the table is not a power of two long. */
			if (cg && (__u32)e < TAPIR_LLM_PATHS && !(cg->flags & TAPIR_CGI_NO_LLM))
				api = llm_api_of[e];
		}
		/* Async rules are about the requests a server reads (no client has the flag). */
		if (!api && heads_on && (c->flags & TAPIR_CF_HEADS))
			api = TAPIR_API_HEAD;
		if (api) {
			if (!++c->llm_next)
				c->llm_next = 1;
			c->llm_id[t] = c->llm_next;
			c->llm_api[t] = api;
			c->llm_in_id = c->llm_next;
			c->llm_in_off = 0;
			skip = w->line_at;
		}
	}
	if (!c->llm_in_id)
		return;
	slot = TAPIR_MAX_PENDING;
	for (i = 0; i < TAPIR_MAX_PENDING; i++)
		if (i < c->count && c->llm_id[TAPIR_SLOT(c, i)] == c->llm_in_id)
			slot = TAPIR_SLOT(c, i);
	if (slot == TAPIR_MAX_PENDING) {
		c->llm_in_id = 0; /* answered and gone already */
		return;
	}
	head = c->llm_api[slot & (TAPIR_MAX_PENDING - 1)] == TAPIR_API_HEAD;
	budget = head ? TAPIR_HEAD_BYTES : llm_req_bytes;
	c->llm_in_off =
		llm_copy(c, slot, DIR_IN, w->kind, w->buf, w->iovcnt, w->len, skip, w->pos.now,
			 c->llm_in_off, c->llm_in_off < budget ? budget - c->llm_in_off : 0, skb);
	/* Its whole head is over, or the request itself: the parser waits for the next, or a
	 * newer request began (pipelined); a head-only request is over with its head. */
	if (c->llm_in_off >= budget || slot != tapir_conn_newest(c) || c->req.state == TP_IDLE ||
	    (head && c->req.state >= TP_BODY_CL))
		c->llm_in_id = 0;
}

/* A walk is over: what the payload capture does after it (w->dir is the request's side: a
 * server's reads, a client's writes). */
static __always_inline void walk_done(struct tapir_walk *w, struct tapir_conn *c,
				      struct __sk_buff *skb)
{
	if (llm_on && w->dir == DIR_IN && c->state < TAPIR_CONN_IGNORED)
		llm_read(c, w, skb);
}

#ifdef TAPIR_COMPAT
/* Steps of a walk, COMPAT_STEPS per run, each run tail-calling the next (up to 32 in all, the
 * kernel's tail-call limit; 33 from 5.17). */
static __always_inline int walk_more_body(void *ctx, void *tails)
{
	struct tapir_walk *w = NULL;
	struct tapir_conn *c = walk_conn(&w);
	int i;

	if (!c || !w)
		return 0;
	for (i = 0; i < COMPAT_STEPS; i++)
		if (walk_step(w, c))
			break;
	if (i < COMPAT_STEPS) {
		walk_done(w, c, NULL);
		return 0;
	}
	bpf_tail_call(ctx, tails, 0);
	/* Out of tail calls: a syscall longer than this variant can follow. */
	tapir_conn_abandon(NULL, c, TAPIR_STAT_SCAN_LIMIT);
	return 0;
}

SEC("tracepoint")
int walk_more(void *ctx)
{
	return walk_more_body(ctx, &walkers);
}

static __always_inline void run_walk(void *ctx, struct tapir_walk *w, struct tapir_conn *c,
				     void *tails, void *skb)
{
	bpf_tail_call(ctx, tails, 0);
	tapir_conn_abandon(NULL, c, TAPIR_STAT_SCAN_LIMIT); /* walk_more is missing */
}
#else
struct walk_args {
	struct tapir_walk *w;
	struct tapir_conn *c;
	struct __sk_buff *skb; /* the socket-buffer hooks' segment */
};

static long walk_cb(__u32 i, void *arg)
{
	struct walk_args *a = arg;

	return walk_step(a->w, a->c);
}

/* The same steps reading from a segment: a callback of its own, so that the other one's reads
 * stay those of user memory without a test. */
static long walk_skb_cb(__u32 i, void *arg)
{
	struct walk_args *a = arg;

	return tapir_walk_step(a->skb, a->w, a->c);
}

/* @skb: NULL (a constant), or the segment walked by the socket-buffer hooks. */
static __always_inline void run_walk(void *ctx, struct tapir_walk *w, struct tapir_conn *c,
				     void *tails, struct __sk_buff *skb)
{
	struct walk_args a = { .w = w, .c = c, .skb = skb };

	if (SKB_PATH(skb))
		bpf_loop(loop_max, walk_skb_cb, &a, 0);
	else
		bpf_loop(loop_max, walk_cb, &a, 0);
	if (!w->done)
		tapir_conn_abandon(NULL, c, TAPIR_STAT_SCAN_LIMIT);
	else
		walk_done(w, c, skb);
}
#endif

/*
 * Start walking a syscall's @len bytes through connection @c. On an outbound connection the roles
 * swap: its writes are requests, which start when the write does, and its reads answers, whose
 * first byte came when the read returned it (a client waits inside its read).
 */
static __always_inline void walk(void *ctx, struct tapir_conn_key *key, struct tapir_io *io,
				 __u8 dir, __u64 len, struct tapir_conn *c, void *tails,
				 struct __sk_buff *skb)
{
	struct tapir_scratch *s = scratch_for(skb);
	/* One clock read per call where the hook runs inside it (socket hooks). */
	__u64 ts = io->ts, now = io->at_call ? io->ts : bpf_ktime_get_ns();

	if (!s)
		return;
	if (c->flags & TAPIR_CF_CLIENT) {
		if (io->dir == DIR_OUT)
			now = ts;
		else
			ts = now;
	}
	tapir_walk_begin(&s->w, key, io->kind, dir, io->buf, io->iovcnt, len, ts, now);
	run_walk(ctx, &s->w, c, tails, skb);
}

/*
 * --- HTTP/2 -----------------------------------------------------------------------------------
 *
 * A server connection whose first bytes are the client preface is TAPIR_CONN_H2: the HTTP/1.x
 * parsers never see it again, and each read and write steps that direction's frame walker
 * (include/tapir/h2_frame.h, in h2_conns), one step per iteration of a bpf_loop, through a global
 * function the verifier checks once. What user/sources/h2.c needs goes to h2_events as it is
 * found; DATA payload is counted by length and never read. The compat build has no bpf_loop: its
 * h2_more runs H2_COMPAT_STEPS steps and tail-calls itself for more, up to 32 runs a syscall. A
 * kernel whose verifier refuses h2_more gets the compat build without it (the loader), where such
 * a connection is counted ignored (http2) and left alone.
 */
#define H2_PRI 0x5448202a20495250ULL /* "PRI * HT", little-endian */
/* iovecs walked per syscall: all a syscall takes (UIO_MAXIOV). gRPC's sendmsg gathers many
 * frames; each iovec costs an iteration of the bpf_loop, not verifier time. */
#define H2_MAX_IOV   1024
#define H2_ERR_STEPS 0xff /* the compat build ran out of steps (tail calls) in a syscall */
/*
 * @n (1..@max, a power of two) in a form whose bound the verifier of every kernel keeps: masked
 * where it is used (6.1's loses a bound that a compare set on another register). The barrier
 * keeps the compiler from proving the mask useless and dropping it.
 */
#define H2_BOUNDED(n, max)             \
	({                             \
		__u32 __n = (n)-1;     \
		TAPIR_OPAQUE(__n);     \
		(__n & ((max)-1)) + 1; \
	})

/* A frame walker's window as a type of its own, so the step function's verifier knows its size. */
struct h2_win {
	__u8 b[TH2_WIN];
};

/* A syscall's bytes through one direction's walker, and the record being built. */
struct h2_scratch {
	struct tapir_h2_rec hdr;
	__u8 data[TAPIR_H2_BLOCK_BYTES]; /* right after hdr: the two go out as one record */
	struct h2_win win;
	struct tapir_h2_event ev;
	struct tapir_h2_conn_state tmpl; /* a new connection, built here, not on the stack */
	struct tapir_iovec iov;		 /* the current segment's */
	__u64 sock;			 /* the connection's */
	__u64 buf;			 /* user buffer, or iovec array */
	__u64 seg_base;			 /* user address of the rest of the current segment */
	__u64 seg_left;
	__u64 left; /* bytes of the syscall not yet in a segment */
	__u64 ts;
	__u32 iov_i;
	__u32 iovcnt;
	__u32 err; /* TH2_ERR_* that stopped the walk */
	__u8 kind;
	__u8 dir;
	__u8 done; /* every byte walked */
	__u8 __pad;
};

/* Slot 1 is a socket-buffer hook's inside another's, as in scratch. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct h2_scratch);
} h2_scratch SEC(".maps");

static __always_inline struct h2_scratch *h2_get_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&h2_scratch, &zero);
}

/* This run's: a socket-buffer hook's (@skb) at its depth, any other's slot 0. */
static __always_inline struct h2_scratch *h2_scratch_for(void *skb)
{
	__u32 k = scratch_slot(skb);

	return bpf_map_lookup_elem(&h2_scratch, &k);
}

/* Do the first bytes of @io start the HTTP/2 client preface? */
/*
 * The first @n bytes that @io moves, into @dst: from the segment @skb with the socket-buffer
 * hooks (io->buf is the payload's offset), else from the process's memory. 0 or an error.
 */
static __always_inline int io_head(struct tapir_io *io, void *dst, __u32 n, void *skb)
{
	__u64 ubuf = io->buf;

	if (io->kind == IO_BLIND)
		return -1;
#ifndef TAPIR_COMPAT
	if (SKB_PATH(skb))
		return bpf_skb_load_bytes(skb, io->buf, dst, n);
#endif
	if (io->kind == IO_IOV && bpf_probe_read_user(&ubuf, sizeof(ubuf), (void *)io->buf))
		return -1;
	return bpf_probe_read_user(dst, n, (void *)ubuf);
}

static __always_inline bool starts_h2(struct tapir_io *io, __u64 len, void *skb)
{
	__u64 word = 0;

	return len >= 8 && !io_head(io, &word, sizeof(word), skb) && word == H2_PRI;
}

/* Do the first bytes of @io look like a server's first HTTP/2 frame, SETTINGS (not an ACK)? */
static __always_inline bool starts_h2_settings(struct tapir_io *io, __u64 len, void *skb)
{
	__u8 h[TH2_HEADER_LEN];
	__u32 n;

	if (len < TH2_HEADER_LEN || io_head(io, h, sizeof(h), skb))
		return false;
	n = ((__u32)h[0] << 16) | ((__u32)h[1] << 8) | h[2];
	return n % 6 == 0 && n <= 16 * 6 && h[3] == TH2_SETTINGS && h[4] == 0 && !h[5] && !h[6] &&
	       !h[7] && !h[8];
}

/* Does @io begin HTTP/2: a read with the client's preface, or a write with the server's first
 * SETTINGS (a server may speak first)? @dir is the parser's. */
static __always_inline bool starts_h2_either(struct tapir_io *io, __u64 len, __u8 dir, void *skb)
{
	return dir == DIR_IN ? starts_h2(io, len, skb) : starts_h2_settings(io, len, skb);
}

/*
 * Do the first bytes of @io look like an HTTP/2 frame header: a length within the default
 * maximum that its type allows, a type that may begin a walk (not CONTINUATION), a stream id
 * where its type needs one and none where it must not, the reserved bit clear? Asked of
 * connections open before tapir started, whose frame boundaries it cannot know.
 */
static __always_inline bool looks_h2_frame(struct tapir_io *io, __u64 len, void *skb)
{
	__u8 h[TH2_HEADER_LEN], t;
	__u32 n;
	bool sid;

	if (len < TH2_HEADER_LEN || io_head(io, h, sizeof(h), skb))
		return false;
	n = ((__u32)h[0] << 16) | ((__u32)h[1] << 8) | h[2];
	t = h[3];
	sid = h[5] || h[6] || h[7] || h[8];
	if (n > TH2_MAX_FRAME_DEFAULT || t >= TH2_CONTINUATION || (h[5] & 0x80))
		return false;
	if (t == TH2_SETTINGS || t == TH2_PING || t == TH2_GOAWAY)
		return !sid && (t != TH2_SETTINGS || n % 6 == 0) && (t != TH2_PING || n == 8) &&
		       (t != TH2_GOAWAY || n >= 8);
	if (t == TH2_WINDOW_UPDATE)
		return n == 4;
	return sid && (t != TH2_RST_STREAM || n == 4) && (t != TH2_PRIORITY || n == 5);
}

/* A record of connection @c with no stream: its start, its end (@kind), or its frames lost. */
static __always_inline void h2_notify(struct tapir_conn *c, __u8 kind, __u32 err)
{
	struct tapir_h2_rec *e = bpf_ringbuf_reserve(&h2_events, sizeof(*e), 0);

	if (!e) {
		stat_inc(TAPIR_STAT_H2_RINGBUF);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->type = TAPIR_REC_H2;
	e->labels_id = c->labels_id;
	e->sock = c->sock;
	e->cgroup_id = c->cgroup_id;
	e->ts = bpf_ktime_get_ns();
	e->tgid = c->tgid;
	e->kind = kind;
	e->value = err;
	bpf_ringbuf_submit(e, 0);
}

/* The connection ended, or its frames were lost (@kind, @err): the daemon is told, the walkers
 * go. */
static __always_inline void h2_end(struct tapir_conn *c, __u8 kind, __u32 err)
{
	__u64 sock = c->sock;

	if (c->state != TAPIR_CONN_H2)
		return;
	c->state = TAPIR_CONN_IGNORED;
	bpf_map_delete_elem(&h2_conns, &sock);
	h2_notify(c, kind, err);
}

struct h2_args {
	struct h2_scratch *s;
	struct tapir_h2_conn_state *h;
	struct tapir_conn *c;
	struct __sk_buff *skb; /* the segment walked by a socket-buffer hook */
};

/*
 * @n bytes at @src of what the walk reads: the segment's offset @src with the socket-buffer
 * hooks, whose programs are the only ones loaded then (skb_on, a value the verifier knows: the
 * other branch is never walked), else a user address.
 */
static __always_inline int h2_read(struct h2_args *a, void *dst, __u32 n, __u64 src)
{
#ifndef TAPIR_COMPAT
	if (skb_on)
		return bpf_skb_load_bytes(a->skb, src, dst, n);
#endif
	return bpf_probe_read_user(dst, n, (void *)src);
}

/* A record of direction @d into h2_events, with @len bytes at @off of the step's for a block. */
static __always_inline int tapir_h2_emit(struct h2_args *a, struct tapir_h2_conn_state *h, __u32 d,
					 __u8 kind, __u32 sid, __u32 value, __u32 value2,
					 __u8 flags, __u32 off, __u32 len)
{
	struct h2_scratch *s = a->s;
	struct tapir_conn *c = a->c;

	d &= 1;
	if (len > TAPIR_H2_BLOCK_BYTES)
		len = TAPIR_H2_BLOCK_BYTES;
	if (len && h2_read(a, s->data, H2_BOUNDED(len, TAPIR_H2_BLOCK_BYTES), s->seg_base + off)) {
		h->lost[d] = 1;
		return -1;
	}
	s->hdr.type = TAPIR_REC_H2;
	s->hdr.labels_id = c->labels_id;
	s->hdr.sock = c->sock;
	s->hdr.cgroup_id = c->cgroup_id;
	s->hdr.ts = s->ts;
	s->hdr.stream_id = sid;
	s->hdr.value = value;
	s->hdr.value2 = value2;
	s->hdr.tgid = c->tgid;
	s->hdr.kind = kind;
	s->hdr.dir = d;
	s->hdr.flags = flags | (h->lost[d] ? TAPIR_H2R_F_LOST : 0);
	s->hdr.len = len;
	if (bpf_ringbuf_output(&h2_events, &s->hdr,
			       len ? sizeof(s->hdr) + H2_BOUNDED(len, TAPIR_H2_BLOCK_BYTES)
				   : sizeof(s->hdr),
			       bpf_ringbuf_query(&h2_events, BPF_RB_AVAIL_DATA) >= h2_wakeup_bytes
				       ? BPF_RB_FORCE_WAKEUP
				       : BPF_RB_NO_WAKEUP)) {
		stat_inc(TAPIR_STAT_H2_RINGBUF);
		h->lost[d] = 1;
		return -1;
	}
	h->lost[d] = 0;
	return 0;
}

/*
 * One step of a walker: in the loop build a global function, verified once (see h2_frame.h); in
 * the compat build inlined H2_COMPAT_STEPS times into each run of h2_more, which keeps nothing
 * in registers from one step to the next (all state is in map values), so that the verifier's
 * paths through one step meet again before the next and its cost adds up instead of multiplying.
 */
#ifdef TAPIR_COMPAT
#ifndef H2_COMPAT_STEPS
#define H2_COMPAT_STEPS 32 /* walker steps per run of h2_more; up to 32 runs per syscall */
#endif
#define H2_STEP_FN static __always_inline
#define H2_CB_FN   static __always_inline
#else
#define H2_STEP_FN __noinline
#define H2_CB_FN   static
#endif
H2_STEP_FN int h2_step(struct tapir_h2_walker *w, struct h2_win *win, __u32 wlen, __u64 left,
		       struct tapir_h2_event *ev)
{
	if (!w || !win || !ev)
		return 0;
	return tapir_h2_step(w, win->b, wlen, left, ev);
}

/* The next segment of the syscall; 1 when there is none (every byte walked, or unreadable). */
static __always_inline int h2_next_seg(struct h2_scratch *s)
{
	struct tapir_iovec *iov = &s->iov; /* not on the stack: see H2_COMPAT_STEPS */

	if (s->kind == IO_PLAIN && !s->iov_i) {
		s->seg_base = s->buf;
		s->seg_left = s->left;
	} else if (s->kind == IO_IOV && s->iov_i < s->iovcnt && s->iov_i < H2_MAX_IOV &&
		   !bpf_probe_read_user(iov, sizeof(*iov),
					(void *)(s->buf + s->iov_i * sizeof(*iov)))) {
		s->seg_base = iov->base;
		s->seg_left = iov->len < s->left ? iov->len : s->left;
	} else {
		return 1;
	}
	s->left -= s->seg_left;
	s->iov_i++;
	return 0;
}

H2_CB_FN long h2_cb(__u32 i, void *arg)
{
	struct h2_args *a = arg;
	struct h2_scratch *s = a->s;
	struct tapir_h2_conn_state *h = a->h;
	__u32 d = s->dir & 1, n;
	__u64 used;

	if (!s->seg_left) {
		if (!s->left) {
			s->done = 1;
			return 1;
		}
		return h2_next_seg(s);
	}
	n = tapir_h2_need(&h->w[d]);
	if (n > s->seg_left)
		n = s->seg_left;
	if (n > TH2_WIN)
		n = TH2_WIN;
	if (n && h2_read(a, s->win.b, H2_BOUNDED(n, TH2_WIN), s->seg_base))
		return 1;
	used = (__u32)h2_step(&h->w[d], &s->win, n, s->seg_left, &s->ev);
	if (tapir_h2_on_step(a, h, d, &s->ev))
		stat_inc(TAPIR_STAT_H2_BLOCK_CAP);
	if (s->ev.kind == TH2_EV_ERROR || !used) {
		s->err = s->ev.kind == TH2_EV_ERROR ? s->ev.value : 0;
		return 1;
	}
	if (used > s->seg_left)
		used = s->seg_left;
	s->seg_base += used;
	s->seg_left -= used;
	return 0;
}

/* After a syscall's bytes went through the walker, or stopped: a walk that did not reach the end
 * ends the connection's HTTP/2 tracking, with the reason counted. */
static __always_inline void h2_finish(struct tapir_conn *c, struct tapir_h2_conn_state *h,
				      struct h2_scratch *s)
{
	if (s->done)
		return;
	/* No client preface after all: not HTTP/2 (a server that spoke first); a side whose first
	 * frame is none: a connection that began HTTP/2 and left it (an echo server); else frames
	 * lost. */
	stat_inc(s->err == TH2_ERR_PREFACE ? TAPIR_STAT_IGNORED_NOT_HTTP
		 : s->err == H2_ERR_STEPS  ? TAPIR_STAT_SCAN_LIMIT
		 : !h->seen[s->dir & 1]	   ? TAPIR_STAT_IGNORED_HTTP2
					   : TAPIR_STAT_H2_FRAMING);
	h2_end(c, TAPIR_H2R_ERROR, s->err);
}

/* The scratch set up for @len bytes of @io on connection @c. */
static __always_inline void h2_setup(struct h2_scratch *s, struct tapir_conn *c,
				     struct tapir_io *io, __u64 len)
{
	s->sock = c->sock;
	s->buf = io->buf;
	s->kind = io->kind;
	s->iovcnt = io->iovcnt;
	s->iov_i = 0;
	s->left = len;
	s->seg_left = 0;
	s->dir = io->dir;
	s->done = 0;
	s->err = 0;
	/* A request's bytes count when read, an answer's when its write began. */
	s->ts = io->dir == DIR_IN && !io->at_call ? bpf_ktime_get_ns() : io->ts;
}

/* A new HTTP/2 connection: its walkers, before its first read is walked. @skb: as on_io's. */
static __always_inline int h2_begin(struct tapir_conn *c, __u32 how, void *skb)
{
	struct h2_scratch *s = h2_scratch_for(skb);
	__u64 sock = c->sock;

	if (!s)
		return -1;
	if (how == TAPIR_H2_OPEN_PRESTART)
		tapir_h2_conn_init_mid(&s->tmpl);
	else
		tapir_h2_conn_init(&s->tmpl);
	/* Another CPU may have begun it a moment ago (a server's write and its read of the client
	 * racing): its walkers stay. An entry left at this address by a socket gone is replaced. */
	if (bpf_map_update_elem(&h2_conns, &sock, &s->tmpl, BPF_NOEXIST)) {
		if (c->state == TAPIR_CONN_H2)
			return 0;
		if (bpf_map_update_elem(&h2_conns, &sock, &s->tmpl, BPF_ANY)) {
			tapir_conn_abandon(NULL, c, TAPIR_STAT_H2_UNTRACKED);
			return -1;
		}
	}
	c->state = TAPIR_CONN_H2;
	/* Whatever the daemon still holds of a socket at this address is over. */
	h2_notify(c, TAPIR_H2R_OPEN, how);
	return 0;
}

#ifndef TAPIR_COMPAT
/* @len bytes of HTTP/2 connection @c through its walker of that direction (@skb: the segment
 * they are in, or NULL: a process's buffer), with this run's scratch @s. */
static __always_inline int h2_run(struct h2_scratch *s, struct tapir_conn *c, struct tapir_io *io,
				  __u64 len, struct __sk_buff *skb)
{
	struct tapir_h2_conn_state *h;
	struct h2_args a;
	__u64 sock;

	if (!c || !io || !s)
		return 0;
	sock = c->sock;
	h = bpf_map_lookup_elem(&h2_conns, &sock);
	if (!h)
		return 0;
	a.s = s;
	a.h = h;
	a.c = c;
	a.skb = skb;
	h2_setup(s, c, io, len);
	if (io->kind != IO_BLIND)
		bpf_loop(loop_max, h2_cb, &a, 0);
	h2_finish(c, h, s);
	return 0;
}

/*
 * @len bytes read or written on HTTP/2 connection @c. A global function: the verifier checks it,
 * and its bpf_loop callback, once per program instead of once per path into it (Debian 6.1's
 * budget is what the HTTP/1.x walk leaves).
 */
__noinline int h2_io(struct tapir_conn *c, struct tapir_io *io, __u64 len)
{
	/* Never called with the socket-buffer hooks (h2_io_skb()), but verified with them. */
	if (skb_on)
		return 0;
	return h2_run(h2_get_scratch(), c, io, len, NULL);
}

/*
 * The same for a segment's @len bytes (io->buf their offset in @skb). Only ever called with a
 * segment, so no other program has it; a gap in the sequence never comes here (skb_gap() ends
 * the connection's HTTP/2 walk).
 */
__noinline int h2_io_skb(struct __sk_buff *skb, struct tapir_conn *c, struct tapir_io *io,
			 __u64 len)
{
	return h2_run(h2_scratch_for(skb), c, io, len, skb);
}
#else
/* The compat build: the walk goes on in h2_more, slot 1 of the hook's program array. */
static __always_inline void h2_io(void *ctx, struct tapir_conn *c, struct tapir_io *io, __u64 len,
				  void *tails)
{
	struct h2_scratch *s = h2_get_scratch();
	struct tapir_h2_conn_state *h;
	__u64 sock = c->sock;

	if (!s)
		return;
	h = bpf_map_lookup_elem(&h2_conns, &sock);
	if (!h)
		return;
	h2_setup(s, c, io, len);
	if (io->kind != IO_BLIND)
		bpf_tail_call(ctx, tails, 1);
	h2_finish(c, h, s); /* sendfile and the like, or h2_more is missing */
}

/* H2_COMPAT_STEPS steps of the walk begun by h2_io, each run tail-calling the next. */
static __always_inline int h2_more_body(void *ctx, void *tails)
{
	struct h2_scratch *s = h2_get_scratch();
	struct tapir_conn_key key;
	struct tapir_h2_conn_state *h;
	struct tapir_conn *c;
	struct h2_args a;
	__u64 sock;
	int i;

	if (test_refuse == 2) /* TAPIR_TEST_VERIFIER_REFUSE=h2 */
		return *(volatile __u32 *)(unsigned long)test_refuse;
	if (!s)
		return 0;
	sock = s->sock;
	key.sock = sock;
	c = bpf_map_lookup_elem(&conns, &key);
	h = bpf_map_lookup_elem(&h2_conns, &sock);
	if (!c || !h || c->state != TAPIR_CONN_H2)
		return 0;
	a.s = s;
	a.h = h;
	a.c = c;
	/* A loop the verifier walks, not unrolled, and nothing kept in registers from one step to
	 * the next: the paths of a step meet at its head and are pruned there. */
#pragma clang loop unroll(disable)
	for (i = 0; i < H2_COMPAT_STEPS; i++) {
		asm volatile("" ::: "memory");
		if (h2_cb(i, &a))
			break;
	}
	if (i < H2_COMPAT_STEPS) {
		h2_finish(c, h, s);
		return 0;
	}
	bpf_tail_call(ctx, tails, 1);
	/* Out of tail calls: more frames in one syscall than this build can follow (unless the
	 * last step took the last byte). */
	if (!s->seg_left && !s->left)
		s->done = 1;
	else
		s->err = H2_ERR_STEPS;
	h2_finish(c, h, s);
	return 0;
}

SEC("tracepoint")
int h2_more(void *ctx)
{
	return h2_more_body(ctx, &walkers);
}
#endif

/* A connection of cgroup @cgid, nothing read yet, in @t. */
static __always_inline void conn_init(struct tapir_conn *t, __u32 labels_id, __u64 cgid, __u8 state,
				      __u8 flags)
{
	__builtin_memset(t, 0, sizeof(*t));
	t->state = state;
	t->flags = flags;
	t->cgroup_id = cgid;
	t->labels_id = labels_id;
	tapir_http_init(&t->req, TP_KIND_REQUEST);
	tapir_http_init(&t->resp, TP_KIND_RESPONSE);
}

/* The flag a server connection of cgroup @cg starts with for its async rules. */
static __always_inline __u8 heads_flag(const struct tapir_cgroup_info *cg)
{
	return (cg->flags & TAPIR_CGI_HEADS) ? TAPIR_CF_HEADS : 0;
}

/* Track a new connection of socket @key; NULL when the conns map has no room. */
static __always_inline struct tapir_conn *new_conn(struct tapir_conn_key *key, __u32 labels_id,
						   __u64 cgid, __u8 state, __u8 flags, void *skb)
{
	struct tapir_scratch *s = scratch_for(skb);

	if (!s)
		return NULL;
	conn_init(&s->tmpl, labels_id, cgid, state, flags);
	s->tmpl.sock = key->sock;
	if (bpf_map_update_elem(&conns, key, &s->tmpl, BPF_ANY))
		return NULL;
	return bpf_map_lookup_elem(&conns, key);
}

/*
 * A read that starts a request on a connection the conns map has no room for is walked through
 * this CPU's reserved slot of conns (keys 1..CPUs, never a socket's address, put there by the
 * loader beyond limits.max_connections), from a fresh parser: each request it starts is
 * counted lost, pipelined ones too, and nothing is kept. @key becomes the slot's, for the walk.
 */
static __always_inline struct tapir_conn *untracked_conn(struct tapir_conn_key *key,
							 __u32 labels_id, __u64 cgid)
{
	struct tapir_conn_key slot = { .sock = bpf_get_smp_processor_id() + 1 };
	struct tapir_conn *c = bpf_map_lookup_elem(&conns, &slot);

	if (!c) {
		stat_inc(TAPIR_STAT_REQ_UNTRACKED); /* no slot: this one request, at least */
		return NULL;
	}
	conn_init(c, labels_id, cgid, TAPIR_CONN_NEW, TAPIR_CF_UNTRACKED);
	c->sock = slot.sock;
	*key = slot;
	return c;
}

/* Do the first bytes of @io open a request line (a method and a space)? */
static __always_inline bool starts_request(struct tapir_io *io, __u64 len, void *skb)
{
	__u64 tok = 0;
	__u8 head[8];
	int i;

	/* 8 bytes: a segment's payload has them past a 4-byte request ("GET ") too */
	if (len < (SKB_PATH(skb) ? 8 : 4) || io_head(io, head, sizeof(head), skb))
		return false;
	for (i = 0; i < 8; i++) {
		if (head[i] == ' ')
			break;
		tok = (tok << 8) | head[i];
	}
	i = tapir_method_id(tok);
	return i != TP_M_UNKNOWN && i != TP_M_PRI;
}

/*
 * A socket of a watched process with no connection yet: one that was open before tapir
 * started (seeded by the daemon), or whose connection tapir did not see established (the
 * conns map was full, the listening socket belongs to another cgroup, a TCP Fast Open read
 * before the handshake ended). Followed from here if its bytes open a request line.
 */
static __always_inline struct tapir_conn *pick_up(struct tapir_conn_key *key, struct tapir_io *io,
						  __u64 len, struct __sk_buff *skb)
{
	struct sock *sk = (struct sock *)key->sock;
	__u64 ino, cgid = SKB_PATH(skb) ? bpf_skb_cgroup_id(skb) : bpf_get_current_cgroup_id();
	struct tapir_cgroup_info *cg = bpf_map_lookup_elem(&watched_cgroups, &cgid);
	struct tapir_conn *c;
	int kind;

	if (!cg || (SKB_PATH(skb) && cgid == self_cgid))
		return NULL;
	kind = tapir_sk_kind(sk);
	if (kind == TAPIR_SK_TCP) {
		ino = tapir_sock_inode(sk);
		if (ino && bpf_map_lookup_elem(&prestart, &ino)) {
			bpf_map_delete_elem(&prestart, &ino);
			c = new_conn(key, cg->labels_id, cgid, TAPIR_CONN_NEW,
				     TAPIR_CF_PRESTART | heads_flag(cg), skb);
			if (!c) /* whatever this I/O is, it stands for one record */
				stat_inc(TAPIR_STAT_REQ_UNTRACKED);
			return c;
		}
	}
	if (io->dir != DIR_IN || !starts_request(io, len, skb))
		return NULL;
	if (kind != TAPIR_SK_TCP) {
		stat_inc(TAPIR_STAT_IGNORED_NOT_TCP); /* e.g. an HTTP-looking UDP datagram */
		return NULL;
	}
	/* A request starts here: followed from now on, or at least counted. */
	c = new_conn(key, cg->labels_id, cgid, TAPIR_CONN_NEW, heads_flag(cg), skb);
	return c ? c : untracked_conn(key, cg->labels_id, cgid);
}

/* The peer of socket @skp, IPv4-mapped IPv6 as IPv4; false for another family. */
static __always_inline bool peer_of(__u64 skp, struct tapir_peer_key *k)
{
	struct sock *sk = (struct sock *)skp;
	__u32 w[4] = {};
	__u16 family;

	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	k->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET) {
		w[0] = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	} else if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&w, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
		if (!w[0] && !w[1] && w[2] == bpf_htonl(0xffff)) {
			w[0] = w[3]; /* ::ffff:a.b.c.d: an IPv4 client */
			w[3] = 0;
			w[2] = 0;
			family = AF_INET;
		}
	} else {
		return false;
	}
	k->family = family;
	__builtin_memcpy(k->addr, w, sizeof(w));
	return true;
}

/* Is the peer of socket @skp a connection tapir itself made (own_clients)? Asked once per
 * connection, at its first request. */
static __always_inline bool from_tapir(__u64 skp)
{
	struct tapir_peer_key k = {};

	return peer_of(skp, &k) && bpf_map_lookup_elem(&own_clients, &k) != NULL;
}

/* An outbound connection began (@begin) or ended: for the daemon, where its requests go. */
static __always_inline void conn_out_event(__u64 skp, __u32 begin)
{
	struct tapir_conn_out_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		stat_inc(TAPIR_STAT_RINGBUF_LOST);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->type = TAPIR_REC_CONN_OUT;
	e->begin = begin;
	e->sock = skp;
	peer_of(skp, &e->peer);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* A new connection whose first bytes start a TLS handshake is not followed. */
static __always_inline bool starts_tls(struct tapir_io *io, void *skb)
{
	__u8 first = 0;

	return !io_head(io, &first, 1, skb) && first == 0x16;
}

/*
 * The first bytes either way after a 101 (@io, @len; @dir the parser's): HTTP/2 for an h2c
 * upgrade (RFC 7540 3.2), whose server sends its SETTINGS and may answer stream 1 at once,
 * before the client's preface (which may reach a socket-buffer hook first all the same);
 * anything else (a WebSocket) is left alone from here on. 0 when the connection is
 * TAPIR_CONN_H2 now.
 */
static __always_inline int after_upgrade(struct tapir_conn *c, struct tapir_io *io, long len,
					 __u8 dir, struct __sk_buff *skb)
{
	c->flags |= TAPIR_CF_UPGRADE_SEEN;
	if ((c->flags & TAPIR_CF_CLIENT) || !h2_on || !starts_h2_either(io, len, dir, skb))
		return 1;
	/* On the segments the server's first frames were walked with its 101 (the rest of that
	 * segment) or are still to come: stream 1's answer is among what follows either way. */
	return h2_begin(c,
			dir == DIR_OUT || SKB_PATH(skb) ? TAPIR_H2_OPEN_UPGRADE
							: TAPIR_H2_OPEN_UPGRADE_LATE,
			skb)
		       ? 1
		       : 0;
}

#ifndef TAPIR_COMPAT
/*
 * The walks of one connection, one at a time, both ways.
 *
 * The socket hooks walk a syscall's bytes in the process, at the end of its read or write, and a
 * server may read a connection in one thread while another writes its answers (a Go server's
 * goroutines land on any thread): a request read while the last answer's write is walked. Each
 * walk holds the word as below, and another CPU's waits up to 10 ms. A run that cannot have it
 * (the wait timed out, or the holder is a walk its own task preempted) leaves WALK_MISSED in the
 * word: its bytes were not walked, so the connection cannot be followed past them, and the next
 * walk to claim it gives it up (segment_busy). The compat build (no compare-and-swap before
 * 5.12) has no claim: such a server's walks may still meet there.
 *
 * The socket-buffer hooks: a segment's ingress program runs before TCP takes the socket's lock,
 * on the CPU the segment came in on: on loopback and veth the sender's, so two segments of one
 * connection can be walked at once on two CPUs (a NIC's receive-side scaling keeps a flow on
 * one), and a segment coming in while the server's answer leaves (egress runs under the
 * socket's lock, which ingress does not take): a pipelining client's next request while the
 * last one's answer is walked, or an HTTP/2 server's SETTINGS and the client's preface both
 * reaching h2_begin(). Each would step the connection's pipeline or its state from two CPUs.
 * (Once in TAPIR_CONN_H2, a connection's segments going out claim nothing: each way has its own
 * frame walker.) The walker of a connection holds its walker word (its CPU's number + 1);
 * another CPU's segment waits for it (a walk takes microseconds; a virtual machine's walker can
 * be descheduled for longer: the wait is bounded in time), and a segment coming in waits a
 * little for the bytes before its own, which another CPU may be about to walk. A run that finds
 * the word its own CPU's has interrupted the walker (a softirq's receive inside a process's
 * send): it cannot wait, and its segment is not walked (its bytes are a gap to the next).
 */
/* Busy: 10 ms of spinning at most, then not walked. A walk takes microseconds, but a virtual
 * machine's vCPU may lose its CPU to the host for a scheduler tick (4 ms at 250 Hz) while it
 * holds the word: 2 ms lost an HTTP/2 segment under the kernel matrix's emulation. */
#define SKB_CLAIM_NS 10000000
/* Bytes missing before the segment's: 200 us of waiting for them, then a gap. */
#define SKB_ORDER_NS 200000
/* bpf_loop's bound: the clock ends the spin first. */
#define SKB_CLAIM_TRIES (1 << 22)

/* The socket hooks' walks (on_io()): a run that could not have the word leaves this bit in it. */
#define WALK_MISSED 0x80000000u

/* conn_claim()'s @how: a segment going out, one coming in, a socket hook's syscall. */
#define CLAIM_OUT  0
#define CLAIM_IN   1
#define CLAIM_SOCK 2

struct conn_claim {
	struct tapir_conn *c;
	__u64 start; /* the wait's */
	__u64 spent; /* ns waited, read every 32 tries */
	__u32 seq;   /* the segment's first byte */
	__u32 me;    /* this CPU's number + 1 */
	__u8 how;    /* CLAIM_* */
	__s8 got;
};

/* One try at connection @c's walker word for CPU @me (its number + 1), for a segment whose first
 * byte is @seq: 1 when the walk is this CPU's; 0 when not yet; -1 when it never can be (held
 * by a run this one interrupted). @order (coming in): let go again when bytes before the
 * segment's are still to be walked. */
static __always_inline int skb_claim_try(struct tapir_conn *c, __u32 seq, __u32 me, bool order)
{
	/* A load first: a failed compare-and-swap would take the line from its walker. */
	__u32 v = *(volatile __u32 *)&c->walker;

	if (v)
		return v == me ? -1 : 0;
	if (__sync_val_compare_and_swap(&c->walker, 0, me) != 0)
		return 0;
	/* Claimed. Bytes before ours not walked yet: perhaps another CPU's next, so let go for a
	 * while. (seq_ok unset: the connection's first segment, nothing to wait for.) */
	if (order && (c->seq_ok & (1 << DIR_IN)) && (__s32)(seq - c->seq[DIR_IN]) > 0) {
		__sync_lock_test_and_set(&c->walker, 0);
		return 0;
	}
	return 1;
}

/* The same for a socket hook's syscall: 1 when the walk is CPU @me's, 2 when it is but a run
 * before missed its bytes (WALK_MISSED, which the claim clears), 0 when not yet, -1 never. */
static __always_inline int sock_claim_try(struct tapir_conn *c, __u32 me)
{
	__u32 v = *(volatile __u32 *)&c->walker;

	if (v & ~WALK_MISSED)
		return (v & ~WALK_MISSED) == me ? -1 : 0;
	if (__sync_val_compare_and_swap(&c->walker, v, me) != v)
		return 0;
	return v ? 2 : 1;
}

/* sock_claim_try()'s word let go, if CPU @me holds it (an HTTP/2 connection's run claims
 * nothing); a run that missed its bytes meanwhile left its bit for the next walk. */
static __always_inline void walk_let_go(struct tapir_conn *c, __u32 me)
{
	__u32 v = *(volatile __u32 *)&c->walker;

	if ((v & ~WALK_MISSED) != me)
		return;
	/* Held here: another CPU can only have set the bit since. */
	if (__sync_val_compare_and_swap(&c->walker, v, v & WALK_MISSED) != v)
		__sync_lock_test_and_set(&c->walker, WALK_MISSED);
}

static long conn_claim_cb(__u32 i, void *arg)
{
	struct conn_claim *w = arg;
	int r;

	if (!w->c)
		return 1;
	if (!(i & 31)) {
		w->spent = bpf_ktime_get_ns() - w->start;
		if (w->spent > SKB_CLAIM_NS)
			return 1;
	}
	if (w->how == CLAIM_SOCK)
		r = sock_claim_try(w->c, w->me);
	else
		r = skb_claim_try(w->c, w->seq, w->me,
				  w->how == CLAIM_IN && w->spent < SKB_ORDER_NS);
	if (!r)
		return 0;
	w->got = r;
	return 1;
}

/* The tries after a first one failed: what skb_claim_try() (@how CLAIM_IN or CLAIM_OUT, @seq
 * the segment's first byte) or sock_claim_try() (CLAIM_SOCK) returned, 0 when 10 ms went by.
 * Out of line: its stack is not on the walk's call chain. */
__noinline int conn_claim(struct tapir_conn *c, __u32 seq, __u32 me, __u32 how)
{
	struct conn_claim w = { .c = c, .seq = seq, .me = me, .how = how };

	if (!c)
		return 0;
	w.start = bpf_ktime_get_ns();
	bpf_loop(SKB_CLAIM_TRIES, conn_claim_cb, &w, 0);
	return w.got;
}
#endif

/*
 * The end of connection @c (its socket's, or its address taken by a new one): its HTTP/2 walk
 * ended, and the connection settled, unless a socket hook's walk of it was missed
 * (WALK_MISSED): what it holds since cannot be trusted, and it is given up. The caller deletes
 * the entry next.
 *
 * A walk that holds the walker word on another CPU is waited for first (up to the claim's
 * 10 ms), and the word is kept: a segment coming in as the server's close destroys the socket
 * (ingress runs before TCP takes the socket's lock), or a syscall's walk as the socket's state
 * settles the connection, would otherwise step the pipeline being settled, then go on writing
 * into the deleted entry's memory, which the next connection may have by then. Walks that
 * claim nothing (HTTP/2's) are not waited for. A walk it cannot wait for (past 10 ms, or held
 * by a run this one interrupted) counts segment_busy, and the end goes on without it. This
 * narrows the race, not closes it: a run that looked the entry up before the delete and still
 * waits for the word may find it free in the memory's next connection.
 */
static __always_inline void conn_close(struct tapir_conn *c, __u64 now)
{
#ifndef TAPIR_COMPAT
	__u32 me = bpf_get_smp_processor_id() + 1;
	int r = sock_claim_try(c, me);

	if (!r)
		r = conn_claim(c, 0, me, CLAIM_SOCK);
#endif
	h2_end(c, TAPIR_H2R_CLOSE, 0);
#ifndef TAPIR_COMPAT
	/* 2: the claim found WALK_MISSED (and cleared it). Given up, counted once. */
	if (r == 2 || (r <= 0 && (c->walker & WALK_MISSED))) {
		tapir_conn_abandon(NULL, c, TAPIR_STAT_SEGMENT_BUSY);
		return;
	}
	if (r <= 0)
		stat_inc(TAPIR_STAT_SEGMENT_BUSY);
#endif
	tapir_conn_finalize(NULL, c, now);
}

/* on_io()'s: @ret bytes on connection @c, walked by this run alone. */
static __always_inline int on_io_conn(void *ctx, struct tapir_io *io, long ret,
				      struct tapir_conn *c, void *tails, struct __sk_buff *skb)
{
	struct tapir_conn_key key = { .sock = io->sock };
#ifndef TAPIR_COMPAT
	struct tapir_scratch *s;
#endif
	__u8 dir; /* the parser's: DIR_IN for requests, whichever side sends them */

	if (!SKB_PATH(skb))
		c->tgid = io->tgid; /* a segment's hook runs in no process of the connection's */
	dir = (c->flags & TAPIR_CF_CLIENT) ? !io->dir : io->dir;
	if (c->state == TAPIR_CONN_NEW && !(c->flags & TAPIR_CF_CLIENT)) {
		/* Open before tapir started: picked up if a frame seems to begin here (a wrong
		 * guess ends at the walker's first error, counted); its HPACK tables are unknown,
		 * and the daemon makes do with the static table. */
		if ((c->flags & TAPIR_CF_PRESTART) && looks_h2_frame(io, ret, skb)) {
			if (!h2_on) {
				tapir_conn_abandon(NULL, c, TAPIR_STAT_H2_PRESTART);
				return 0;
			}
			if (h2_begin(c, TAPIR_H2_OPEN_PRESTART, skb))
				return 0;
		}
		/* The client's preface, or the server's SETTINGS, which it may send first. */
		if (!(c->flags & TAPIR_CF_PRESTART) && starts_h2_either(io, ret, dir, skb)) {
			if (!h2_on) {
				tapir_conn_abandon(NULL, c, TAPIR_STAT_IGNORED_HTTP2);
				return 0;
			}
			if (h2_begin(c, 0, skb))
				return 0;
		}
	} else if (c->state == TAPIR_CONN_UPGRADED && after_upgrade(c, io, ret, dir, skb)) {
		return 0;
	}
	if (c->state == TAPIR_CONN_H2)
		goto h2;
	if (c->state >= TAPIR_CONN_IGNORED)
		return 0;
	if (c->state == TAPIR_CONN_NEW && dir == DIR_OUT && !(c->flags & TAPIR_CF_PRESTART)) {
		tapir_conn_abandon(NULL, c,
				   TAPIR_STAT_IGNORED_NOT_HTTP); /* the server spoke first */
		return 0;
	}
	if (c->state == TAPIR_CONN_NEW && dir == DIR_IN && starts_tls(io, skb)) {
		tapir_conn_abandon(NULL, c, TAPIR_STAT_IGNORED_TLS); /* a TLS ClientHello record */
		return 0;
	}
	if (c->state == TAPIR_CONN_NEW && io->dir == DIR_IN && !(c->flags & TAPIR_CF_CLIENT) &&
	    !(SKB_PATH(skb) && (key.sock & 1)) && /* odd: skb_early() asked already */
	    from_tapir(key.sock)) {
		tapir_conn_abandon(NULL, c, TAPIR_STAT_IGNORED_SELF);
		return 0;
	}

	if (llm_on && dir == DIR_OUT)
		llm_answer(c, io, ret, skb);
	walk(ctx, &key, io, dir, ret, c, tails, skb);
#ifndef TAPIR_COMPAT
	/* A segment may carry a 101's head and the first bytes after it (an h2c server's
	 * SETTINGS and its answer): they go on from where the walk stopped. (A syscall's are
	 * the next syscall's: the process reads or writes them apart.) */
	if (!SKB_PATH(skb) || c->state != TAPIR_CONN_UPGRADED || (c->flags & TAPIR_CF_UPGRADE_SEEN))
		return 0;
	s = scratch_for(skb);
	if (!s || s->w.off >= (__u64)ret)
		return 0;
	io->buf += s->w.off;
	ret -= s->w.off;
	if (after_upgrade(c, io, ret, dir, skb))
		return 0;
#else
	return 0;
#endif
h2:
#ifndef TAPIR_COMPAT
	/* One call site each: a callback is verified once per program. skb is NULL, a constant,
	 * in every program but the socket-buffer hooks'. */
	if (SKB_PATH(skb)) {
		if (skb)
			h2_io_skb(skb, c, io, ret);
	} else {
		h2_io(c, io, ret);
	}
#else
	h2_io(ctx, c, io, ret, tails);
#endif
	return 0;
}

/*
 * @ret bytes moved by @io on its socket (or an error) by a process of a watched cgroup: the one
 * path both hook sets take. @c is the socket's connection, NULL when it has none yet. A socket
 * hook's walk holds the connection's walker word (sock_claim_try()); a socket-buffer hook's holds
 * it already (skb_conn_io()).
 */
static __always_inline int on_io(void *ctx, struct tapir_io *io, long ret, struct tapir_conn *c,
				 void *tails, struct __sk_buff *skb)
{
	struct tapir_conn_key key = { .sock = io->sock };
#ifndef TAPIR_COMPAT
	__u32 me;
	int r;
#endif

	if (ret <= 0) {
		if (c && ((ret == 0 && io->dir == DIR_IN) || ret == -ECONNRESET || ret == -EPIPE))
			*(volatile __u32 *)&c->peer_gone = 1;
		return 0;
	}
	if (io->peek)
		return 0;
	if (!c) {
		c = pick_up(&key, io, ret, skb);
		if (!c)
			return 0;
	}
#ifndef TAPIR_COMPAT
	/* HTTP/2 has a frame walker each way (h2_io()): once there, nothing to claim. A test of
	 * skb, which the compiler knows NULL or not (skb_conn_io()), not SKB_PATH(): behind
	 * skb_on, which only the verifier knows, this block took http_skb_in past 6.1's 1M
	 * instructions (and from 312,000 to 424,000 on 6.18). */
	if (!skb && *(volatile __u8 *)&c->state != TAPIR_CONN_H2) {
		me = bpf_get_smp_processor_id() + 1;
		r = sock_claim_try(c, me);
		if (!r)
			r = conn_claim(c, 0, me, CLAIM_SOCK);
		/* Unless the walk it waited for began HTTP/2 (then on without the word). */
		if (r != 1 && *(volatile __u8 *)&c->state != TAPIR_CONN_H2) {
			if (r <= 0) {
				__sync_fetch_and_or(&c->walker, WALK_MISSED);
				return 0;
			}
			tapir_conn_abandon(NULL, c, TAPIR_STAT_SEGMENT_BUSY);
			walk_let_go(c, me);
			return 0;
		}
	}
#endif
	on_io_conn(ctx, io, ret, c, tails, skb);
#ifndef TAPIR_COMPAT
	/* The CPU's number again, not kept across the walk (its stack): the run cannot move. */
	if (!skb)
		walk_let_go(c, bpf_get_smp_processor_id() + 1);
#endif
	return 0;
}

/*
 * A server connection being established (@key its socket @sk, @lport and @rport from the
 * tracepoint, in cgroup @cgid) whose first bytes were walked early: its entry, moved into
 * conns; NULL when there is none.
 */
static __always_inline struct tapir_conn *early_take(struct tapir_conn_key *key, struct sock *sk,
						     __u16 lport, __u16 rport, __u64 cgid)
{
	__u32 rcv_nxt = BPF_CORE_READ((struct tcp_sock *)sk, rcv_nxt);
	struct tapir_conn_key ek = { .sock = early_id(rcv_nxt, lport, rport) };
	struct tapir_conn *e = bpf_map_lookup_elem(&early, &ek);
	struct tapir_scratch *s = get_scratch();
	int err;

	if (!e || !s || e->cgroup_id != cgid)
		return NULL;
	/* Through the template: a CPU may be walking the early entry (holding its walker word),
	 * and another may walk the new one as soon as it is in conns. */
	__builtin_memcpy(&s->tmpl, e, sizeof(*e));
	s->tmpl.walker = 0;
	err = bpf_map_update_elem(&conns, key, &s->tmpl, BPF_ANY);
	bpf_map_delete_elem(&early, &ek);
	return err ? NULL : bpf_map_lookup_elem(&conns, key);
}

/*
 * Connections come and go with their socket's TCP state, whichever process or fd holds it:
 * established from a listening socket of a watched cgroup, a new server connection; from a
 * connect(), a client one (not followed yet, remembered so its reads cost one lookup); the
 * peer's FIN or reset, the client gone; our FIN (close or shutdown), or the socket destroyed,
 * the connection settled and forgotten.
 */
SEC("tracepoint/sock/inet_sock_set_state")
int http_sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	struct sock *sk = (struct sock *)ctx->skaddr;
	struct tapir_conn_key key = { .sock = (__u64)sk };
	struct tapir_cgroup_info *cg;
	struct tapir_conn *c;
	int newstate = ctx->newstate;
	__u64 cgid;

	if (test_refuse == 1) /* dead code unless set: the verifier knows the value */
		return *(volatile __u32 *)(unsigned long)test_refuse;
	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (newstate == TCP_ESTABLISHED) {
		if (ctx->oldstate != TCP_SYN_RECV && ctx->oldstate != TCP_SYN_SENT)
			return 0;
		cgid = tapir_sock_cgroup_id(sk);
		cg = bpf_map_lookup_elem(&watched_cgroups, &cgid);
		if (!cg || (skb_on && cgid == self_cgid))
			return 0;
		c = bpf_map_lookup_elem(&conns, &key);
		if (c) {
			/* The address of a socket whose end we did not see: settle it. */
			stat_inc(TAPIR_STAT_CONN_REPLACED);
			conn_close(c, bpf_ktime_get_ns());
			bpf_map_delete_elem(&conns, &key);
		}
		if (ctx->oldstate == TCP_SYN_RECV) {
			c = skb_on ? early_take(&key, sk, ctx->sport, ctx->dport, cgid) : NULL;
			if (!c)
				c = new_conn(&key, cg->labels_id, cgid, TAPIR_CONN_NEW,
					     heads_flag(cg), NULL);
		} else {
			c = new_conn(&key, cg->labels_id, cgid,
				     outbound_on ? TAPIR_CONN_NEW : TAPIR_CONN_IGNORED,
				     TAPIR_CF_CLIENT, NULL);
			if (c && outbound_on)
				conn_out_event(key.sock, 1);
		}
		if (!c) {
			stat_inc(TAPIR_STAT_CONN_TABLE_FULL);
		} else if (skb_on) {
			/* The first byte each way: the peer's next (unless bytes walked early
			 * took it on), and ours. */
			if (!(c->seq_ok & (1 << DIR_IN)))
				c->seq[DIR_IN] = BPF_CORE_READ((struct tcp_sock *)sk, rcv_nxt);
			c->seq[DIR_OUT] = BPF_CORE_READ((struct tcp_sock *)sk, snd_nxt);
			c->seq_ok = 1 << DIR_IN | 1 << DIR_OUT;
		}
		return 0;
	}
	if (newstate != TCP_CLOSE_WAIT && newstate != TCP_FIN_WAIT1 && newstate != TCP_LAST_ACK &&
	    newstate != TCP_CLOSE)
		return 0;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c)
		return 0;
	if (newstate == TCP_CLOSE_WAIT) {
		*(volatile __u32 *)&c->peer_gone = 1; /* the client sent its FIN */
		return 0;
	}
	/* This side's FIN on an outbound connection may be a half-close (shutdown(SHUT_WR) after
	 * the request): its answer may still come. It is settled when the socket ends. */
	if (newstate == TCP_FIN_WAIT1 && (c->flags & TAPIR_CF_CLIENT))
		return 0;
	if (newstate == TCP_CLOSE && BPF_CORE_READ(sk, sk_err) == ECONNRESET)
		*(volatile __u32 *)&c->peer_gone = 1; /* reset by the client */
	/* With the socket-buffer hooks the answer's last segments may still wait in the send
	 * queue behind our FIN: settled when the socket is destroyed, after they left. */
	if (skb_on && have_destroy_tp)
		return 0;
	if (newstate == TCP_CLOSE) {
		/*
		 * A reset can land while the server is still inside the send that completes its
		 * answer (on loopback the client may read it and reset before that send returns):
		 * the connection is settled when the socket is destroyed, after the server's last
		 * call on it, where the kernel says when.
		 */
		if (have_destroy_tp)
			return 0;
	}
	conn_close(c, bpf_ktime_get_ns());
	if (outbound_on && (c->flags & TAPIR_CF_CLIENT))
		conn_out_event(key.sock, 0);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

/* The end of a socket: whatever its connection still holds is settled. */
SEC("tracepoint/tcp/tcp_destroy_sock")
int http_sock_destroy(struct trace_event_raw_tcp_event_sk *ctx)
{
	struct tapir_conn_key key = { .sock = (__u64)ctx->skaddr };
	struct tapir_conn *c = bpf_map_lookup_elem(&conns, &key);

	if (!c)
		return 0;
	conn_close(c, bpf_ktime_get_ns());
	if (outbound_on && (c->flags & TAPIR_CF_CLIENT))
		conn_out_event(key.sock, 0);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

/* --- syscall hooks: every kernel ------------------------------------------------------- */

static __always_inline int enter_io(__u32 fd, __u64 buf, __u32 iovcnt, __u8 kind, __u8 dir,
				    __u8 peek)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tapir_conn_key key;
	struct tapir_io io = {};
	struct tapir_conn *c;
	struct sock *sk;

	if ((__u32)(id >> 32) == self_tgid || !current_watched())
		return 0;
	sk = tapir_fd_sock(fd);
	if (!sk)
		return 0; /* a file, a pipe: not a socket */
	key.sock = (__u64)sk;
	c = bpf_map_lookup_elem(&conns, &key);
	if (c && tapir_conn_passive(c))
		return 0; /* not HTTP/1.x, or no longer */
	io.buf = buf;
	io.ts = bpf_ktime_get_ns();
	io.tgid = id >> 32;
	io.sock = key.sock;
	io.fd = fd;
	io.iovcnt = iovcnt;
	io.kind = kind;
	io.dir = dir;
	io.peek = peek;
	if (bpf_map_update_elem(&active_io, &id, &io, BPF_ANY))
		stat_inc(TAPIR_STAT_IO_TABLE_FULL);
	return 0;
}

static __always_inline int exit_io(void *ctx, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct tapir_conn_key key;
	struct tapir_io *iop, io;

	/* Only processes of watched cgroups get here: the entry was their filter. */
	iop = bpf_map_lookup_elem(&active_io, &id);
	if (!iop)
		return 0;
	io = *iop;
	bpf_map_delete_elem(&active_io, &id);
	key.sock = io.sock;
	return on_io(ctx, &io, ret, bpf_map_lookup_elem(&conns, &key), TAILS(walkers), NULL);
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
 * --- socket hooks: 6.3+, and trampolines before ---------------------------------------------
 *
 * sock_recv_length and sock_send_length fire inside every receive and send of a socket, with
 * the socket and the byte count, whatever syscall made them; the syscall's own registers (still
 * those of the call, in the task's pt_regs) give the user buffer. No syscall tracepoint is
 * attached: file I/O and every other syscall of every process pay nothing, and a process
 * outside the watched cgroups pays one lookup per socket call.
 */

/* Syscall numbers of the calls whose buffers we know how to find (x86_64, arm64). */
#if defined(__TARGET_ARCH_x86)
#define NR_READ		 0
#define NR_WRITE	 1
#define NR_READV	 19
#define NR_WRITEV	 20
#define NR_SENDTO	 44
#define NR_RECVFROM	 45
#define NR_SENDMSG	 46
#define NR_RECVMSG	 47
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define NR_READ		 63
#define NR_WRITE	 64
#define NR_READV	 65
#define NR_WRITEV	 66
#define NR_SENDTO	 206
#define NR_RECVFROM	 207
#define NR_SENDMSG	 211
#define NR_RECVMSG	 212
#define SYSCALL_NR(regs) BPF_CORE_READ(regs, syscallno)
#else
#error "socket hooks: syscall numbers of this architecture are missing"
#endif

/* The current task's syscall and its first three arguments. */
struct syscall_args {
	__u64 nr, arg1, arg2, arg3;
};

/* From the registers the current task entered the kernel with. */
static __always_inline void syscall_args(struct syscall_args *a)
{
	struct task_struct *t;
	struct pt_regs *regs;

	/* A CO-RE constant: the verifier drops the branch a kernel cannot take. */
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs)) {
		regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
#if defined(__TARGET_ARCH_x86)
		/* A pointer the verifier knows the type of: plain loads, no probe reads, which
		 * cost tens of ns each on the traced server's every call. */
		a->nr = regs->orig_ax;
		a->arg1 = regs->di;
		a->arg2 = regs->si;
		a->arg3 = regs->dx;
		return;
#endif
	} else {
		/* Before 5.15 (the compat build): at the top of the task's kernel stack, as
		 * task_pt_regs() finds them on x86_64 and arm64 (THREAD_SIZE 16 KiB without
		 * KASAN; no FRED padding, which came in 6.9). */
		t = (struct task_struct *)bpf_get_current_task();
		regs = (struct pt_regs *)((__u64)BPF_CORE_READ(t, stack) + 16384) - 1;
	}
	a->nr = SYSCALL_NR(regs);
	a->arg1 = PT_REGS_PARM1_CORE_SYSCALL(regs);
	a->arg2 = PT_REGS_PARM2_CORE_SYSCALL(regs);
	a->arg3 = PT_REGS_PARM3_CORE_SYSCALL(regs);
}

/*
 * A process outside every watched cgroup pays one cgroup lookup per socket call; a watched one
 * one more lookup, of the socket's connection, and a call that moved no bytes (EAGAIN, the
 * peer's FIN) stops there. @tails: where the compat build's walk goes on (see WALKERS).
 */
static __always_inline int sock_io(void *ctx, struct sock *sk, long ret, int flags, __u8 dir,
				   void *tails)
{
	__u64 id = bpf_get_current_pid_tgid(), nr;
	struct tapir_conn_key key = { .sock = (__u64)sk };
	struct tapir_conn *c;
	struct tapir_io io = {};
	struct syscall_args sys;
	struct user_msghdr msg;

	if ((__u32)(id >> 32) == self_tgid || !current_watched())
		return 0;
	c = bpf_map_lookup_elem(&conns, &key);
	if (c && tapir_conn_passive(c))
		return 0;
	if (ret <= 0) {
		if (c && ((ret == 0 && dir == DIR_IN) || ret == -ECONNRESET || ret == -EPIPE))
			*(volatile __u32 *)&c->peer_gone = 1;
		return 0;
	}
	syscall_args(&sys);
	nr = sys.nr;
	io.ts = bpf_ktime_get_ns();
	io.tgid = id >> 32;
	io.at_call = 1;
	io.sock = key.sock;
	io.fd = sys.arg1;
	io.dir = dir;
	io.peek = dir == DIR_IN && (flags & MSG_PEEK);
	if (nr == (dir == DIR_IN ? NR_READ : NR_WRITE) ||
	    nr == (dir == DIR_IN ? NR_RECVFROM : NR_SENDTO)) {
		io.kind = IO_PLAIN;
		io.buf = sys.arg2;
	} else if (nr == (dir == DIR_IN ? NR_READV : NR_WRITEV)) {
		io.kind = IO_IOV;
		io.buf = sys.arg2;
		io.iovcnt = sys.arg3;
	} else if (nr == (dir == DIR_IN ? NR_RECVMSG : NR_SENDMSG) &&
		   !bpf_probe_read_user(&msg, sizeof(msg), (void *)sys.arg2)) {
		io.kind = IO_IOV;
		io.buf = (__u64)msg.msg_iov;
		io.iovcnt = msg.msg_iovlen;
	} else {
		/* sendfile, splice, io_uring, sendmmsg: bytes counted, not looked at */
		io.kind = IO_BLIND;
	}
	return on_io(ctx, &io, ret, c, tails, NULL);
}

#ifndef TAPIR_COMPAT
SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv, struct sock *sk, int ret, int flags)
{
	return sock_io(ctx, sk, ret, flags, DIR_IN, NULL);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send, struct sock *sk, int ret, int flags)
{
	return sock_io(ctx, sk, ret, flags, DIR_OUT, NULL);
}
#endif

#ifndef TAPIR_COMPAT
/*
 * --- socket-buffer hooks: cgroup_skb, the loop build (--bpf-hooks skb) ----------------------
 *
 * Each TCP segment with payload to or from a socket of the cgroup tree the two programs are
 * attached to, walked from the segment itself (bpf_skb_load_bytes) in sequence order: bytes a
 * retransmission repeats are skipped; bytes not seen (a segment lost or reordered, its bytes
 * still to come) are passed over by length inside a body and anywhere else end the
 * connection's parse, counted (segment_gap). A request starts when its first segment reaches
 * the server's socket, before the server reads it; an answer's first byte and its end when its
 * segments leave. No syscall and no socket call is hooked: a process outside every watched
 * cgroup pays a lookup per segment with payload and nothing per read or write. HTTP/2, the LLM
 * payload and async requests' heads want the processes' own buffers: the loader turns them off
 * with these hooks.
 */
#define SKB_ETH_P_IP   0x0800
#define SKB_ETH_P_IPV6 0x86DD

/*
 * Bytes that came to a listening socket of a watched cgroup with the handshake's last ACK (@seq
 * the first one's, @rport the client's port): the connection-to-be's entry in early, keyed @id,
 * made at its first such bytes. A connection tapir itself made (its engine scrapes) is entered
 * as ignored. 0: not followed. Out of line, as skb_pick_up().
 */
__noinline int skb_early(struct __sk_buff *skb, __u64 id, __u32 seq, __u32 rport)
{
	struct tapir_conn_key key = { .sock = id };
	struct tapir_scratch *s = scratch_for(skb);
	struct tapir_peer_key peer = {};
	struct tapir_cgroup_info *cg;
	__u64 cgid;

	if (!s)
		return 0;
	if (bpf_map_lookup_elem(&early, &key))
		return 1; /* the same bytes again: no socket could be made for them yet */
	cgid = bpf_skb_cgroup_id(skb);
	cg = bpf_map_lookup_elem(&watched_cgroups, &cgid);
	if (!cg || cgid == self_cgid)
		return 0;
	conn_init(&s->tmpl, cg->labels_id, cgid, TAPIR_CONN_NEW, heads_flag(cg));
	s->tmpl.sock = id;
	s->tmpl.seq[DIR_IN] = seq;
	s->tmpl.seq_ok = 1 << DIR_IN;
	/* The peer as own_clients knows it (peer_of()): the segment's source address. */
	peer.port = rport;
	if (skb->protocol == bpf_htons(SKB_ETH_P_IP)) {
		peer.family = AF_INET;
		if (bpf_skb_load_bytes(skb, 12, peer.addr, 4))
			return 0;
	} else {
		peer.family = AF_INET6;
		if (bpf_skb_load_bytes(skb, 8, peer.addr, 16))
			return 0;
	}
	if (bpf_map_lookup_elem(&own_clients, &peer)) {
		s->tmpl.state = TAPIR_CONN_IGNORED;
		stat_inc(TAPIR_STAT_IGNORED_SELF);
	}
	if (bpf_map_update_elem(&early, &key, &s->tmpl, BPF_ANY)) {
		stat_inc(TAPIR_STAT_CONN_TABLE_FULL);
		return 0;
	}
	return 1;
}

/* Bytes the segments of connection @c skipped (@gap, in the direction of @io): passed over by
 * length inside a body that long, else the connection is left. false: walk no more of it. */
static __always_inline bool skb_gap(struct __sk_buff *skb, struct tapir_conn_key *key,
				    struct tapir_io *io, struct tapir_conn *c, __u32 gap)
{
	__u8 dir = (c->flags & TAPIR_CF_CLIENT) ? !io->dir : io->dir, kind = io->kind;
	__u64 buf = io->buf;

	if (c->state == TAPIR_CONN_H2) {
		/* Frames are not passed over blind: the connection's HTTP/2 walk ends. */
		stat_inc(TAPIR_STAT_SEGMENT_GAP);
		h2_end(c, TAPIR_H2R_ERROR, 0);
		return false;
	}
	if (c->state >= TAPIR_CONN_IGNORED)
		return false;
	if (tapir_http_bulk_max(dir == DIR_IN ? &c->req : &c->resp) < gap) {
		tapir_conn_abandon(NULL, c, TAPIR_STAT_SEGMENT_GAP);
		return false;
	}
	/* @io made blind for the gap's walk, not copied: the stack is short. */
	io->kind = IO_BLIND;
	io->buf = 0;
	walk(skb, key, io, dir, gap, c, NULL, skb);
	io->kind = kind;
	io->buf = buf;
	return c->state < TAPIR_CONN_IGNORED;
}

/* skb_conn_io()'s walk, its one call site (a second took http_skb_in past 6.1's 1M
 * instructions). */
static __always_inline int skb_conn_walk(struct __sk_buff *skb, struct tapir_conn *c,
					 struct tapir_io *io, __u32 seq, __u32 n)
{
	struct tapir_conn_key key;
	struct tcp_sock *tp;
	__u32 gap = 0;
	__s32 d;
	__u8 dir;

	dir = io->dir == DIR_OUT ? DIR_OUT : DIR_IN;
	key.sock = io->sock;
	if (!(c->seq_ok & (1 << dir))) {
		c->seq[dir] = seq; /* picked up here */
		c->seq_ok |= 1 << dir;
	}
	d = (__s32)(seq - c->seq[dir]);
	if (d < 0) {
		/* A retransmission: only what it carries past the bytes seen is new. */
		if ((__u32)-d >= n)
			return 0;
		io->buf += (__u32)-d;
		n -= (__u32)-d;
	} else {
		gap = d;
	}
	c->seq[dir] += gap + n;
	if (gap && !skb_gap(skb, &key, io, c, gap))
		return 0;
	/*
	 * A server's first bytes out with none seen in: it spoke first (not HTTP), unless the
	 * socket received bytes no segment here showed (rcv_nxt past what was walked; a client's
	 * FIN takes a sequence number too: a port probe that closed at once, which a gRPC server
	 * still greets). Behind is no gap: another CPU's ingress program has walked the client's
	 * first segment, or is walking it, and TCP has not taken it yet (an HTTP/2 server writes
	 * its SETTINGS at accept, racing the client's preface).
	 */
	tp = (struct tcp_sock *)key.sock;
	if (dir == DIR_OUT && c->state == TAPIR_CONN_NEW &&
	    (c->flags & (TAPIR_CF_CLIENT | TAPIR_CF_PRESTART)) == 0 &&
	    (c->seq_ok & (1 << DIR_IN)) &&
	    (__s32)(BPF_CORE_READ(tp, rcv_nxt) - c->seq[DIR_IN] - !!c->peer_gone) > 0) {
		tapir_conn_abandon(NULL, c, TAPIR_STAT_SEGMENT_GAP);
		return 0;
	}
	on_io(skb, io, n, c, NULL, skb);
	return 0;
}

/*
 * A segment's @n payload bytes on connection @c (@seq the first one's; @io says where they are in
 * the segment and which way they go): in order, past a gap if they can be, then walked, by one
 * CPU at a time (skb_claim_try()). A global function: @c is an entry of conns or of early,
 * and the verifier walks this once for both, where inlined it would walk all of it once per map.
 */
__noinline int skb_conn_io(struct __sk_buff *skb, struct tapir_conn *c, struct tapir_io *io,
			   __u32 seq, __u32 n)
{
	__u32 me = bpf_get_smp_processor_id() + 1;
	bool in, claim;
	int r;

	if (!skb || !c || !io) /* never: the verifier cannot know it (nor the compiler skb) */
		return 0;
	in = io->dir == DIR_IN;
	/* HTTP/2 has a frame walker each way: only its segments coming in wait for each other
	 * (an answer's long run of frames would keep the client's segments waiting). */
	claim = in || *(volatile __u8 *)&c->state != TAPIR_CONN_H2;
	if (claim) {
		/* The usual case in line: the word free and the segment the next one; else the
		 * loop. */
		r = skb_claim_try(c, seq, me, in);
		if (!r)
			r = conn_claim(c, seq, me, in ? CLAIM_IN : CLAIM_OUT);
		if (r <= 0) {
			/* Not walked: the connection's next segment finds these bytes missing. */
			stat_inc(TAPIR_STAT_SEGMENT_BUSY);
			return 0;
		}
	}
	skb_conn_walk(skb, c, io, seq, n);
	if (claim)
		__sync_lock_test_and_set(&c->walker, 0);
	return 0;
}

/* A connection for the segment's @n bytes (@io) that none is known of, made in conns if they
 * begin a request: 1, and io->sock its key then (a slot of this CPU's when conns is full). */
__noinline int skb_pick_up(struct __sk_buff *skb, struct tapir_io *io, __u32 n)
{
	struct tapir_conn_key key;

	if (!io)
		return 0;
	key.sock = io->sock;
	if (!pick_up(&key, io, n, skb))
		return 0;
	io->sock = key.sock;
	return 1;
}

static __always_inline void skb_io(struct __sk_buff *skb, __u8 dir, __u32 *slot)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct bpf_sock *sk = skb->sk;
	struct tapir_scratch *s;
	struct tapir_io *io;
	struct tapir_conn_key key;
	struct tapir_conn *c;
	__u32 off, seq, n, ports;
	bool listening;
	__u8 *b = data, syn;

	/* Data that completes a handshake comes on the listening socket, before its connection
	 * exists: walked early (skb_early()). Nothing else is followed there. */
	if (!sk)
		return;
	listening = sk->state == BPF_TCP_LISTEN || sk->state == BPF_TCP_NEW_SYN_RECV;
	if (listening && dir != DIR_IN)
		return;
	/* The IP and TCP headers are in the linear head: read in place. */
	if (skb->protocol == bpf_htons(SKB_ETH_P_IP)) {
		if ((void *)(b + 20) > end || b[9] != IPPROTO_TCP)
			return;
		off = (b[0] & 0xf) * 4;
	} else if (skb->protocol == bpf_htons(SKB_ETH_P_IPV6)) {
		if ((void *)(b + 40) > end || b[6] != IPPROTO_TCP)
			return; /* extension headers before TCP: not followed */
		off = 40;
	} else {
		return;
	}
	if (off < 20 || off > 60)
		return;
	b = data + off;
	if ((void *)(b + 20) > end)
		return;
	seq = (__u32)b[4] << 24 | (__u32)b[5] << 16 | (__u32)b[6] << 8 | b[7];
	ports = *(__u32 *)b; /* network order: the source's, then the destination's */
	syn = b[13] & 0x02;
	/* Each a value now, not bytes kept apart across the calls below (the stack is short). */
	barrier_var(seq);
	barrier_var(ports);
	off += (b[12] >> 4) * 4;
	if (skb->len <= off)
		return; /* no payload: an ACK, a SYN, a FIN */
	n = skb->len - off;
	s = bpf_map_lookup_elem(&scratch, slot);
	if (!s)
		return;
	if (listening) {
		/* A SYN's data (TCP Fast Open) goes to the new socket with the SYN: not walked. */
		if (syn)
			return;
		key.sock = early_id(seq, bpf_ntohs(ports >> 16), bpf_ntohs(ports & 0xffff));
		c = bpf_map_lookup_elem(&early, &key);
		if (!c) {
			if (!skb_early(skb, key.sock, seq, bpf_ntohs(ports & 0xffff)))
				return;
			c = bpf_map_lookup_elem(&early, &key);
			if (!c)
				return;
		}
	} else {
		/* The socket's address as a number, the key tracepoints gave its connection:
		 * through memory: the verifier allows no arithmetic on a socket pointer, which
		 * CO-RE reads do. */
		*(volatile __u64 *)&s->w.key.sock = (__u64)sk;
		key.sock = *(volatile __u64 *)&s->w.key.sock;
		c = bpf_map_lookup_elem(&conns, &key);
	}
	if (c && tapir_conn_passive(c))
		return;
	/* Field by field: a compound literal would be built on the stack first. */
	io = &s->io;
	io->ts = bpf_ktime_get_ns();
	io->sock = key.sock;
	io->buf = off; /* the payload's offset in the segment */
	io->fd = 0;
	io->iovcnt = 0;
	io->tgid = 0;
	io->kind = IO_PLAIN;
	io->dir = dir;
	io->peek = 0;
	io->at_call = 1;
	if (!c) {
		/* Out of line: its stack is not on the walk's call chain (6.1 counts 512 bytes
		 * over all frames of it). */
		if (!skb_pick_up(skb, io, n))
			return;
		key.sock = io->sock;
		c = bpf_map_lookup_elem(&conns, &key);
		if (!c)
			return;
	}
	skb_conn_io(skb, c, io, seq, n);
}

/* A run inside another on this CPU gets the second scratch slot; a third level (never seen) is
 * left alone, its bytes a gap for the connection's next segment. */
static __always_inline int skb_prog(struct __sk_buff *skb, __u8 dir)
{
	__u32 k = 0;
	struct tapir_scratch *s0 = bpf_map_lookup_elem(&scratch, &k);

	if (!s0 || s0->nest >= 2)
		return 1;
	s0->nest += 1;
	k = s0->nest > 1; /* now the slot scratch_for() gives at this depth: one key on the stack */
	skb_io(skb, dir, &k);
	s0->nest -= 1;
	return 1; /* an observer: every segment passes */
}

SEC("cgroup_skb/ingress")
int http_skb_in(struct __sk_buff *skb)
{
	return skb_prog(skb, DIR_IN);
}

SEC("cgroup_skb/egress")
int http_skb_out(struct __sk_buff *skb)
{
	return skb_prog(skb, DIR_OUT);
}
#endif

/*
 * --- trampoline hooks: before 6.3, kernels with BPF trampolines ----------------------------
 *
 * The same socket-layer view from the exits of TCP's own send and receive, which every
 * syscall on a TCP socket goes through (read, write, readv, writev, send*, recv*; sendfile and
 * splice through tcp_sendpage until 6.5). Only TCP sockets reach them: file I/O, pipes, UDP and
 * Unix sockets never run a program. tcp_recvmsg lost its nonblock argument in 5.19 and its
 * addr_len later: the loader loads the one program whose arguments match this kernel's BTF.
 */
SEC("fexit/tcp_sendmsg")
int BPF_PROG(fexit_tcp_sendmsg, struct sock *sk, struct msghdr *msg, size_t size, int ret)
{
	return sock_io(ctx, sk, ret, 0, DIR_OUT, TAILS(walkers_sendmsg));
}

SEC("fexit/tcp_sendpage")
int BPF_PROG(fexit_tcp_sendpage, struct sock *sk, struct page *page, int offset, size_t size,
	     int flags, int ret)
{
	return sock_io(ctx, sk, ret, 0, DIR_OUT, TAILS(walkers_sendpage));
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(fexit_tcp_recvmsg6, struct sock *sk, struct msghdr *msg, size_t len, int nonblock,
	     int flags, int *addr_len, int ret)
{
	return sock_io(ctx, sk, ret, flags, DIR_IN, TAILS(walkers_recvmsg));
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(fexit_tcp_recvmsg5, struct sock *sk, struct msghdr *msg, size_t len, int flags,
	     int *addr_len, int ret)
{
	return sock_io(ctx, sk, ret, flags, DIR_IN, TAILS(walkers_recvmsg));
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(fexit_tcp_recvmsg4, struct sock *sk, struct msghdr *msg, size_t len, int flags,
	     int ret)
{
	return sock_io(ctx, sk, ret, flags, DIR_IN, TAILS(walkers_recvmsg));
}
#ifdef TAPIR_COMPAT
/* The compat build's walk_more for each trampoline: loaded with its hook's function, never
 * attached, only tail-called. */
SEC("fexit/tcp_sendmsg")
int walk_more_sendmsg(void *ctx)
{
	return walk_more_body(ctx, &walkers_sendmsg);
}

SEC("fexit/tcp_recvmsg")
int walk_more_recvmsg(void *ctx)
{
	return walk_more_body(ctx, &walkers_recvmsg);
}

SEC("fexit/tcp_sendpage")
int walk_more_sendpage(void *ctx)
{
	return walk_more_body(ctx, &walkers_sendpage);
}

SEC("fexit/tcp_sendmsg")
int h2_more_sendmsg(void *ctx)
{
	return h2_more_body(ctx, &walkers_sendmsg);
}

SEC("fexit/tcp_recvmsg")
int h2_more_recvmsg(void *ctx)
{
	return h2_more_body(ctx, &walkers_recvmsg);
}

SEC("fexit/tcp_sendpage")
int h2_more_sendpage(void *ctx)
{
	return h2_more_body(ctx, &walkers_sendpage);
}
#endif
