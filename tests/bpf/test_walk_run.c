// SPDX-License-Identifier: GPL-2.0
/* The walk and driver as the kernel runs them (BPF_PROG_TEST_RUN) equal the same code in C. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <linux/types.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "tapir/http.h"
#include "walk_run.h"

static struct walk_run nat; /* the native run's state, as the BPF one's */

static inline void tapir_conn_stat(void *env, __u32 idx)
{
	nat.stats[idx]++;
}

static inline void tapir_conn_record(void *env, struct tapir_conn *c, __u32 slot, __u8 outcome,
				     __u16 status, __u64 now)
{
	struct walk_run_rec *r;

	if (nat.n_rec >= WALK_RUN_MAX_REC)
		return;
	r = &nat.rec[nat.n_rec++];
	r->status = status;
	r->outcome = outcome;
	r->method = c->method[slot];
	r->req_bytes = c->req_bytes[slot];
	r->resp_bytes = c->resp_bytes;
	r->end_ns = now;
}

static inline int tapir_walk_read(void *env, void *dst, __u32 n, __u64 src)
{
	memcpy(dst, (const void *)(uintptr_t)src, n);
	return 0;
}

#define TAPIR_CONN_ENV void
#include "tapir/walk.h"

#include "walk_run.skel.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct walk_run_bpf *skel;

/* The same syscalls natively, as walk_run.bpf.c's step() takes them. */
static void run_native(void)
{
	struct tapir_conn_key key = { 13 };
	struct tapir_walk w;
	__u32 k;

	nat.n_rec = 0;
	for (k = 0; k < nat.n_io; k++) {
		const struct walk_run_io *io = &nat.io[k];

		if (nat.conn.state >= TAPIR_CONN_IGNORED)
			continue;
		tapir_walk_begin(&w, &key, TAPIR_IO_PLAIN, io->dir, (uintptr_t)&nat.data[io->off],
				 0, io->len, 10 * k, 10 * k + 1);
		while (!tapir_walk_step(NULL, &w, &nat.conn))
			nat.steps++;
		nat.steps++;
	}
}

static void run_bpf(void)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	memcpy(&skel->bss->run, &nat, sizeof(nat));
	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.walk_run), &opts), 0);
}

/* Describe a conversation: each message is one syscall, or two when split at @cut. */
static void conversation(const char *const (*msgs)[2], size_t n, size_t which, size_t cut)
{
	size_t i, d, len, off = 0;

	memset(&nat, 0, sizeof(nat));
	tapir_http_init(&nat.conn.req, TP_KIND_REQUEST);
	tapir_http_init(&nat.conn.resp, TP_KIND_RESPONSE);
	for (i = 0; i < n; i++) {
		for (d = 0; d < 2; d++) {
			len = strlen(msgs[i][d]);
			assert_true(off + len <= WALK_RUN_DATA && nat.n_io + 2 <= WALK_RUN_MAX_IO);
			memcpy(&nat.data[off], msgs[i][d], len);
			if (i == which && cut && cut < len) {
				nat.io[nat.n_io++] = (struct walk_run_io){ off, cut, d, 0 };
				nat.io[nat.n_io++] =
					(struct walk_run_io){ off + cut, len - cut, d, 0 };
			} else {
				nat.io[nat.n_io++] = (struct walk_run_io){ off, len, d, 0 };
			}
			off += len;
		}
	}
}

static void compare(void)
{
	const struct walk_run *k = &skel->bss->run;
	__u32 i;

	assert_int_equal(k->n_rec, nat.n_rec);
	for (i = 0; i < nat.n_rec; i++) {
		assert_int_equal(k->rec[i].status, nat.rec[i].status);
		assert_int_equal(k->rec[i].outcome, nat.rec[i].outcome);
		assert_int_equal(k->rec[i].method, nat.rec[i].method);
		assert_int_equal(k->rec[i].req_bytes, nat.rec[i].req_bytes);
		assert_int_equal(k->rec[i].resp_bytes, nat.rec[i].resp_bytes);
		assert_int_equal(k->rec[i].end_ns, nat.rec[i].end_ns);
	}
	for (i = 0; i < TAPIR_STAT_MAX; i++)
		assert_int_equal(k->stats[i], nat.stats[i]);
	assert_int_equal(k->steps, nat.steps);
	assert_memory_equal(&k->conn, &nat.conn, sizeof(nat.conn));
}

static const char *const talk[][2] = {
	{ "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" },
	{ "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	  "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n" },
	{ "HEAD /h HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n" },
	{ "POST /c HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
	  "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "3\r\nabc\r\n0\r\n\r\n" },
	{ "GET /p1 HTTP/1.1\r\n\r\nGET /p2 HTTP/1.1\r\n\r\n",
	  "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n" },
	{ "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	  "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n\x81\x02hi" },
};

static void test_conversation_every_split(void **state)
{
	size_t which, cut;

	conversation(talk, ARRAY_SIZE(talk), ~(size_t)0, 0);
	run_bpf(); /* first: it starts from the fresh connection nat still holds */
	run_native();
	compare();
	assert_int_equal(nat.n_rec, 7);
	assert_int_equal(nat.rec[6].outcome, TAPIR_OUT_UPGRADED);
	for (which = 0; which < ARRAY_SIZE(talk); which++)
		for (cut = 1; cut < 90; cut += 3) {
			conversation(talk, ARRAY_SIZE(talk), which, cut);
			run_bpf();
			run_native();
			compare();
		}
}

static void test_ambiguous_and_hostile(void **state)
{
	static const char *const smuggle[][2] = {
		{ "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
		  "GET /x HTTP/1.1\r\n\r\n",
		  "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" },
	};
	static const char *const junk[][2] = {
		{ "GET / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n" },
	};

	conversation(smuggle, 1, ~(size_t)0, 0);
	run_bpf();
	run_native();
	compare();
	assert_int_equal(nat.stats[TAPIR_STAT_AMBIGUOUS_REQUEST], 1);
	conversation(junk, 1, ~(size_t)0, 0);
	run_bpf();
	run_native();
	compare();
	assert_int_equal(nat.stats[TAPIR_STAT_PARSE_REQUEST], 1);
}

static int setup(void **state)
{
	if (geteuid() != 0 || libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SYSCALL, NULL) != 1) {
		printf("skipped: needs root and BPF_PROG_TYPE_SYSCALL (5.14+)\n");
		return 0;
	}
	skel = walk_run_bpf__open_and_load();
	return skel ? 0 : -1;
}

static int teardown(void **state)
{
	walk_run_bpf__destroy(skel);
	return 0;
}

#define SKIPPABLE(fn)                      \
	static void fn##_run(void **state) \
	{                                  \
		if (!skel)                 \
			skip();            \
		fn(state);                 \
	}
SKIPPABLE(test_conversation_every_split)
SKIPPABLE(test_ambiguous_and_hostile)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conversation_every_split_run),
		cmocka_unit_test(test_ambiguous_and_hostile_run),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
