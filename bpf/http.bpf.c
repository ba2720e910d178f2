// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Server-side HTTP/1.x from syscall tracepoints: one ring-buffer record per answered request. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "tapir/http.h"
#include "tapir.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Knobs the loader sets before load. */
const volatile __u32 loop_max = 65536;	     /* parser steps per syscall segment */
const volatile __u64 wakeup_bytes = 1 << 20; /* wake the reader once this much is queued */
const volatile __u32 self_tgid = 0;	     /* the daemon: never traced (its own /metrics) */

#define MAX_IOV 16 /* iovecs looked at per readv/writev/recvmsg/sendmsg */

#define IO_PLAIN 0 /* read/write/recvfrom/sendto: one buffer */
#define IO_IOV	 1 /* readv/writev/recvmsg/sendmsg: an iovec array */
#define IO_BLIND 2 /* sendfile: bytes we cannot see */
#define DIR_IN	 0 /* the server reads: request bytes */
#define DIR_OUT	 1 /* the server writes: response bytes */

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

struct tapir_scratch {
	__u8 win[TAPIR_WIN];
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

static __always_inline void stat_inc(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline struct tapir_cgroup_info *current_watched(void)
{
	__u64 id = bpf_get_current_cgroup_id();

	return bpf_map_lookup_elem(&watched_cgroups, &id);
}

static __always_inline void inflight_add(struct tapir_conn *c, __s64 delta)
{
	struct tapir_cgroup_info *cg = bpf_map_lookup_elem(&watched_cgroups, &c->cgroup_id);

	if (cg)
		__sync_fetch_and_add(&cg->inflight, delta);
}

static __always_inline void websockets_add(struct tapir_conn *c, __s64 delta)
{
	struct tapir_cgroup_info *cg = bpf_map_lookup_elem(&watched_cgroups, &c->cgroup_id);

	if (cg)
		__sync_fetch_and_add(&cg->websockets, delta);
}

/* Emit the record of the oldest pending request and pop it. */
static __always_inline void finish(struct tapir_conn *c, __u8 outcome, __u16 status, __u64 now)
{
	__u32 h = c->head & (TAPIR_MAX_PENDING - 1);
	struct tapir_http_event *e;
	__u64 flags;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
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
		/* Batch wake-ups: the reader polls on a short timer anyway, and a wake-up per
		 * request would cost the traced server a context switch per request. */
		flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes
				? BPF_RB_FORCE_WAKEUP
				: BPF_RB_NO_WAKEUP;
		bpf_ringbuf_submit(e, flags);
	} else {
		stat_inc(TAPIR_STAT_RINGBUF_LOST);
	}
	inflight_add(c, -1);
	c->head = (h + 1) & (TAPIR_MAX_PENDING - 1);
	c->count--;
	c->first_byte_ns = 0;
	c->resp_bytes = 0;
}

/* Give up on a connection: its pending requests are dropped and counted. */
static __always_inline void abandon(struct tapir_conn *c, __u32 why)
{
	stat_inc(why);
	if (c->count)
		inflight_add(c, -(__s64)c->count);
	c->count = 0;
	c->state = TAPIR_CONN_IGNORED;
}

/* Account for a connection that is going away: close(), fd reuse, or eviction. */
static __always_inline void finalize(struct tapir_conn *c, __u64 now)
{
	__u8 outcome;
	int i;

	if (c->state == TAPIR_CONN_UPGRADED) {
		websockets_add(c, -1);
		return;
	}
	for (i = 0; i < TAPIR_MAX_PENDING; i++) {
		if (!c->count)
			break;
		if (c->resp.state == TP_BODY_CLOSE) {
			/* A close-delimited body ends here: that is a complete response. */
			finish(c, TAPIR_OUT_COMPLETE, c->resp.status, now);
			tapir_http_init(&c->resp, TP_KIND_RESPONSE);
			continue;
		}
		outcome = (c->flags & TAPIR_CF_PEER_GONE) ? TAPIR_OUT_CLIENT_ABORT
							  : TAPIR_OUT_SERVER_ABORT;
		finish(c, outcome, c->resp.status, now);
		tapir_http_init(&c->resp, TP_KIND_RESPONSE);
	}
}

/* What an event handler needs to know besides the connection. */
struct ev_args {
	__u64 off;  /* segment offset just past the byte that produced the event */
	__u64 mark; /* segment offset up to which bytes were attributed */
	__u64 ts;   /* syscall entry */
	__u64 now;  /* syscall exit */
	__u64 ubuf; /* user address of the segment, 0 if unreadable */
	__u64 len;  /* segment length */
	__u32 dir;
	__u32 __pad;
};

struct walk_ctx {
	struct tapir_http_parser *p;
	struct tapir_conn *c;
	__u8 *win;
	__u64 ubuf; /* user address of the segment; 0 when its bytes cannot be read */
	__u64 len;
	__u64 off;
	__u64 woff; /* segment offset of win[0] */
	__u32 wlen; /* valid bytes in win */
	__s32 stop; /* the connection was dropped or upgraded: stop parsing */
	struct ev_args a;
};

/*
 * The byte-level parser as a global function: the verifier checks it once, on its own, instead
 * of once per path into the loop callback below, which keeps load time and the 1M-instruction
 * budget in check.
 */
__noinline int http_feed(struct tapir_http_parser *p, __u32 c)
{
	if (!p)
		return TP_EV_ERROR;
	return tapir_http_feed(p, c);
}

/* The many-bytes-at-once fast path, likewise checked once. */
__noinline int http_fast(struct tapir_http_parser *p, __u64 x0, __u64 x1)
{
	if (!p)
		return 0;
	return tapir_http_fast(p, x0, x1);
}

/* Copy the start of the request line that begins at a->off - 1 (as much as this segment has). */
static __always_inline void keep_line(__u8 *line, struct ev_args *a)
{
	__u64 n = a->len - (a->off - 1);

	__builtin_memset(line, 0, TAPIR_LINE_BYTES);
	if (!a->ubuf)
		return;
	if (n > TAPIR_LINE_BYTES)
		n = TAPIR_LINE_BYTES;
	bpf_probe_read_user(line, n, (void *)(a->ubuf + a->off - 1));
}

/* Request-side event; returns 0 to go on, -1 to stop parsing this connection. */
static __always_inline int on_request(struct tapir_conn *c, int ev, struct ev_args *a)
{
	__u32 t;

	if (ev == TP_EV_START) {
		c->state = TAPIR_CONN_HTTP;
		if (c->count) {
			t = (c->head + c->count - 1) & (TAPIR_MAX_PENDING - 1);
			c->req_bytes[t] += a->off - 1 - a->mark;
		}
		a->mark = a->off - 1;
		if (c->count >= TAPIR_MAX_PENDING) {
			stat_inc(TAPIR_STAT_PENDING_OVERFLOW);
			return 0;
		}
		t = (c->head + c->count) & (TAPIR_MAX_PENDING - 1);
		c->start_ns[t] = a->now;
		c->req_bytes[t] = 0;
		c->method[t] = TP_M_UNKNOWN;
		keep_line(c->line[t], a);
		c->count++;
		inflight_add(c, 1);
		return 0;
	}
	if (ev == TP_EV_DONE) {
		c->flags |= TAPIR_CF_SPOKE_HTTP;
		if (c->count) {
			t = (c->head + c->count - 1) & (TAPIR_MAX_PENDING - 1);
			c->req_bytes[t] += a->off - a->mark;
			c->method[t] = c->req.method;
		}
		a->mark = a->off;
		tapir_http_init(&c->req, TP_KIND_REQUEST);
		return 0;
	}
	/* TP_EV_ERROR: before a first whole request line, this simply is not HTTP/1.x (TLS,
	 * HTTP/2, another protocol); after it, HTTP we failed to follow. */
	if ((c->flags & TAPIR_CF_SPOKE_HTTP) || (c->req.flags & TP_F_LINE_OK))
		abandon(c, TAPIR_STAT_PARSE_REQUEST);
	else
		abandon(c, c->req.method == TP_M_PRI ? TAPIR_STAT_IGNORED_HTTP2
						     : TAPIR_STAT_IGNORED_NOT_HTTP);
	return -1;
}

static __always_inline int on_response(struct tapir_conn *c, int ev, struct ev_args *a)
{
	__u32 h = c->head & (TAPIR_MAX_PENDING - 1);
	__u8 upgraded;

	if (ev == TP_EV_START) {
		a->mark = a->off - 1;
		if (!c->count) {
			stat_inc(TAPIR_STAT_STRAY_RESPONSE);
			return 0;
		}
		if (c->method[h] == TP_M_UNKNOWN && c->count == 1)
			c->method[h] = c->req.method; /* answered before the body was read */
		if (c->method[h] == TP_M_HEAD)
			c->resp.flags |= TP_F_NO_BODY;
		if (!c->first_byte_ns)
			c->first_byte_ns = a->ts;
		return 0;
	}
	if (ev == TP_EV_INTERIM) {
		/* 100 Continue and friends: on the wire, but not the answer; TTFB waits for
		 * the final response. */
		c->resp_bytes += a->off - a->mark;
		a->mark = a->off;
		c->first_byte_ns = 0;
		if (c->count && c->method[h] == TP_M_HEAD)
			c->resp.flags |= TP_F_NO_BODY;
		return 0;
	}
	if (ev == TP_EV_DONE) {
		if (c->count) {
			c->resp_bytes += a->off - a->mark;
			upgraded = c->resp.flags & TP_F_UPGRADED;
			finish(c, upgraded ? TAPIR_OUT_UPGRADED : TAPIR_OUT_COMPLETE,
			       c->resp.status, a->now);
			if (upgraded) {
				stat_inc(TAPIR_STAT_UPGRADED);
				c->state = TAPIR_CONN_UPGRADED;
				websockets_add(c, 1);
				return -1;
			}
		}
		a->mark = a->off;
		tapir_http_init(&c->resp, TP_KIND_RESPONSE);
		return 0;
	}
	abandon(c, TAPIR_STAT_PARSE_RESPONSE);
	return -1;
}

/* An event of either parser, as a global function: checked once, not once per loop path. */
__noinline int handle_event(struct tapir_conn *c, int ev, struct ev_args *a)
{
	if (!c || !a)
		return -1;
	return a->dir == DIR_IN ? on_request(c, ev, a) : on_response(c, ev, a);
}

/* One parser step, and its event if any; returns 1 to stop (end of segment, fault, or the
 * connection left HTTP/1.x). */
static long walk_cb(__u32 i, void *arg)
{
	struct walk_ctx *w = arg;
	struct tapir_http_parser *p = w->p;
	__u64 left, max, n;
	__u32 at;
	int ev;

	if (w->off >= w->len)
		return 1;
	left = w->len - w->off;
	max = tapir_http_bulk_max(p);
	if (max) {
		n = left < max ? left : max;
		w->off += n;
		ev = tapir_http_bulk(p, n);
		goto event;
	}
	if (!w->ubuf) {
		ev = TP_EV_ERROR; /* framing bytes we cannot see */
		goto event;
	}
	/* Refill when the window cannot show the next 16 bytes but the segment can. */
	if (w->off < w->woff || w->off >= w->woff + w->wlen ||
	    (w->off + 16 > w->woff + w->wlen && w->woff + w->wlen < w->len)) {
		n = left < TAPIR_WIN ? left : TAPIR_WIN;
		if (bpf_probe_read_user(w->win, n, (void *)(w->ubuf + w->off))) {
			stat_inc(TAPIR_STAT_READ_FAULT);
			ev = TP_EV_ERROR;
			goto event;
		}
		w->woff = w->off;
		w->wlen = n;
	}
	at = (w->off - w->woff) & (TAPIR_WIN - 1);
	if (at <= TAPIR_WIN - 16 && at + 16 <= w->wlen && tapir_http_fast_state(p->state)) {
		/* Most header bytes go up to 16 at a time. */
		n = http_fast(p, *(__u64 *)&w->win[at], *(__u64 *)&w->win[at + 8]);
		if (n) {
			w->off += n;
			return 0;
		}
	}
	ev = http_feed(p, w->win[at]);
	w->off++;
event:
	if (ev == TP_EV_NONE || ev == TP_EV_HEADERS)
		return 0;
	w->a.off = w->off;
	w->stop = handle_event(w->c, ev, &w->a);
	return w->stop != 0;
}

/**
 * walk_segment - run one contiguous run of syscall bytes through a connection's parser
 *
 * A global function, so the verifier checks it once rather than at each of its call sites.
 * @ubuf: user address of the bytes, or 0 when they cannot be read (sendfile)
 * @io: the syscall (direction, entry time = time of a response's first byte); @now: exit time
 */
__noinline int walk_segment(struct tapir_conn *c, struct tapir_io *io, __u64 ubuf, __u64 len,
			    __u64 now)
{
	struct walk_ctx w = {};
	struct tapir_scratch *s;
	__u32 zero = 0, t;

	if (!c || !io)
		return -1;
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return -1;
	w.c = c;
	w.p = io->dir == DIR_IN ? &c->req : &c->resp;
	w.win = s->win;
	w.ubuf = ubuf;
	w.len = len;
	w.woff = ~0ULL >> 1;
	w.a.dir = io->dir;
	w.a.ts = io->ts;
	w.a.now = now;
	w.a.ubuf = ubuf;
	w.a.len = len;

	bpf_loop(loop_max, walk_cb, &w, 0);
	if (w.stop)
		return -1;
	if (w.off < w.len) {
		abandon(c, TAPIR_STAT_SCAN_LIMIT);
		return -1;
	}
	/* Bytes since the last event belong to the message in progress. */
	if (!c->count || len <= w.a.mark)
		return 0;
	if (io->dir == DIR_IN) {
		t = (c->head + c->count - 1) & (TAPIR_MAX_PENDING - 1);
		c->req_bytes[t] += len - w.a.mark;
	} else if (c->resp.state != TP_IDLE) {
		c->resp_bytes += len - w.a.mark;
	}
	return 0;
}

static __always_inline void walk_iov(struct tapir_conn *c, struct tapir_io *io, __u64 total,
				     __u64 now)
{
	struct iovec iov;
	__u64 left = total, n;
	int i;

	for (i = 0; i < MAX_IOV; i++) {
		if (i >= io->iovcnt || !left)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(io->buf + i * sizeof(iov)))) {
			stat_inc(TAPIR_STAT_READ_FAULT);
			break;
		}
		n = iov.iov_len < left ? iov.iov_len : left;
		if (walk_segment(c, io, (__u64)iov.iov_base, n, now))
			return;
		left -= n;
	}
	if (left) /* beyond MAX_IOV: fine inside a body, a parse failure elsewhere */
		walk_segment(c, io, 0, left, now);
}

