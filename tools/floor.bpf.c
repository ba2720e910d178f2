// SPDX-License-Identifier: GPL-2.0
/* The least a tracer that reads HTTP from a server's memory must do per call, and what each of
 * the kernel helpers it needs costs on this machine: the floor tapir's overhead sits on. */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "floor.h"

char LICENSE[] SEC("license") = "GPL";

#define FLOOR_WIN  256 /* bytes looked at per call, as tapir's window */
#define FLOOR_IOVS 4   /* iovecs read at once, as tapir's first batch */
/* The vectored calls, and a syscall's number and second argument in its registers. */
#if defined(__TARGET_ARCH_x86)
#define NR_READV    19
#define NR_WRITEV   20
#define SYS_NR(r)   ((r)->orig_ax)
#define SYS_ARG2(r) ((r)->si)
#elif defined(__TARGET_ARCH_arm64)
#define NR_READV    65
#define NR_WRITEV   66
#define SYS_NR(r)   ((r)->syscallno)
#define SYS_ARG2(r) ((r)->regs[1])
#else
#error "floor: the syscall registers of this architecture are missing"
#endif

/* --- the floor tracer: on the same socket hooks as tapir, with none of its parsing --------- */

struct floor_iovec {
	__u64 base;
	__u64 len;
};

struct floor_win {
	__u8 b[FLOOR_WIN];
	struct floor_iovec iov[FLOOR_IOVS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u32);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct floor_conn);
} conns SEC(".maps");

/* Per cgroup: answers and the sum of their latencies, an atomic add each. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct floor_agg);
} agg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct floor_win);
} scratch SEC(".maps");

/*
 * What both floors do with a message's first bytes @w at @now: bytes in (@out 0) start a request
 * and keep its first 32 bytes, as tapir keeps a request line; the first bytes out after them
 * answer it. 1 with its latency in *@lat when they do.
 */
static __always_inline int floor_answer(struct floor_conn *c, const struct floor_win *w, __u64 now,
					int out, __u64 *lat)
{
	if (!out) {
		c->start_ns = now;
		__builtin_memcpy(c->line, w->b, sizeof(c->line));
		return 0;
	}
	if (!c->start_ns)
		return 0;
	*lat = now - c->start_ns;
	c->start_ns = 0;
	return 1;
}

/* An answer of cgroup @cg, @lat after its request, into the cgroup's aggregate. */
static __always_inline void floor_add(__u64 cg, __u64 lat)
{
	struct floor_agg *a = bpf_map_lookup_elem(&agg, &cg);

	if (a) {
		__sync_fetch_and_add(&a->ns, lat);
		__sync_fetch_and_add(&a->answers, 1);
	}
}

/*
 * Per call of a watched process: the cgroup filter, the connection's state, the syscall's
 * buffer from its registers, one read of its first bytes (the iovec array first for a vectored
 * call), one clock read; a read keeps the first 32 bytes as tapir keeps a request line, the first
 * write after it adds its latency and one answer to its cgroup's aggregate. What tapir adds
 * beyond this is its parsing.
 */
