// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The HTTP/2 frame walker compiled for BPF, run with BPF_PROG_TEST_RUN over segments the test
 * describes, so that test_h2_run.c can compare it with the same code compiled natively. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define H2_RUN_READ(dst, n, src)	    bpf_probe_read_kernel(dst, n, src)
#define H2_RUN_STEP(w, win, wlen, left, ev) run_step(w, (void *)(win), wlen, left, ev)
struct tapir_h2_walker;
struct tapir_h2_event;
struct h2_win;
__noinline __u32 run_step(struct tapir_h2_walker *w, const struct h2_win *win, __u32 wlen,
			  __u64 left, struct tapir_h2_event *ev);
#include "h2_run.h"

/* The step as a global function, as a loop build would take it: the verifier checks it once.
 * Its window is a type of TH2_WIN bytes, so that the verifier knows how far it may read. */
struct h2_win {
	__u8 b[TH2_WIN];
};

__noinline __u32 run_step(struct tapir_h2_walker *w, const struct h2_win *win, __u32 wlen,
			  __u64 left, struct tapir_h2_event *ev)
{
	if (!w || !win || !ev)
		return 0;
	return tapir_h2_step(w, win->b, wlen, left, ev);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct h2_run run; /* written by the test before each run, read back after it */

static long step(__u32 i, void *ctx)
{
	return h2_run_step(&run);
}

SEC("syscall")
int h2_run(void *ctx)
{
	bpf_loop(1 << 20, step, NULL, 0);
	return 0;
}
