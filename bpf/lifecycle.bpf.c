// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Container lifecycle: cgroups coming and going, processes starting and dying (and why), and
 * sockets starting or stopping to listen, as events for the daemon. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#include "tapir/http.h"
#include "tapir.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Shared with the http feature: the daemon reuses http's map fd here before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tapir_cgroup_info);
} watched_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 << 10);
} lifecycle_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lifecycle_lost SEC(".maps");

/* Processes the OOM killer chose, until they exit: pid -> 1. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} oom_victims SEC(".maps");

/* Listening TCP sockets of watched cgroups: socket inode -> cgroup id. Keyed by inode so the
 * daemon can seed it from /proc for sockets that listened before it started. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u64);
} listeners SEC(".maps");

static __always_inline void emit(__u32 what, __u64 cgroup_id, __u32 tgid, __s32 code, __u32 aux)
{
	struct tapir_lifecycle_event *e;
	__u32 zero = 0;
	__u64 *lost;

	e = bpf_ringbuf_reserve(&lifecycle_events, sizeof(*e), 0);
	if (!e) {
		lost = bpf_map_lookup_elem(&lifecycle_lost, &zero);
		if (lost)
			*lost += 1;
		return;
	}
	e->type = TAPIR_REC_LIFECYCLE;
	e->what = what;
	e->cgroup_id = cgroup_id;
	e->tgid = tgid;
	e->code = code;
	e->aux = aux;
	e->__pad = 0;
	bpf_ringbuf_submit(e, 0);
}

SEC("tracepoint/cgroup/cgroup_mkdir")
int cgroup_mkdir(struct trace_event_raw_cgroup *ctx)
{
	emit(TAPIR_LC_MKDIR, ctx->id, 0, 0, ctx->level);
	return 0;
}

SEC("tracepoint/cgroup/cgroup_rmdir")
int cgroup_rmdir(struct trace_event_raw_cgroup *ctx)
{
	emit(TAPIR_LC_RMDIR, ctx->id, 0, 0, ctx->level);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int sched_process_exec(void *ctx)
{
	__u64 cgid = bpf_get_current_cgroup_id();

	if (bpf_map_lookup_elem(&watched_cgroups, &cgid))
		emit(TAPIR_LC_EXEC, cgid, bpf_get_current_pid_tgid() >> 32, 0, 0);
	return 0;
}

/*
 * The last thread of a process is exiting. signal->live was decremented before this
 * tracepoint fires, so zero means the whole thread group is gone. exit_code holds the status
 * the parent will see: a signal number in the low 7 bits, or the exit status shifted by 8.
 */
SEC("tracepoint/sched/sched_process_exit")
int sched_process_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 cgid = bpf_get_current_cgroup_id();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u8 *oom;
	__u32 aux = 0;

	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	/* Unwatched processes stop at this lookup; their OOM marks age out of the LRU map. */
	if (!bpf_map_lookup_elem(&watched_cgroups, &cgid))
		return 0;
	oom = bpf_map_lookup_elem(&oom_victims, &tgid);
	if (oom) {
		aux = TAPIR_LC_F_OOM;
		bpf_map_delete_elem(&oom_victims, &tgid);
	}
	emit(TAPIR_LC_EXIT, cgid, tgid, BPF_CORE_READ(task, exit_code), aux);
	return 0;
}

SEC("tracepoint/oom/mark_victim")
int oom_mark_victim(struct trace_event_raw_mark_victim *ctx)
{
	__u32 pid = ctx->pid;
	__u8 one = 1;

	bpf_map_update_elem(&oom_victims, &pid, &one, BPF_ANY);
	return 0;
}

SEC("tracepoint/sock/inet_sock_set_state")
int inet_sock_set_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	const struct sock *sk = ctx->skaddr;
	__u64 cgid, ino, *owner;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (ctx->newstate == TCP_LISTEN) {
		cgid = bpf_get_current_cgroup_id();
		if (!bpf_map_lookup_elem(&watched_cgroups, &cgid))
			return 0;
		ino = tapir_sock_inode(sk);
		if (!ino)
			return 0;
		bpf_map_update_elem(&listeners, &ino, &cgid, BPF_ANY);
		emit(TAPIR_LC_LISTEN, cgid, bpf_get_current_pid_tgid() >> 32, ctx->sport, 1);
	} else if (ctx->oldstate == TCP_LISTEN) {
		ino = tapir_sock_inode(sk);
		owner = bpf_map_lookup_elem(&listeners, &ino);
		if (!owner)
			return 0;
		emit(TAPIR_LC_LISTEN, *owner, bpf_get_current_pid_tgid() >> 32, ctx->sport, 0);
		bpf_map_delete_elem(&listeners, &ino);
	}
	return 0;
}
