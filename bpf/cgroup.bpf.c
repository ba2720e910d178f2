// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Cgroup lifecycle: tell the daemon at once when a cgroup appears or goes, so new containers
 * are watched from their first request instead of the next periodic rescan. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "tapir/http.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 10);
} cgroup_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cgroup_lost SEC(".maps");

static __always_inline int notify(__u64 id, int level, __u32 what)
{
	struct tapir_cgroup_event *e;
	__u32 zero = 0;
	__u64 *lost;

	e = bpf_ringbuf_reserve(&cgroup_events, sizeof(*e), 0);
	if (!e) {
		lost = bpf_map_lookup_elem(&cgroup_lost, &zero);
		if (lost)
			*lost += 1;
		return 0;
	}
	e->type = TAPIR_REC_CGROUP;
	e->what = what;
	e->id = id;
	e->level = level;
	e->__pad = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/cgroup/cgroup_mkdir")
int cgroup_mkdir(struct trace_event_raw_cgroup *ctx)
{
	return notify(ctx->id, ctx->level, TAPIR_CGROUP_MKDIR);
}

SEC("tracepoint/cgroup/cgroup_rmdir")
int cgroup_rmdir(struct trace_event_raw_cgroup *ctx)
{
	return notify(ctx->id, ctx->level, TAPIR_CGROUP_RMDIR);
}
