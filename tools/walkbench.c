// SPDX-License-Identifier: GPL-2.0
/*
 * walkbench [-p PAIRS] [-r RUNS] [-e KIB] [-s STRIDE]: the walk and connection driver as the
 * kernel runs them (tests/bpf/walk_run.bpf.c, BPF_PROG_TEST_RUN) over a wrk request and
 * nginx's answer of a 1 KiB file, PAIRS of them per run on one keep-alive connection: the
 * nanoseconds per request, best of 5 batches of RUNS, less an empty run's. -e touches KIB of
 * memory every STRIDE bytes (default 64) before each run: -e 1024 leaves the caches cold,
 * -e 65536 -s 4096 the TLB too. What the walk costs apart from the hooks, the reads of the
 * process's memory and the aggregate.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tapir/http.h"
#include "walk_run.h"

/* The skeleton names the walk's own type: these make it whole; nothing here calls them. */
static inline void tapir_conn_stat(void *env, __u32 idx)
{
}

static inline void tapir_conn_record(void *env, struct tapir_conn *c, __u32 slot, __u8 outcome,
				     __u16 status, __u64 now)
{
}

static inline int tapir_walk_read(void *env, void *dst, __u32 n, __u64 src)
{
	return -1;
}

#define TAPIR_CONN_ENV void
#include "tapir/walk.h"

#include "walk_run.skel.h"

static const char request[] = "GET /static.txt HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n";
/* nginx 1.22's answer head (239 bytes), then its 1 KiB body. */
static const char answer[] =
	"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n"
	"Date: Sun, 06 Dec 2026 17:58:07 GMT\r\nContent-Type: text/plain\r\n"
	"Content-Length: 1024\r\nLast-Modified: Sun, 06 Dec 2026 09:12:47 GMT\r\n"
	"Connection: keep-alive\r\nETag: \"6b15270f-400\"\r\n"
	"Accept-Ranges: bytes\r\n\r\n";

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

/* The best mean time of a run over 5 batches of @runs, each run walking @pairs pairs. */
static double best_run(struct walk_run_bpf *skel, struct walk_run *in, unsigned pairs,
		       unsigned runs, volatile char *junk, size_t junk_len, size_t stride)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	size_t rl = sizeof(request) - 1, al = sizeof(answer) - 1 + 1024, z;
	double best = 1e18, t0, t;
	unsigned b, r, i;

	for (b = 0; b < 5; b++) {
		memset(&in->conn, 0, sizeof(in->conn));
		tapir_http_init(&in->conn.req, TP_KIND_REQUEST);
		tapir_http_init(&in->conn.resp, TP_KIND_RESPONSE);
		in->n_io = 0;
		for (i = 0; i < pairs; i++) {
			in->io[in->n_io++] = (struct walk_run_io){ 0, rl, TAPIR_DIR_IN, 0 };
			in->io[in->n_io++] = (struct walk_run_io){ rl, al, TAPIR_DIR_OUT, 0 };
		}
		memcpy(&skel->bss->run, in, sizeof(*in));
		t = 0;
		for (r = 0; r < runs; r++) {
			for (z = 0; z < junk_len; z += stride)
				junk[z]++;
			skel->bss->run.n_rec = 0; /* the connection goes on from run to run */
			t0 = now_ns();
			if (bpf_prog_test_run_opts(bpf_program__fd(skel->progs.walk_run), &opts)) {
				fprintf(stderr, "walkbench: test run: %s\n", strerror(errno));
				exit(1);
			}
			t += now_ns() - t0;
		}
		if (t / runs < best)
			best = t / runs;
	}
	if (pairs && skel->bss->run.n_rec != pairs) {
		fprintf(stderr, "walkbench: %u answers of %u\n", skel->bss->run.n_rec, pairs);
		exit(1);
	}
	return best;
}

int main(int argc, char **argv)
{
	unsigned pairs = 16, runs = 20000;
	size_t junk_len = 0, stride = 64;
	static struct walk_run in;
	struct walk_run_bpf *skel;
	volatile char *junk = NULL;
	double base, walked;
	int opt;

	while ((opt = getopt(argc, argv, "p:r:e:s:")) != -1) {
		switch (opt) {
		case 'p': pairs = atoi(optarg); break;
		case 'r': runs = atoi(optarg); break;
		case 'e': junk_len = (size_t)atol(optarg) << 10; break;
		case 's': stride = atol(optarg); break;
		default:
			fprintf(stderr,
				"usage: walkbench [-p PAIRS] [-r RUNS] [-e KIB] [-s STRIDE]\n");
			return 2;
		}
	}
	if (pairs < 1 || pairs > WALK_RUN_MAX_IO / 2 || pairs > WALK_RUN_MAX_REC || runs < 1 ||
	    stride < 1) {
		fprintf(stderr, "walkbench: 1 to %d pairs, 1 run and a stride of 1 at least\n",
			WALK_RUN_MAX_REC);
		return 2;
	}
	if (junk_len && !(junk = calloc(1, junk_len)))
		return 1;
	memcpy(in.data, request, sizeof(request) - 1);
	memcpy(in.data + sizeof(request) - 1, answer, sizeof(answer) - 1);
	memset(in.data + sizeof(request) - 1 + sizeof(answer) - 1, 'x', 1024);
	skel = walk_run_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "walkbench: cannot load walk_run: %s\n", strerror(errno));
		return 1;
	}
	base = best_run(skel, &in, 0, runs, junk, junk_len, stride);
	walked = best_run(skel, &in, pairs, runs, junk, junk_len, stride);
	printf("%.1f ns per request (its answer included): %u pairs a run, %.0f ns a run, "
	       "%.0f ns an empty one\n",
	       (walked - base) / pairs, pairs, walked, base);
	walk_run_bpf__destroy(skel);
	return 0;
}