static __always_inline struct tapir_conn *new_conn(struct tapir_conn_key *key,
						   struct tapir_cgroup_info *cg, __u64 cgid)
{
	struct tapir_conn init = {};

	init.state = TAPIR_CONN_NEW;
	init.cgroup_id = cgid;
	init.labels_id = cg->labels_id;
	tapir_http_init(&init.req, TP_KIND_REQUEST);
	tapir_http_init(&init.resp, TP_KIND_RESPONSE);
	if (bpf_map_update_elem(&conns, key, &init, BPF_ANY)) {
		stat_inc(TAPIR_STAT_CONN_TABLE_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&conns, key);
}

/*
 * A read on an fd we never saw accepted (the connection predates tapir, or came through a
 * path we do not hook): follow it from here if it is TCP and the bytes open a request line.
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
	return new_conn(key, cg, cgid);
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

static __always_inline int exit_io(long ret)
{
	__u64 id = bpf_get_current_pid_tgid(), now;
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
	if (c->state == TAPIR_CONN_NEW && io.dir == DIR_OUT) {
		abandon(c, TAPIR_STAT_IGNORED_NOT_HTTP); /* the server spoke first */
		return 0;
	}
	if (c->state == TAPIR_CONN_NEW && io.kind != IO_BLIND) {
		__u64 ubuf = io.buf;
		__u8 first = 0;

		if (io.kind == IO_IOV)
			bpf_probe_read_user(&ubuf, sizeof(ubuf), (void *)io.buf);
		if (!bpf_probe_read_user(&first, 1, (void *)ubuf) && first == 0x16) {
			abandon(c, TAPIR_STAT_IGNORED_TLS); /* a TLS ClientHello record */
			return 0;
		}
	}
	now = bpf_ktime_get_ns();
	if (io.kind == IO_IOV)
		walk_iov(c, &io, ret, now);
	else
		walk_segment(c, &io, io.kind == IO_PLAIN ? io.buf : 0, ret, now);
	return 0;
}

static __always_inline int exit_accept(long ret)
{
	struct tapir_conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = ret };
	struct tapir_cgroup_info *cg;
	struct tapir_conn *old, *c;
	__u64 cgid;
	int kind;

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
		finalize(old, bpf_ktime_get_ns());
	}
	c = new_conn(&key, cg, cgid);
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
	finalize(c, bpf_ktime_get_ns());
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
		return exit_io(ctx->ret);                         \
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
