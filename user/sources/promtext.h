/* SPDX-License-Identifier: GPL-2.0 */
/* A strict parser of the Prometheus text format 0.0.4 and OpenMetrics 1.0, for engine scrapes. */
#ifndef TAPIR_PROMTEXT_H
#define TAPIR_PROMTEXT_H

#include <stdbool.h>
#include <stddef.h>

enum tapir_prom_type {
	TAPIR_PROM_UNTYPED,
	TAPIR_PROM_COUNTER,
	TAPIR_PROM_GAUGE,
	TAPIR_PROM_HISTOGRAM,
	TAPIR_PROM_SUMMARY,
	TAPIR_PROM_INFO,
	TAPIR_PROM_STATESET,
	TAPIR_PROM_GAUGEHISTOGRAM,
};

/* A sample with more labels, or a label value longer once unescaped, fails the parse: real
 * engines stay far below both, and the text is untrusted. */
#define TAPIR_PROM_MAX_LABELS	 32
#define TAPIR_PROM_MAX_LABEL_LEN 1024

/* Strings point into the text (names) or into the parser's scratch (unescaped values): valid
 * during the callback only, and not NUL-terminated. */
struct tapir_prom_label {
	const char *name, *value;
	size_t name_len, value_len;
};

struct tapir_prom_sample {
	const char *name;
	size_t name_len;
	struct tapir_prom_label labels[TAPIR_PROM_MAX_LABELS];
	size_t n_labels;
	double value;
	bool has_timestamp; /* timestamps and exemplars are checked, then ignored */
};

struct tapir_prom_ops {
	/* A TYPE line (optional). */
	int (*type)(void *ctx, const char *name, size_t name_len, enum tapir_prom_type type);
	/* Each sample, in text order. */
	int (*sample)(void *ctx, const struct tapir_prom_sample *s);
};

struct tapir_prom_error {
	size_t line;	    /* 1-based line of the error */
	const char *reason; /* a static string */
};

/*
 * Parse @len bytes of @text, calling @ops for each TYPE line and sample. Returns 0; -EINVAL on
 * a syntax error (@err, if not NULL, says where and why); -E2BIG past @max_samples samples
 * (0: no limit); -ENOMEM; or the first non-zero value a callback returned, which stops the parse.
 */
/*
 * A float as Go's ParseFloat takes it from Prometheus text: decimal with an optional exponent,
 * or Inf/NaN in any case with an optional sign; hex floats, spaces and trailing junk are
 * refused, which strtod alone would take. 0, or -EINVAL with @why saying what was wrong.
 */
int tapir_prom_float(const char *s, size_t n, double *out, const char **why);

int tapir_prom_parse(const char *text, size_t len, size_t max_samples,
		     const struct tapir_prom_ops *ops, void *ctx, struct tapir_prom_error *err);

#endif
