/* SPDX-License-Identifier: GPL-2.0 */
/* What floor.bpf.c and floor.c share: the floors' state of a connection, and their aggregate. */
#ifndef TAPIR_FLOOR_H
#define TAPIR_FLOOR_H

#define COST_OPS 8 /* helper calls per run of a cost program */

struct floor_conn {
	__u64 start_ns; /* of the latest read not yet answered; 0: none */
	__u64 bytes;
	__u8 line[32]; /* the first bytes of the latest read, as tapir keeps a request line */
};

/* Per cgroup, both floors' answers and the sum of their latencies. */
struct floor_agg {
	__u64 ns;
	__u64 answers;
};

#endif
