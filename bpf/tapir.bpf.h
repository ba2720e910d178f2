/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* BPF-only helpers shared by tapir's programs: sockets, from an fd or a struct sock. */
#ifndef TAPIR_BPF_H
#define TAPIR_BPF_H

#define AF_INET	    2
#define AF_INET6    10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define S_IFMT	    00170000
#define S_IFSOCK    0140000
#define MSG_PEEK    2
#define EPIPE	    32
#define ECONNRESET  104

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* What a socket is, as far as tapir cares. */
#define TAPIR_SK_TCP   1 /* AF_INET/AF_INET6 stream socket over TCP */
#define TAPIR_SK_OTHER 2 /* any other socket: Unix, UDP, netlink, ... */

/* sk_protocol and sk_type have been plain u16 fields since 5.6 (commit bf9765145b85). */
static __always_inline int tapir_sk_kind(const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if ((family == AF_INET || family == AF_INET6) &&
	    BPF_CORE_READ(sk, sk_type) == SOCK_STREAM &&
	    BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP)
		return TAPIR_SK_TCP;
	return TAPIR_SK_OTHER;
}

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT	2
#define TCP_SYN_RECV	3
#define TCP_FIN_WAIT1	4
#define TCP_CLOSE	7
#define TCP_CLOSE_WAIT	8
#define TCP_LAST_ACK	9
#define TCP_LISTEN	10

/* The inode number of a socket (what /proc/PID/fd shows as socket:[N]), 0 if it has none. */
static __always_inline __u64 tapir_sock_inode(const struct sock *sk)
{
	struct socket *sock = BPF_CORE_READ(sk, sk_socket);
	struct socket_alloc *sa;

	if (!sock)
		return 0;
	sa = container_of(sock, struct socket_alloc, socket);
	return BPF_CORE_READ(sa, vfs_inode.i_ino);
}

/* sock_cgroup_data before 5.15: a cgroup pointer, or net_cls/net_prio data when bit 0 is set. */
struct sock_cgroup_data___v510 {
	__u64 val;
} __attribute__((preserve_access_index));
struct sock___v510 {
	struct sock_cgroup_data___v510 sk_cgrp_data;
} __attribute__((preserve_access_index));

/*
 * The cgroup v2 id of the cgroup a socket belongs to: the one its creator ran in, inherited by
 * the connections a listening socket accepts. 0 when the kernel does not say (net_cls or
 * net_prio data in its place, 5.10 to 5.14).
 */
static __always_inline __u64 tapir_sock_cgroup_id(const struct sock *sk)
{
	struct cgroup *cg;
	__u64 v;

	if (bpf_core_field_exists(sk->sk_cgrp_data.cgroup)) {
		cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	} else {
		v = BPF_CORE_READ((struct sock___v510 *)sk, sk_cgrp_data.val);
		if (v & 1)
			return 0;
		cg = (struct cgroup *)v;
	}
	if (!cg)
		return 0;
	return BPF_CORE_READ(cg, kn, id);
}

/* The struct sock behind an fd of the current task, or NULL. */
static __always_inline struct sock *tapir_fd_sock(__u32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds;
	struct file *f = NULL;
	struct socket *sock;
	unsigned int max;
	umode_t mode;

	fds = BPF_CORE_READ(task, files, fdt, fd);
	max = BPF_CORE_READ(task, files, fdt, max_fds);
	if (fd >= max || bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(f, private_data);
	return BPF_CORE_READ(sock, sk);
}

#endif /* TAPIR_BPF_H */