static __always_inline int floor_io(struct sock *sk, int ret, int out)
{
	__u64 cg = bpf_get_current_cgroup_id(), key = (__u64)sk, buf, lat;
	struct floor_conn *c, fresh = {};
	struct floor_win *w;
	struct pt_regs *regs;
	__u32 zero = 0;

	if (!bpf_map_lookup_elem(&watched, &cg) || ret <= 0)
		return 0;
	c = bpf_map_lookup_elem(&conns, &key);
	if (!c) {
		bpf_map_update_elem(&conns, &key, &fresh, BPF_ANY);
		c = bpf_map_lookup_elem(&conns, &key);
		if (!c)
			return 0;
	}
	w = bpf_map_lookup_elem(&scratch, &zero);
	if (!w)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	buf = SYS_ARG2(regs);
	if (SYS_NR(regs) == NR_READV || SYS_NR(regs) == NR_WRITEV) {
		if (bpf_probe_read_user(w->iov, sizeof(w->iov), (void *)buf))
			return 0;
		buf = w->iov[0].base;
	}
	if (bpf_probe_read_user(w->b, FLOOR_WIN, (void *)buf))
		return 0;
	if (floor_answer(c, w, bpf_ktime_get_ns(), out, &lat))
		floor_add(cg, lat);
	c->bytes += ret;
	return 0;
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(floor_recv, struct sock *sk, int ret, int flags)
{
	return floor_io(sk, ret, 0);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(floor_send, struct sock *sk, int ret, int flags)
{
	return floor_io(sk, ret, 1);
}

/*
 * --- the same floor at the socket buffers: cgroup_skb, no read of the process's memory ------
 *
 * Per TCP segment to or from a socket of the cgroup: the connection's state in the socket's own
 * storage (no hash lookup), the payload's first bytes copied out of the segment (as a parser
 * would need them: a response's payload is in page fragments, not in the linear head), one
 * clock read; the first payload out after a payload in adds its latency and one answer to the
 * socket's cgroup. A segment without payload (an ACK) stops after the headers. What it leaves
 * out, a design at this layer would have to add: TCP reassembly (retransmits, out-of-order
 * segments, GRO/GSO), and the process (only the socket's cgroup is known).
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct floor_conn);
} sk_conns SEC(".maps");

#define FLOOR_ETH_P_IP	 0x0800
#define FLOOR_ETH_P_IPV6 0x86DD
#define FLOOR_TCP	 6

static __always_inline int floor_skb(struct __sk_buff *skb, int out)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct bpf_sock *sk = skb->sk;
	struct floor_conn *c;
	struct floor_win *w;
	__u32 zero = 0, off, n;
	__u64 lat;
	__u8 *b;

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != FLOOR_TCP)
		return 1;
	/* The IP and TCP headers are in the linear head: read in place. */
	b = data;
	if (skb->protocol == bpf_htons(FLOOR_ETH_P_IP)) {
		if (data + 20 > end)
			return 1;
		off = (b[0] & 0xf) * 4;
	} else if (skb->protocol == bpf_htons(FLOOR_ETH_P_IPV6)) {
		off = 40; /* extension headers: none on TCP here */
	} else {
		return 1;
	}
	if (off > 60)
		return 1;
	b = data + off; /* the TCP header */
	if ((void *)(b + 20) > end)
		return 1;
	off += (b[12] >> 4) * 4;
	if (skb->len <= off)
		return 1; /* no payload: an ACK, a SYN, a FIN */
	c = bpf_sk_storage_get(&sk_conns, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	w = bpf_map_lookup_elem(&scratch, &zero);
	if (!c || !w)
		return 1;
	n = skb->len - off;
	if (n > FLOOR_WIN)
		n = FLOOR_WIN;
	if (n < 1 || bpf_skb_load_bytes(skb, off, w->b, n))
		return 1;
	if (floor_answer(c, w, bpf_ktime_get_ns(), out, &lat))
		floor_add(bpf_skb_cgroup_id(skb), lat);
	c->bytes += skb->len - off;
	return 1;
}

SEC("cgroup_skb/ingress")
int skb_in(struct __sk_buff *skb)
{
	return floor_skb(skb, 0);
}

SEC("cgroup_skb/egress")
int skb_out(struct __sk_buff *skb)
{
	return floor_skb(skb, 1);
}

/* --- helper costs: each program makes COST_OPS calls of one helper per getppid() ---------- */

const volatile __u32 cost_tgid = 0;
__u64 cost_ubuf = 0; /* a buffer of the measuring process */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} cost_ring SEC(".maps");

/*
 * A program that makes COST_OPS calls of @op at each getppid() of the measuring process, adding
 * up what they return so that the compiler keeps them.
 */
#define COST_PROG(name, op)                                          \
	SEC("tracepoint/syscalls/sys_enter_getppid")                 \
	int cost_##name(void *ctx)                                   \
	{                                                            \
		__u64 acc = 0;                                       \
		int i;                                               \
                                                                     \
		if ((bpf_get_current_pid_tgid() >> 32) != cost_tgid) \
			return 0;                                    \
		for (i = 0; i < COST_OPS; i++)                       \
			acc += (op);                                 \
		return acc & 1;                                      \
	}

static __always_inline __u64 read8(void)
{
	__u64 x = 0;

	bpf_probe_read_user(&x, sizeof(x), (void *)cost_ubuf);
	return x;
}

static __always_inline __u64 read256(void)
{
	__u32 zero = 0;
	struct floor_win *w = bpf_map_lookup_elem(&scratch, &zero);

	return w ? bpf_probe_read_user(w->b, FLOOR_WIN, (void *)cost_ubuf) : 0;
}

static __always_inline __u64 hash_lookup(void)
{
	__u64 key = 1, *v = bpf_map_lookup_elem(&agg, &key);

	return v ? *v : 0;
}

static __always_inline __u64 ringbuf(void)
{
	void *e = bpf_ringbuf_reserve(&cost_ring, 64, 0);

	if (e)
		bpf_ringbuf_discard(e, BPF_RB_NO_WAKEUP);
	return 0;
}

/* A BPF-to-BPF call and its return (the return thunk of the CPU's mitigations included). */
__noinline int cost_callee(__u64 x)
{
	return x + 1;
}

static long cost_loop_cb(__u32 i, void *arg)
{
	return 0;
}

/* bpf_loop with one iteration: the helper, and an indirect call of its callback and back. */
static __always_inline __u64 loop1(void)
{
	return bpf_loop(1, cost_loop_cb, NULL, 0);
}

/* cost_none first: every other program's time is its own less cost_none's. */
COST_PROG(none, 0)
COST_PROG(ktime, bpf_ktime_get_ns())
COST_PROG(read8, read8())
COST_PROG(read256, read256())
COST_PROG(cgroup_id, bpf_get_current_cgroup_id())
COST_PROG(hash_lookup, hash_lookup())
COST_PROG(ringbuf, ringbuf())
COST_PROG(call, cost_callee(i))
COST_PROG(loop1, loop1())
