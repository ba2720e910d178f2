// SPDX-License-Identifier: GPL-2.0
/* The HTTP/2 frame walker as the kernel runs it (BPF_PROG_TEST_RUN) equals the same code in C. */
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

#define H2_RUN_READ(dst, n, src) memcpy(dst, src, n)
#include "h2_run.h"
#include "h2_talk.h"

#include "h2_run.skel.h"

static struct h2_run_bpf *skel;
static struct h2_run nat; /* the native run, and what both start from */

/* Set up a walk of @len bytes of @p cut before each of @cuts. */
static void describe(const uint8_t *p, size_t len, const size_t *cuts, size_t ncuts, int client,
		     __u32 max_frame, int wide)
{
	size_t i;

	assert_true(len <= H2_RUN_DATA && ncuts < H2_RUN_MAX_SEG);
	memset(&nat, 0, offsetof(struct h2_run, data));
	memcpy(nat.data, p, len);
	for (i = 0; i < ncuts; i++)
		nat.seg_end[i] = (__u32)cuts[i];
	nat.seg_end[ncuts] = (__u32)len;
	nat.nseg = (__u32)ncuts + 1;
	nat.wide = wide;
	tapir_h2_init(&nat.w, client ? 0 : TH2_PREFACE_LEN, max_frame);
}

/* Run it in the kernel, then natively, and compare. */
static void run_both(void)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts);
	const struct h2_run *k = &skel->bss->run;
	size_t i;

	memcpy(&skel->bss->run, &nat, sizeof(nat));
	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(skel->progs.h2_run), &opts), 0);
	while (!h2_run_step(&nat))
		;
	for (i = 0; i < H2_RUN_MAX_LOG && i < nat.steps; i++)
		if (memcmp(&k->log[i], &nat.log[i], sizeof(nat.log[i])))
			fail_msg("step %zu: kernel n=%u kind=%u, native n=%u kind=%u", i,
				 k->log[i].n, k->log[i].ev.kind, nat.log[i].n, nat.log[i].ev.kind);
	assert_int_equal(k->steps, nat.steps);
	assert_int_equal(k->hash, nat.hash);
	assert_int_equal(k->stop, nat.stop);
	assert_memory_equal(&k->w, &nat.w, sizeof(nat.w));
}

static void test_conversation_cuts(void **state)
{
	static size_t cuts[H2_RUN_MAX_SEG];
	uint64_t x = 0x2545f4914f6cdd1dULL;
	struct talk t;
	int pad, dir, r;
	size_t c, len;

	for (pad = 0; pad < 2; pad++) {
		talk_grpc(&t, pad);
		for (dir = 0; dir < 2; dir++) {
			const struct talk_dir *d = &t.dir[dir];

			len = d->bytes.len;
			describe(d->bytes.p, len, NULL, 0, !dir, 65536, 0);
			run_both();
			assert_int_equal(nat.stop, len);
			assert_int_equal(nat.w.state, TH2_S_HEADER);
			describe(d->bytes.p, len, d->chunk_end, d->nchunks - 1, !dir, 65536, 1);
			run_both();
			/* Every cut through the first 400 bytes: preface, SETTINGS, padded and
			 * prioritized HEADERS; then cuts anywhere. */
			for (c = 1; c < 400; c++) {
				describe(d->bytes.p, len, &c, 1, !dir, 65536, c & 1);
				run_both();
			}
			for (r = 0; r < 200; r++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				c = 1 + x % (len - 1);
				describe(d->bytes.p, len, &c, 1, !dir, 65536, r & 1);
				run_both();
			}
			/* Byte by byte as far as the segment table goes. */
			for (c = 1; c < H2_RUN_MAX_SEG; c++)
				cuts[c - 1] = c;
			describe(d->bytes.p, len, cuts, H2_RUN_MAX_SEG - 1, !dir, 65536, 0);
			run_both();
			assert_int_equal(nat.stop, len);
		}
		talk_free(&t);
	}
}

static void test_errors(void **state)
{
	static const char get[] = "GET / HTTP/1.1\r\n\r\n";
	struct talk t;

	talk_grpc(&t, 1);
	/* The server's 64 KiB frames without the client's SETTINGS: TH2_ERR_LENGTH. */
	describe(t.dir[1].bytes.p, t.dir[1].bytes.len, NULL, 0, 0, TH2_MAX_FRAME_DEFAULT, 0);
	run_both();
	assert_int_equal(nat.w.error, TH2_ERR_LENGTH);
	/* HTTP/1.1 where the preface should be. */
	describe((const uint8_t *)get, sizeof(get) - 1, NULL, 0, 1, 0, 0);
	run_both();
	assert_int_equal(nat.w.error, TH2_ERR_PREFACE);
	assert_int_equal(nat.stop, 1);
	talk_free(&t);
}

static int setup(void **state)
{
	if (geteuid() != 0 || libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SYSCALL, NULL) != 1) {
		printf("skipped: needs root and BPF_PROG_TYPE_SYSCALL (5.14+)\n");
		return 0;
	}
	skel = h2_run_bpf__open_and_load();
	return skel ? 0 : -1;
}

static int teardown(void **state)
{
	h2_run_bpf__destroy(skel);
	return 0;
}

#define SKIPPABLE(fn)                      \
	static void fn##_run(void **state) \
	{                                  \
		if (!skel)                 \
			skip();            \
		fn(state);                 \
	}
SKIPPABLE(test_conversation_cuts)
SKIPPABLE(test_errors)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conversation_cuts_run),
		cmocka_unit_test(test_errors_run),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
