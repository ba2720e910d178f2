/* SPDX-License-Identifier: GPL-2.0 */
/* What floor.bpf.c and floor.c share: the floor tracer's state of a connection. */
#ifndef TAPIR_FLOOR_H
#define TAPIR_FLOOR_H

#define COST_OPS 8 /* helper calls per run of a cost program */

struct floor_conn {
	__u64 start_ns; /* of the latest read not yet answered; 0: none */
	__u64 bytes;
	__u64 requests; /* reads answered: a write after them */
	__u8 line[32];	/* the first bytes of the latest read, as tapir keeps a request line */
};

/* Per cgroup, the socket-buffer floor's answers and the sum of their latencies. */
struct floor_skb_agg {
	__u64 ns;
	__u64 answers;
};

#endif
