// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: llm_track.c, which puts the kernel's LLM payload pieces back together and feeds
 * the token parsers (llm.c). The input is a program run on eight requests, two on each of four
 * connections: reads and writes handed in pieces as bpf/http.bpf.c hands them, bytes lost,
 * request records, expiry, the clock; and pieces and records whose every field is the input's.
 * Every result must be consistent, every record must report exactly one, the requests in flight
 * must add up; and when the program has only kernel-shaped pieces, handing each piece cut in two
 * must give the very same results. Any difference, and any sanitizer report (LeakSanitizer
 * included), is a finding.
 *
 * Byte 0 is also the first operation's: its bit 0 picks request_head_bytes (16384, else 64),
 * bit 1 whether what is left in flight at the end expires or is freed. Operations: a byte whose
 * value mod OPS picks one, then its arguments (a length is two bytes, big-endian):
 *   READ  slot len[2] data	request bytes (TAPIR_DIR_IN), len cut to what the input has
 *   WRITE slot len[2] data	answer bytes (TAPIR_DIR_OUT), likewise
 *   FILL  slot dir len[2] byte	len % FILL_MAX bytes of byte (heads past 16 KiB, reads and writes
 *				past TAPIR_LLM_CHUNK)
 *   LOSE  slot dir n		n bytes lost (n << 8 when slot has bit 7)
 *   RECORD slot how tail	the request's record: outcome how & 3, a status by how >> 2, tail
 *				answer bytes never handed; the slot's next request starts
 *   EXPIRE now idle		expiry now seconds after the clock (before it when odd), idle
 *				seconds
 *   TICK  s			the clock moves s seconds (every operation moves it 1 ms)
 *   CHUNK who len[2] bytes	a piece of len bytes, header and all (sock and id of slot who & 7
 *				when who < 16)
 *   EVENT who bytes[112]	a request record as is (sock and llm_id of slot who, likewise)
 * tests/fuzz/corpus/fuzz_llm_track/ holds real exchanges (vLLM, Anthropic, TGI) so written.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm_track.h"
#include "tapir/http.h"

#define SLOTS	  8
#define FILL_MAX  40000	    /* bytes of one FILL: past HEAD_MAX and TAPIR_LLM_CHUNK */
#define BYTES_MAX (4 << 20) /* bytes handed per run: a bound on its time */
#define SEC	  1000000000ULL

enum { READ, WRITE, FILL, LOSE, RECORD, EXPIRE, TICK, CHUNK, EVENT, OPS };

/* One request as the kernel sees it. */
struct slot {
	uint64_t sock, start_ns;
	uint32_t id, labels_id, off[2];
	uint8_t api;
};

struct got {
	uint32_t labels_id;
	uint64_t cgroup_id;
	struct tapir_llm_result res;
};

struct run {
	struct tapir_llm_track *t;
	struct slot slot[SLOTS];
	uint64_t clock;
	size_t bytes, cuts;
	bool split, raw;
	struct got *got;
	size_t n_got, cap;
};

/* The input, read from the front. */
struct in {
	const uint8_t *p;
	size_t left;
};

