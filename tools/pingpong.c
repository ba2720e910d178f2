// SPDX-License-Identifier: GPL-2.0
/* The CPU one HTTP/1.1 exchange costs its server thread, in a watched cgroup and in an unwatched
 * one, alternating: what tapir's HTTP path adds per request, with the machine's drift cancelled. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/*
 * One thread plays wrk and nginx over a loopback connection: a keep-alive GET as wrk sends it,
 * nginx's response headers and a 1 KiB body in one writev, read back whole. Every half-round
 * moves the thread into the other cgroup first, so a watched and an unwatched half are never
 * more than a fraction of a second apart; the per-round ratio of their CPU times is what tapir
 * adds, and its median over rounds does not move with the machine's speed.
 *
 * Each half has a connection of its own: the watched half's server socket is made in the
 * watched cgroup, the unwatched half's in the unwatched one, and both clients' in the unwatched
 * one. Hooks that follow the process (the socket and syscall hooks) tell the halves apart by the
 * thread's cgroup; the socket-buffer hooks, which hang on the cgroup a socket was made in, by
 * the socket's, and see only the server's side, as with a client on another machine.
 */
static const char req[] = "GET /static.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
static const char hdr[] = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n"
			  "Date: Sat, 05 Dec 2026 18:50:00 GMT\r\nContent-Type: text/plain\r\n"
			  "Content-Length: 1024\r\nLast-Modified: Sat, 05 Dec 2026 18:49:00 GMT\r\n"
			  "Connection: keep-alive\r\nETag: \"6751f0a0-400\"\r\n"
			  "Accept-Ranges: bytes\r\n\r\n";
static char body[1024], buf[8192];

static double thread_cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int join(const char *cg)
{
	char path[4096];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -errno;
	ok = dprintf(fd, "%d", getpid()) > 0;
	close(fd);
	return ok ? 0 : -EIO;
}

/* A connected pair over loopback: @c the client's end, made in cgroup @client_cg, @s the
 * server's, accepted from a listener made in @server_cg (an accepted socket keeps its
 * listener's cgroup). */
static int pair(int *c, int *s, const char *server_cg, const char *client_cg)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l, one = 1, err;

	err = join(server_cg);
	if (err)
		return err;
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (void *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (void *)&a, &len))
		return -errno;
	err = join(client_cg);
	if (err)
		return err;
	*c = socket(AF_INET, SOCK_STREAM, 0);
	if (*c < 0 || connect(*c, (void *)&a, sizeof(a)))
		return -errno;
	*s = accept(l, NULL, NULL);
	close(l);
	if (*s < 0)
		return -errno;
	setsockopt(*c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static int exchange(int c, int s)
{
	struct iovec iov[2] = { { (void *)hdr, sizeof(hdr) - 1 }, { body, sizeof(body) } };
	size_t want = sizeof(hdr) - 1 + sizeof(body), got = 0;
	ssize_t k;

	if (write(c, req, sizeof(req) - 1) < 0 || read(s, buf, sizeof(buf)) <= 0 ||
	    writev(s, iov, 2) < 0)
		return -1;
	while (got < want) {
		k = read(c, buf, sizeof(buf));
		if (k <= 0)
			return -1;
		got += k;
	}
	return 0;
}

int main(int argc, char **argv)
{
	long n, i;
	int rounds, r, w, halves = 2, c[2], s[2], err;
	double t0;

	if (argc == 6 && !strcmp(argv[5], "watched-only"))
		halves = 1; /* for kernel.bpf_stats_enabled: every program run is a watched one */
	else if (argc != 5) {
		fprintf(stderr,
			"usage: %s EXCHANGES ROUNDS WATCHED_CGROUP_DIR UNWATCHED_CGROUP_DIR "
			"[watched-only]\n"
			"prints per round: watched and unwatched ns of CPU per exchange (0 for the "
			"unwatched half with watched-only)\n",
			argv[0]);
		return 2;
	}
	n = atol(argv[1]);
	rounds = atoi(argv[2]);
	memset(body, 'x', sizeof(body));
	err = pair(&c[0], &s[0], argv[3], argv[4]);
	if (!err)
		err = pair(&c[1], &s[1], argv[4], argv[4]);
	if (err) {
		fprintf(stderr, "pingpong: %s\n", strerror(-err));
		return 1;
	}
	for (r = 0; r < rounds; r++) {
		double ns[2] = { 0, 0 };

		for (w = 0; w < halves; w++) {
			if (join(argv[3 + w]))
				return 1;
			t0 = thread_cpu_ns();
			for (i = 0; i < n; i++)
				if (exchange(c[w], s[w]))
					return 1;
			ns[w] = (thread_cpu_ns() - t0) / n;
		}
		printf("%.1f\t%.1f\n", ns[0], ns[1]);
	}
	return 0;
}
