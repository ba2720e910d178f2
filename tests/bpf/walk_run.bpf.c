// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The walk and connection driver compiled for BPF, run with BPF_PROG_TEST_RUN over syscalls the
 * test describes, so the unit test can compare them with the same code compiled natively. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TAPIR_HEAD_LINE_FN run_head_line /* a global function, as in bpf/http.bpf.c */

#include "tapir/http.h"
#include "walk_run.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct walk_run run; /* written by the test before each run, read back after it */

static __always_inline void tapir_conn_stat(void *env, __u32 idx)
{
	if (idx < TAPIR_STAT_MAX)
		run.stats[idx]++;
}

static __always_inline void tapir_conn_record(void *env, struct tapir_conn *c, __u32 slot,
					      __u8 outcome, __u16 status, __u64 now)
{
	__u32 n = run.n_rec, h = slot & (TAPIR_MAX_PENDING - 1);
	struct walk_run_rec *r;

	if (n >= WALK_RUN_MAX_REC)
		return;
	r = &run.rec[n & (WALK_RUN_MAX_REC - 1)];
	r->status = status;
	r->outcome = outcome;
	r->method = c->method[h];
	r->req_bytes = c->req_bytes[h];
	r->resp_bytes = c->resp_bytes;
	r->end_ns = now;
	run.n_rec = n + 1;
}

static __always_inline int tapir_walk_read(void *env, void *dst, __u32 n, __u64 src)
{
	return bpf_probe_read_kernel(dst, n, (void *)src);
}

/* The parser step, the fast path, the line skip and whole heads as global functions, as in the
 * loop build (bpf/http.bpf.c): the verifier checks each once. */
struct tapir_walk;
__noinline int run_head_line(struct tapir_http_parser *q, const struct tapir_http_win *w, __u32 o,
			     __u32 n, __u32 cls)
{
	if (!q || !w)
		return 0;
	return tapir_http_head_line(q, w, o, n, cls);
}

__noinline int run_feed(struct tapir_http_parser *p, __u32 c)
{
	if (!p)
		return TP_EV_ERROR;
	return tapir_http_feed(p, c);
}

__noinline int run_fast(struct tapir_http_parser *p, __u64 x0, __u64 x1)
{
	if (!p)
		return 0;
	return tapir_http_fast(p, x0, x1);
}

__noinline int run_skip(struct tapir_http_parser *p, struct tapir_walk *w, __u32 at);
__noinline int run_head(struct tapir_http_parser *p, struct tapir_walk *w, __u32 at);

#define TAPIR_CONN_ENV		   void
#define TAPIR_WALK_FEED(p, c)	   run_feed(p, c)
#define TAPIR_WALK_FAST(p, x0, x1) run_fast(p, x0, x1)
#define TAPIR_WALK_SKIP(p, w, at)  run_skip(p, w, at)
#define TAPIR_WALK_HEAD(p, w, at)  run_head(p, w, at)
#include "tapir/walk.h"

__noinline int run_skip(struct tapir_http_parser *p, struct tapir_walk *w, __u32 at)
{
	if (!p || !w)
		return 0;
	return tapir_walk_skip(p, w, at);
}

__noinline int run_head(struct tapir_http_parser *p, struct tapir_walk *w, __u32 at)
{
	if (!p || !w)
		return 0;
	return tapir_walk_head(p, w, at);
}

struct tapir_walk walk;

/* One step: start the next syscall when the last one is walked, else a walk step. */
static long step(__u32 i, void *ctx)
{
	struct tapir_conn_key key = { 13 };
	struct walk_run_io *io;
	__u32 k = run.cur;

	if (!run.busy) {
		if (k >= run.n_io || k >= WALK_RUN_MAX_IO)
			return 1;
		io = &run.io[k & (WALK_RUN_MAX_IO - 1)];
		if (io->off >= WALK_RUN_DATA || io->len > WALK_RUN_DATA - io->off)
			return 1;
		run.cur = k + 1;
		if (run.conn.state >= TAPIR_CONN_IGNORED)
			return 0; /* exit_io() would not walk it */
		tapir_walk_begin(&walk, &key, TAPIR_IO_PLAIN, io->dir,
				 (__u64)(unsigned long)&run.data[io->off & (WALK_RUN_DATA - 1)], 0,
				 io->len, 10 * k, 10 * k + 1);
		run.busy = 1;
		return 0;
	}
	if (tapir_walk_step(NULL, &walk, &run.conn))
		run.busy = 0;
	run.steps++;
	return 0;
}

SEC("syscall")
int walk_run(void *ctx)
{
	run.cur = 0;
	run.busy = 0;
	run.n_rec = 0;
	bpf_loop(1 << 20, step, NULL, 0);
	return 0;
}
