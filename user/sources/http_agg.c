// SPDX-License-Identifier: GPL-2.0
/* Reads the kernel's per-series aggregates and hands the daemon what each gained since last time. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "http_agg.h"

#define AGG_WORDS (sizeof(struct tapir_agg) / sizeof(__u64))

/*
 * The kernel never resets a series (a reset would race with a CPU adding to it), so the reader
 * keeps each one's totals as of the last read: an open-addressing table by key.
 */
struct seen {
	struct tapir_agg_key key;
	struct tapir_agg total;
	uint8_t used;
	uint8_t live; /* found in this read */
};

struct tapir_http_agg {
	int fd, ncpus;
	struct seen *t;
	size_t n, used;
	struct tapir_agg *percpu; /* one lookup's values */
};

_Static_assert(sizeof(struct tapir_agg) % sizeof(__u64) == 0, "whole words, per CPU as well");

void tapir_agg_sum(struct tapir_agg *sum, const struct tapir_agg *percpu, int ncpus)
{
	__u64 *s = (__u64 *)sum;
	const __u64 *v;
	size_t w;
	int c;

	memset(sum, 0, sizeof(*sum));
	for (c = 0; c < ncpus; c++) {
		v = (const __u64 *)&percpu[c];
		for (w = 0; w < AGG_WORDS; w++)
			s[w] += v[w];
	}
	/* Not a sum: the latest of the CPUs'. */
	sum->last_ns = 0;
	for (c = 0; c < ncpus; c++)
		if (percpu[c].last_ns > sum->last_ns)
			sum->last_ns = percpu[c].last_ns;
}

int tapir_agg_delta(struct tapir_agg *delta, const struct tapir_agg *now,
		    const struct tapir_agg *before)
{
	const __u64 *n = (const __u64 *)now, *b = (const __u64 *)before;
	__u64 *d = (__u64 *)delta;
	int grew = 0;
	size_t w;

	/* Each word only grows in the kernel, and is read whole: never below the last read. */
	for (w = 0; w < AGG_WORDS; w++) {
		d[w] = n[w] >= b[w] ? n[w] - b[w] : 0;
		grew |= d[w] != 0;
	}
	delta->last_ns = now->last_ns;
	return grew;
}

struct tapir_http_agg *tapir_http_agg__new(int fd, int ncpus)
{
	struct tapir_http_agg *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->fd = fd;
	a->ncpus = ncpus > 0 ? ncpus : 1;
	a->n = 64;
	a->t = calloc(a->n, sizeof(*a->t));
	a->percpu = calloc(a->ncpus, sizeof(*a->percpu));
	if (!a->t || !a->percpu) {
		tapir_http_agg__free(a);
		errno = ENOMEM;
		return NULL;
	}
	return a;
}

void tapir_http_agg__free(struct tapir_http_agg *a)
{
	if (!a)
		return;
	free(a->t);
	free(a->percpu);
	free(a);
}

static size_t slot_of(const struct tapir_agg_key *k, size_t n)
{
	uint64_t h = k->cgroup_id * 0x9e3779b97f4a7c15ULL;

	h ^= ((uint64_t)k->labels_id << 16 | k->status) * 0xc2b2ae3d27d4eb4fULL;
	return (h >> 29) & (n - 1);
}

static struct seen *probe(struct seen *t, size_t n, const struct tapir_agg_key *k)
{
	size_t i = slot_of(k, n);

	for (;; i = (i + 1) & (n - 1))
		if (!t[i].used || !memcmp(&t[i].key, k, sizeof(*k)))
			return &t[i];
}

/* Rebuild the table at @n slots; @live_only: keep only the series found by the last read. */
static int rehash(struct tapir_http_agg *a, size_t n, int live_only)
{
	struct seen *t = calloc(n, sizeof(*t)), *s;
	size_t i;

	if (!t)
		return -ENOMEM;
	a->used = 0;
	for (i = 0; i < a->n; i++) {
		if (!a->t[i].used || (live_only && !a->t[i].live))
			continue;
		s = probe(t, n, &a->t[i].key);
		*s = a->t[i];
		a->used++;
	}
	free(a->t);
	a->t = t;
	a->n = n;
	return 0;
}

/* The last totals of @k, made (zero) when new; NULL without memory. */
static struct seen *seen_of(struct tapir_http_agg *a, const struct tapir_agg_key *k)
{
	struct seen *s = probe(a->t, a->n, k);

	if (s->used)
		return s;
	if ((a->used + 1) * 2 > a->n) {
		if (rehash(a, a->n * 2, 0))
			return NULL;
		s = probe(a->t, a->n, k);
	}
	memset(s, 0, sizeof(*s));
	s->key = *k;
	s->used = 1;
	a->used++;
	return s;
}

/* Read series @k and hand @fn what it gained; 0, or -errno when it could not be read. */
static int read_one(struct tapir_http_agg *a, const struct tapir_agg_key *k, tapir_http_agg_fn fn,
		    void *ctx)
{
	struct tapir_agg now, delta;
	struct seen *s;

	if (bpf_map_lookup_elem(a->fd, k, a->percpu))
		return -errno;
	s = seen_of(a, k);
	if (!s)
		return -ENOMEM;
	s->live = 1;
	tapir_agg_sum(&now, a->percpu, a->ncpus);
	if (tapir_agg_delta(&delta, &now, &s->total))
		fn(ctx, k, &delta);
	s->total = now;
	return 0;
}

int tapir_http_agg__read(struct tapir_http_agg *a, tapir_http_agg_fn fn, void *ctx)
{
	struct tapir_agg_key key, next, *prev = NULL;
	size_t i;
	int n = 0, err;

	if (!a || a->fd < 0)
		return 0;
	for (i = 0; i < a->n; i++)
		a->t[i].live = 0;
	while (bpf_map_get_next_key(a->fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		err = read_one(a, &key, fn, ctx);
		if (err == -ENOMEM)
			return err;
		n += !err;
	}
	/* Series deleted from the map meanwhile (forgotten) leave the table too. */
	if (a->used > (size_t)n)
		rehash(a, a->n, 1);
	return n;
}

int tapir_http_agg__forget(struct tapir_http_agg *a, uint32_t labels_id, tapir_http_agg_fn fn,
			   void *ctx)
{
	struct tapir_agg_key key, next, *prev = NULL, *gone = NULL;
	size_t n_gone = 0, i;
	void *grown;
	int n = 0;

	if (!a || a->fd < 0)
		return 0;
	/* Collect first: deleting while iterating would restart get_next_key. */
	while (bpf_map_get_next_key(a->fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (key.labels_id != labels_id)
			continue;
		grown = realloc(gone, (n_gone + 1) * sizeof(*gone));
		if (!grown)
			break;
		gone = grown;
		gone[n_gone++] = key;
	}
	for (i = 0; i < n_gone; i++) {
		read_one(a, &gone[i], fn, ctx);
		if (!bpf_map_delete_elem(a->fd, &gone[i]))
			n++;
		probe(a->t, a->n, &gone[i])->live = 0;
	}
	free(gone);
	if (n_gone)
		rehash(a, a->n, 1);
	return n;
}
