/* SPDX-License-Identifier: GPL-2.0 */
/* /proc readers shared by the daemon's modules: a process's TCP sockets and their fds. */
#ifndef TAPIR_PROCFS_H
#define TAPIR_PROCFS_H

#define TAPIR_TCP_ESTABLISHED 0x01
#define TAPIR_TCP_LISTEN      0x0a

/* One fd of a process that is a TCP socket of its network namespace. */
struct tapir_proc_sock {
	int fd;
	unsigned long inode;
	unsigned int state;	 /* TAPIR_TCP_* as /proc/net/tcp shows it */
	unsigned int lport;	 /* local port */
	int family;		 /* AF_INET or AF_INET6 */
	unsigned char laddr[16]; /* local address, network order (4 bytes for AF_INET) */
};

typedef void (*tapir_proc_sock_fn)(void *ctx, const struct tapir_proc_sock *s);

/*
 * Call @fn for each fd of process @pid that is a TCP (v4 or v6) socket, with its state and
 * local port from /proc/@pid/net/tcp{,6} (so: in the process's own network namespace).
 * Returns the number of sockets seen or -errno.
 */
int tapir_proc_tcp_fds(int pid, tapir_proc_sock_fn fn, void *ctx);

/* One line of /proc/self/mountinfo. */
struct tapir_mount {
	const char *dir;    /* mount point */
	const char *fstype; /* "cgroup2", "cgroup", "bpf", ... */
	const char *super;  /* super options, e.g. "rw,cpu,cpuacct" for a v1 cgroup hierarchy */
};

/* Call @fn for each mount of this process's mount namespace until it returns non-zero;
 * returns that value, 0 at the end, or -errno. */
int tapir_proc_mounts(int (*fn)(void *ctx, const struct tapir_mount *m), void *ctx);

/* Local ports of the listening TCP sockets in @pid's network namespace: up to @max into
 * @ports; returns how many. */
size_t tapir_proc_listen_ports(int pid, unsigned int *ports, size_t max);

#endif
