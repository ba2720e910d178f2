// SPDX-License-Identifier: GPL-2.0
/* A plain HTTP/1.1 client that counts what it puts on and takes off the wire: ground truth. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * http_client [-k|-c|-0] [-p PIECES] HOST PORT PATH...
 *
 * Sends one GET per PATH, all on one keep-alive connection (-k, the default) or each on a
 * connection of its own with "Connection: close" (-c), or as HTTP/1.0 asking for gzip (-0: a
 * server compressing on the fly knows no length and ends the body by closing the
 * connection), each request written in PIECES writes
 * 20 ms apart (so the server reads it in pieces). Reads each response whole: Content-Length,
 * chunked, or until the server closes. Prints what it sent and received:
 *   requests=N bytes_out=N bytes_in=N status_200=N status_404=N ...
 * Exit status 1 when a request could not be sent or a response not read.
 */

struct tally {
	unsigned long requests, out, in;
	unsigned long status[600];
};

static int dial(const char *host, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("http_client: connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void send_all(int fd, const char *p, size_t n, int pieces, struct tally *t)
{
	size_t step = (n + pieces - 1) / pieces, off, k;
	struct timespec gap = { 0, 20 * 1000 * 1000 };
	ssize_t w;

	for (off = 0; off < n; off += k) {
		if (off)
			nanosleep(&gap, NULL);
		k = n - off < step ? n - off : step;
		for (size_t done = 0; done < k; done += w) {
			w = write(fd, p + off + done, k - done);
			if (w <= 0) {
				perror("http_client: write");
				exit(1);
			}
			t->out += w;
		}
	}
}

/* Buffered reader over the connection, counting every byte read. */
struct rd {
	int fd;
	char buf[65536];
	size_t len, pos;
	struct tally *t;
};

static int fill(struct rd *r)
{
	ssize_t n;

	if (r->pos == r->len)
		r->pos = r->len = 0;
	n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
	if (n > 0) {
		r->len += n;
		r->t->in += n;
	}
	return n > 0;
}

/* One line (up to CRLF) into @line; 0 at EOF. */
static int getline_crlf(struct rd *r, char *line, size_t max)
{
	size_t n = 0;

	for (;;) {
		while (r->pos < r->len) {
			char c = r->buf[r->pos++];

			if (n + 1 < max)
				line[n++] = c;
			if (c == '\n') {
				line[n] = '\0';
				return 1;
			}
		}
		if (!fill(r))
			return 0;
	}
}

static int skip(struct rd *r, unsigned long n)
{
	while (n) {
		size_t have = r->len - r->pos;

		if (!have && !fill(r))
			return 0;
		have = r->len - r->pos;
		if (have > n)
			have = n;
		r->pos += have;
		n -= have;
	}
	return 1;
}

static int read_response(struct rd *r)
{
	char line[8192];
	long clen = -1;
	int status, chunked = 0;

	if (!getline_crlf(r, line, sizeof(line)) || sscanf(line, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	while (getline_crlf(r, line, sizeof(line)) && strcmp(line, "\r\n") && strcmp(line, "\n")) {
		if (!strncasecmp(line, "content-length:", 15))
			clen = strtol(line + 15, NULL, 10);
		else if (!strncasecmp(line, "transfer-encoding:", 18) && strstr(line, "chunked"))
			chunked = 1;
	}
	if (chunked) {
		unsigned long size;

		do {
			if (!getline_crlf(r, line, sizeof(line)))
				return -1;
			size = strtoul(line, NULL, 16);
			if (!skip(r, size) || !getline_crlf(r, line, sizeof(line)))
				return -1;
		} while (size);
	} else if (clen >= 0) {
		if (!skip(r, clen))
			return -1;
	} else {
		while (fill(r)) /* close-delimited */
			r->pos = r->len;
		r->pos = r->len;
	}
	return status;
}

int main(int argc, char **argv)
{
	static struct tally t;
	static struct rd r;
	int opt, pieces = 1, close_each = 0, http10 = 0, port, fd = -1, i, status;
	char req[2048];
	const char *host;

	while ((opt = getopt(argc, argv, "kc0p:")) != -1) {
		switch (opt) {
		case 'k': close_each = 0; break;
		case 'c': close_each = 1; break;
		case '0': close_each = http10 = 1; break;
		case 'p': pieces = atoi(optarg) > 0 ? atoi(optarg) : 1; break;
		default:
			fprintf(stderr,
				"usage: http_client [-k|-c|-0] [-p PIECES] HOST PORT PATH...\n");
			return 2;
		}
	}
	if (argc - optind < 3) {
		fprintf(stderr, "usage: http_client [-k|-c|-0] [-p PIECES] HOST PORT PATH...\n");
		return 2;
	}
	host = argv[optind];
	port = atoi(argv[optind + 1]);
	for (i = optind + 2; i < argc; i++) {
		int n = snprintf(
			req, sizeof(req),
			"GET %s HTTP/1.%d\r\nHost: %s\r\nUser-Agent: tapir-matrix\r\n%s\r\n",
			argv[i], !http10, host,
			http10	     ? "Accept-Encoding: gzip\r\n"
			: close_each ? "Connection: close\r\n"
				     : "");

		if (fd < 0) {
			fd = dial(host, port);
			r.fd = fd;
			r.len = r.pos = 0;
			r.t = &t;
		}
		send_all(fd, req, n, pieces, &t);
		status = read_response(&r);
		if (status < 100 || status >= 600) {
			fprintf(stderr, "http_client: no response to %s\n", argv[i]);
			return 1;
		}
		t.requests++;
		t.status[status]++;
		if (close_each) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	printf("requests=%lu bytes_out=%lu bytes_in=%lu", t.requests, t.out, t.in);
	for (i = 100; i < 600; i++)
		if (t.status[i])
			printf(" status_%d=%lu", i, t.status[i]);
	printf("\n");
	return 0;
}
