/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* BPF-only helpers shared by tapir's programs: socket classification from an fd, stats. */
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

/* What an fd refers to, as far as tapir cares. */
#define TAPIR_FD_OTHER 0 /* not a socket, or unreadable */
#define TAPIR_FD_TCP   1 /* AF_INET/AF_INET6 stream socket over TCP */
#define TAPIR_FD_SOCK  2 /* any other socket: Unix, UDP, netlink, ... */

static __always_inline int tapir_sock_kind(__u16 family, __u16 type, __u16 proto)
{
	if ((family == AF_INET || family == AF_INET6) && type == SOCK_STREAM &&
	    proto == IPPROTO_TCP)
		return TAPIR_FD_TCP;
	return TAPIR_FD_SOCK;
}

#define TCP_CLOSE      7
#define TCP_CLOSE_WAIT 8

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

/*
 * Has the peer of this TCP socket gone (FIN received: CLOSE_WAIT; reset: CLOSE)? Servers
 * such as nginx learn of an aborted client from epoll and SO_ERROR and close without a
 * failing read or write, so close() asks the socket itself.
 */
static __always_inline bool tapir_fd_peer_gone(__u32 fd)
{
	struct sock *sk = tapir_fd_sock(fd);
	__u8 state;

	if (!sk)
		return false;
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	return state == TCP_CLOSE_WAIT || state == TCP_CLOSE;
}

/**
 * tapir_fd_kind - classify an fd of the current task by walking its file table
 *
 * Works on every BTF kernel (5.8+) through CO-RE reads, so it is the fallback whenever the
 * sock_{send,recv}_length tracepoints (6.3+) did not already say which socket a syscall used.
 * sk_protocol and sk_type have been plain u16 fields since 5.6 (commit bf9765145b85).
 */
static __always_inline int tapir_fd_kind(__u32 fd)
{
	struct sock *sk = tapir_fd_sock(fd);

	if (!sk)
		return TAPIR_FD_OTHER;
	return tapir_sock_kind(BPF_CORE_READ(sk, __sk_common.skc_family),
			       BPF_CORE_READ(sk, sk_type), BPF_CORE_READ(sk, sk_protocol));
}

#endif /* TAPIR_BPF_H */