static unsigned int byte(struct in *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static size_t len16(struct in *in)
{
	size_t n = byte(in) << 8;

	n |= byte(in);
	return n < in->left ? n : in->left;
}

static const uint8_t *take(struct in *in, size_t n)
{
	const uint8_t *p = in->p;

	in->p += n;
	in->left -= n;
	return p;
}

#define KNOWN (TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT | TAPIR_LLM_CACHED | TAPIR_LLM_ESTIMATED)

static void on_done(void *ctx, uint32_t labels_id, uint64_t cgroup_id,
		    const struct tapir_llm_result *r)
{
	struct run *run = ctx;
	struct got *g;

	if ((r->flags & TAPIR_LLM_UNPARSED) && (r->flags & (KNOWN | TAPIR_LLM_EXACT)))
		abort();
	if (!(r->flags & TAPIR_LLM_UNPARSED) != (r->unparsed == TAPIR_LLM_PARSED))
		abort();
	if (r->unparsed >= TAPIR_LLM_UNPARSED_REASONS)
		abort();
	if ((r->flags & TAPIR_LLM_EXACT) && (r->flags & (TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT)) !=
						    (TAPIR_LLM_INPUT | TAPIR_LLM_OUTPUT))
		abort();
	if ((r->flags & TAPIR_LLM_CUT) && !(r->flags & TAPIR_LLM_ERROR))
		abort();
	if (r->stream < -1 || r->stream > 1 || r->include_usage < -1 || r->include_usage > 1)
		abort();
	if (!(r->tokens_per_s >= 0) || !(r->gap_sum_s >= 0))
		abort();
	if (run->n_got == run->cap) {
		run->cap = run->cap ? 2 * run->cap : 64;
		run->got = realloc(run->got, run->cap * sizeof(*run->got));
		if (!run->got)
			abort();
	}
	g = &run->got[run->n_got++];
	memset(g, 0, sizeof(*g));
	g->labels_id = labels_id;
	g->cgroup_id = cgroup_id;
	memcpy(&g->res, r, sizeof(*r));
}

/* A head is handed over whole: NUL-terminated after its blank line (LF, or CR LF, after a LF). */
static int on_head(void *ctx, uint32_t labels_id, uint64_t cgroup_id, uint64_t start_ns,
		   const char *head, size_t len)
{
	if (head[len] || len < 2 || head[len - 1] != '\n' ||
	    (head[len - 2] != '\n' && (len < 3 || memcmp(head + len - 3, "\n\r\n", 3))))
		abort();
	return (int)len;
}

static void tally(void *ctx, uint32_t labels_id, uint64_t cgroup_id)
{
	(*(size_t *)ctx)++;
}

static void slot_start(struct run *run, unsigned int s, uint64_t now)
{
	struct slot *sl = &run->slot[s];

	sl->start_ns = now;
	sl->off[0] = sl->off[1] = 0;
	sl->id += 2;
	sl->api = sl->api % TAPIR_LLM_TGI_STREAM + 1;
}

static void piece(struct run *run, struct slot *sl, uint8_t dir, const uint8_t *data, uint32_t n)
{
	struct tapir_llm_chunk *c = malloc(sizeof(*c) + n);

	if (!c)
		abort();
	*c = (struct tapir_llm_chunk){
		.type = TAPIR_REC_LLM,
		.id = sl->id,
		.sock = sl->sock,
		.cgroup_id = 0x100 + sl->labels_id,
		.start_ns = sl->start_ns,
		.ts = run->clock,
		.off = sl->off[dir],
		.len = n,
		.labels_id = sl->labels_id,
		.dir = dir,
		.api = sl->api,
	};
	memcpy(c + 1, data, n);
	/* Kernel-shaped: never refused. */
	if (tapir_llm_track__chunk(run->t, c, sizeof(*c) + n))
		abort();
	free(c);
	sl->off[dir] = (uint64_t)sl->off[dir] + n > UINT32_MAX ? UINT32_MAX : sl->off[dir] + n;
}

/* A read or write: pieces of TAPIR_LLM_CHUNK at most, each cut in two in the split run. */
static void move(struct run *run, unsigned int s, uint8_t dir, const uint8_t *data, size_t n)
{
	struct slot *sl = &run->slot[s & (SLOTS - 1)];
	size_t k, at;

	if (run->bytes + n > BYTES_MAX)
		return;
	run->bytes += n;
	for (at = 0; at < n; at += k) {
		k = n - at < TAPIR_LLM_CHUNK ? n - at : TAPIR_LLM_CHUNK;
		if (run->split && k > 1) {
			size_t cut = 1 + (run->cuts++ * 2654435761u) % (k - 1);

			piece(run, sl, dir, data + at, cut);
			piece(run, sl, dir, data + at + cut, k - cut);
		} else {
			piece(run, sl, dir, data + at, k);
		}
	}
}

/* LLM requests in flight (head-only ones are followed too, but give no result). */
static size_t llm_in_flight(struct run *run)
{
	size_t n = 0;

	tapir_llm_track__each(run->t, tally, &n);
	return n;
}

static void record(struct run *run, struct tapir_http_event *e)
{
	size_t before = tapir_llm_track__in_flight(run->t), llm = llm_in_flight(run);
	size_t n_got = run->n_got, after;

	tapir_llm_track__record(run->t, e, true);
	after = tapir_llm_track__in_flight(run->t);
	if (after + 1 < before || after > before)
		abort();
	/* One result, unless a head-only request ended (silently). */
	if (run->n_got != n_got + (after < before && llm_in_flight(run) == llm ? 0 : 1))
		abort();
}

static void expire(struct run *run, uint64_t now, uint64_t idle)
{
	size_t llm = llm_in_flight(run), n_got = run->n_got;

	tapir_llm_track__expire(run->t, now, idle, NULL, NULL);
	if (run->n_got - n_got != llm - llm_in_flight(run))
		abort();
}

static void step(struct run *run, struct in *in)
{
	static const uint16_t status[] = { 0, 100, 200, 429, 500, 502 };
	unsigned int op = byte(in) % OPS, s, a, b;
	struct tapir_http_event e;
	struct slot *sl;
	uint8_t *buf;
	size_t n;

	run->clock += 1000000; /* a millisecond an operation */
	switch (op) {
	case READ:
	case WRITE:
		s = byte(in);
		n = len16(in);
		move(run, s, op == READ ? TAPIR_DIR_IN : TAPIR_DIR_OUT, take(in, n), n);
		return;
	case FILL:
		s = byte(in);
		a = byte(in) & 1;
		n = byte(in) << 8;
		n = (n | byte(in)) % FILL_MAX;
		b = byte(in);
		buf = malloc(n + 1);
		if (!buf)
			abort();
		memset(buf, b, n);
		move(run, s, a, buf, n);
		free(buf);
		return;
	case LOSE:
		s = byte(in);
		a = byte(in) & 1;
		n = byte(in) << (s & 0x80 ? 8 : 0);
		sl = &run->slot[s & (SLOTS - 1)];
		sl->off[a] = (uint64_t)sl->off[a] + n > UINT32_MAX ? UINT32_MAX : sl->off[a] + n;
		return;
	case RECORD:
		s = byte(in) & (SLOTS - 1);
		a = byte(in);
		sl = &run->slot[s];
		e = (struct tapir_http_event){
			.type = TAPIR_REC_HTTP,
			.labels_id = sl->labels_id,
			.cgroup_id = 0x100 + sl->labels_id,
			.start_ns = sl->start_ns,
			.end_ns = run->clock,
			.status = status[(a >> 2) % 6],
			.method = TP_M_POST,
			.outcome = a & 3,
			.sock = sl->sock,
			.llm_id = sl->id,
			.llm_out = sl->off[TAPIR_DIR_OUT] + byte(in),
		};
		record(run, &e);
		slot_start(run, s, run->clock);
		return;
	case EXPIRE:
		a = byte(in);
		b = byte(in);
		expire(run, run->clock + a * SEC - (a & 1 ? 2 * a * SEC : 0), b * SEC);
		return;
	case TICK: run->clock += byte(in) * SEC; return;
	case CHUNK: {
		struct tapir_llm_chunk *c;

		s = byte(in);
		n = len16(in);
		c = calloc(1, n > sizeof(*c) ? n : sizeof(*c));
		if (!c)
			abort();
		memcpy(c, take(in, n), n);
		if (s < 16 && n >= sizeof(*c)) {
			c->sock = run->slot[s & (SLOTS - 1)].sock;
			c->id = run->slot[s & (SLOTS - 1)].id;
		}
		tapir_llm_track__chunk(run->t, c, n);
		free(c);
		run->raw = true;
		return;
	}
	case EVENT:
		s = byte(in);
		memset(&e, 0, sizeof(e));
		n = in->left < sizeof(e) ? in->left : sizeof(e);
		memcpy(&e, take(in, n), n);
		if (s < 16) {
			e.sock = run->slot[s & (SLOTS - 1)].sock;
			e.llm_id = run->slot[s & (SLOTS - 1)].id;
		}
		record(run, &e);
		run->raw = true;
		return;
	}
}

static void run_program(struct run *run, const uint8_t *data, size_t size, bool split)
{
	struct in in = { data, size };
	size_t i, n;

	memset(run, 0, sizeof(*run));
	run->split = split;
	run->clock = 1000 * SEC;
	for (i = 0; i < SLOTS; i++) {
		run->slot[i].sock = 0xffff888000000000ULL + (i & 3) * 0x800;
		run->slot[i].id = i >> 2 ? 0 : UINT32_MAX; /* the first slot_start makes 2 and 1 */
		run->slot[i].labels_id = i % 3 + 1;
		run->slot[i].api = i % TAPIR_LLM_TGI_STREAM;
		slot_start(run, i, run->clock);
	}
	run->t = tapir_llm_track__new(data[0] & 1 ? 16384 : 64, on_done, on_head, run);
	if (!run->t)
		abort();
	while (in.left) {
		step(run, &in);
		n = 0;
		tapir_llm_track__each(run->t, tally, &n);
		/* Raw pieces may be head-only (TAPIR_API_HEAD): followed, not LLM requests. */
		if (run->raw ? n > tapir_llm_track__in_flight(run->t)
			     : n != tapir_llm_track__in_flight(run->t))
			abort();
	}
	/* Whatever is left goes, each reported once; or it is freed in flight. */
	if (data[0] & 2) {
		expire(run, UINT64_MAX, 0);
		if (tapir_llm_track__in_flight(run->t))
			abort();
	}
	tapir_llm_track__free(run->t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run whole, split;
	size_t i;

	if (!size)
		return 0;
	run_program(&whole, data, size, false);
	run_program(&split, data, size, true);
	if (!whole.raw) {
		if (whole.n_got != split.n_got)
			abort();
		for (i = 0; i < whole.n_got; i++)
			if (memcmp(&whole.got[i], &split.got[i], sizeof(whole.got[i])))
				abort();
	}
	free(whole.got);
	free(split.got);
	return 0;
}
