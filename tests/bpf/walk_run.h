/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What test_walk_run.c hands walk_run.bpf.c and reads back: syscalls, their bytes, records. */
#ifndef TAPIR_WALK_RUN_H
#define TAPIR_WALK_RUN_H

#define WALK_RUN_MAX_IO	 32
#define WALK_RUN_MAX_REC 16
#define WALK_RUN_DATA	 2048

struct walk_run_io {
	__u32 off; /* into data */
	__u32 len;
	__u32 dir; /* TAPIR_DIR_* */
	__u32 __pad;
};

struct walk_run_rec {
	__u16 status;
	__u8 outcome;
	__u8 method;
	__u32 __pad;
	__u64 req_bytes;
	__u64 resp_bytes;
	__u64 end_ns;
};

struct walk_run {
	__u32 n_io, cur, busy, n_rec;
	__u64 steps;
	__u64 stats[TAPIR_STAT_MAX];
	struct walk_run_io io[WALK_RUN_MAX_IO];
	struct walk_run_rec rec[WALK_RUN_MAX_REC];
	struct tapir_conn conn;
	__u8 data[WALK_RUN_DATA];
};

#endif
