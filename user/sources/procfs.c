// SPDX-License-Identifier: GPL-2.0
/* /proc readers shared by the daemon's modules: a process's TCP sockets and their fds. */
#include <dirent.h>
#include <errno.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procfs.h"

struct tcp_row {
	unsigned long inode;
	unsigned int state, lport;
	int family;
	unsigned char laddr[16];
};

/* The kernel prints an address as 32-bit words in host order, each as 8 hex digits. */
static int parse_addr(const char *hex, struct tcp_row *row)
{
	size_t n = strlen(hex), w;
	unsigned int word;
	char part[9];

	if (n != 8 && n != 32)
		return -1;
	row->family = n == 8 ? AF_INET : AF_INET6;
	for (w = 0; w < n / 8; w++) {
		memcpy(part, hex + 8 * w, 8);
		part[8] = '\0';
		if (sscanf(part, "%x", &word) != 1)
			return -1;
		memcpy(row->laddr + 4 * w, &word, 4);
	}
	return 0;
}

static int by_inode(const void *a, const void *b)
{
	const struct tcp_row *x = a, *y = b;

	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

/* The rows of /proc/PID/net/tcp and tcp6, sorted by inode; NULL (and *n 0) when none. */
static struct tcp_row *tcp_table(int pid, size_t *n)
{
	static const char *const files[] = { "tcp", "tcp6" };
	struct tcp_row *rows = NULL, *r;
	size_t cap = 0, i;
	char path[64], line[512], addr[40];
	FILE *f;

	*n = 0;
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "/proc/%d/net/%s", pid, files[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			struct tcp_row row;

			/* "  0: 0100007F:1F90 00000000:0000 0A ... uid timeout inode" */
			memset(&row, 0, sizeof(row));
			if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*s %*s %lu",
				   addr, &row.lport, &row.state, &row.inode) != 4 ||
			    parse_addr(addr, &row))
				continue;
			if (*n == cap) {
				cap = cap ? 2 * cap : 64;
				r = realloc(rows, cap * sizeof(*rows));
				if (!r)
					break;
				rows = r;
			}
			rows[(*n)++] = row;
		}
		fclose(f);
	}
	if (*n)
		qsort(rows, *n, sizeof(*rows), by_inode);
	return rows;
}

int tapir_proc_tcp_fds(int pid, tapir_proc_sock_fn fn, void *ctx)
{
	struct tcp_row *rows, key, *row;
	char path[64], fdpath[320], target[64];
	struct dirent *de;
	int seen = 0;
	ssize_t len;
	size_t n;
	DIR *d;

	rows = tcp_table(pid, &n);
	if (!rows)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d) {
		free(rows);
		return -errno;
	}
	while ((de = readdir(d))) {
		struct tapir_proc_sock s;

		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, de->d_name);
		len = readlink(fdpath, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (sscanf(target, "socket:[%lu]", &key.inode) != 1)
			continue;
		row = bsearch(&key, rows, n, sizeof(*rows), by_inode);
		if (!row)
			continue; /* not TCP */
		s.fd = atoi(de->d_name);
		s.inode = row->inode;
		s.state = row->state;
		s.lport = row->lport;
		s.family = row->family;
		memcpy(s.laddr, row->laddr, sizeof(s.laddr));
		fn(ctx, &s);
		seen++;
	}
	closedir(d);
	free(rows);
	return seen;
}

size_t tapir_proc_listen_ports(int pid, unsigned int *ports, size_t max)
{
	struct tcp_row *rows = NULL;
	size_t n, i, k = 0;

	rows = tcp_table(pid, &n);
	for (i = 0; i < n && k < max; i++)
		if (rows[i].state == TAPIR_TCP_LISTEN)
			ports[k++] = rows[i].lport;
	free(rows);
	return k;
}

int tapir_proc_mounts(int (*fn)(void *ctx, const struct tapir_mount *m), void *ctx)
{
	char line[4096], dir[1024], fstype[64], super[1024];
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int ret = 0;

	if (!f)
		return -errno;
	while (!ret && fgets(line, sizeof(line), f)) {
		/* "36 35 0:30 / /sys/fs/cgroup/unified rw,... shared:9 - cgroup2 cgroup2 rw" */
		const char *dash = strstr(line, " - ");
		struct tapir_mount m = { dir, fstype, super };

		if (!dash || sscanf(dash + 3, "%63s %*s %1023s", fstype, super) != 2 ||
		    sscanf(line, "%*s %*s %*s %*s %1023s", dir) != 1)
			continue;
		ret = fn(ctx, &m);
	}
	fclose(f);
	return ret;
}
