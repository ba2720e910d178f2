// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: the Prometheus/OpenMetrics text parser (user/sources/promtext.c) and the engine
 * normalization on top of it (user/sources/engine.c), which read what a model container serves.
 * A text that parses is written out again in canonical form (every label value escaped) and
 * must parse to the very same samples; whatever the normalization keeps must be well formed,
 * and nothing is kept on error.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "promtext.h"

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len + n > o->cap) {
		o->cap = (o->len + n) * 2 + 64;
		o->p = realloc(o->p, o->cap);
		if (!o->p)
			abort();
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

/* name{l="v",...} value, with \\, \" and \n escaped and the value as an exact hex float. */
static int canon(void *ctx, const struct tapir_prom_sample *s)
{
	struct out *o = ctx;
	char num[64];
	size_t i, k;

	if (s->n_labels > TAPIR_PROM_MAX_LABELS)
		abort();
	put(o, s->name, s->name_len);
	put(o, "{", 1);
	for (i = 0; i < s->n_labels; i++) {
		const struct tapir_prom_label *l = &s->labels[i];

		if (l->value_len > TAPIR_PROM_MAX_LABEL_LEN)
			abort();
		put(o, i ? "," : "", i ? 1 : 0);
		put(o, l->name, l->name_len);
		put(o, "=\"", 2);
		for (k = 0; k < l->value_len; k++) {
			char c = l->value[k];

			if (c == '\\' || c == '"')
				put(o, "\\", 1);
			if (c == '\n')
				put(o, "\\n", 2);
			else
				put(o, &c, 1);
		}
		put(o, "\"", 1);
	}
	/* NaN's sign and payload are not the text's to keep. */
	snprintf(num, sizeof(num), "} %s\n", isnan(s->value) ? "NaN" : "");
	put(o, num, strlen(num));
	if (!isnan(s->value)) {
		o->len--;
		snprintf(num, sizeof(num), "%.17g\n", s->value);
		put(o, num, strlen(num));
	}
	return 0;
}

static void check_metrics(enum tapir_engine_kind kind, const char *text, size_t len)
{
	struct tapir_engine_metrics m;
	size_t i, b;
	double t;
	int ret;

	ret = tapir_engine_metrics__parse(&m, kind, text, len, 5000);
	if (ret && (m.n || m.s))
		abort();
	for (i = 0; i < m.n; i++) {
		const struct tapir_engine_series *e = &m.s[i];

		if (e->fam >= TAPIR_EF_COUNT || !tapir_engine_family(kind, e->fam) ||
		    e->n_buckets > TAPIR_ENGINE_BUCKETS_MAX ||
		    strnlen(e->model, TAPIR_ENGINE_MODEL_MAX) == TAPIR_ENGINE_MODEL_MAX ||
		    strnlen(e->engine, TAPIR_ENGINE_SHORT_MAX) == TAPIR_ENGINE_SHORT_MAX ||
		    strnlen(e->reason, TAPIR_ENGINE_SHORT_MAX) == TAPIR_ENGINE_SHORT_MAX)
			abort();
		for (b = 1; b < e->n_buckets; b++)
			if (!(e->bounds[b] > e->bounds[b - 1]) || !(e->cum[b] >= e->cum[b - 1]))
				abort();
		/* What the registry takes (tapir_series__set_buckets): +Inf last, or no buckets. */
		if (e->n_buckets && e->bounds[e->n_buckets - 1] != INFINITY)
			abort();
		if (tapir_engine_family(kind, e->fam)->type == TAPIR_EFT_HISTOGRAM && !e->n_buckets)
			abort();
	}
	tapir_engine_metrics__in_flight_tokens(&m, &t);
	tapir_engine_metrics__clear(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tapir_prom_ops ops = { .sample = canon };
	struct out first = { 0 }, second = { 0 };
	const char *text = (const char *)data;

	check_metrics(TAPIR_ENGINE_VLLM, text, size);
	check_metrics(TAPIR_ENGINE_SGLANG, text, size);
	if (tapir_prom_parse(text, size, 0, &ops, &first, NULL) == 0) {
		if (tapir_prom_parse(first.p ? first.p : "", first.len, 0, &ops, &second, NULL))
			abort();
		if (first.len != second.len || (first.len && memcmp(first.p, second.p, first.len)))
			abort();
	}
	free(first.p);
	free(second.p);
	return 0;
}
