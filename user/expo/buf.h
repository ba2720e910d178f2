/* SPDX-License-Identifier: GPL-2.0 */
/* A growable byte buffer for building text, with Prometheus label-value escaping. */
#ifndef TAPIR_BUF_H
#define TAPIR_BUF_H

#include <stddef.h>
#include <stdint.h>

struct tapir_buf {
	char *data; /* NUL-terminated while oom is 0 */
	size_t len;
	size_t cap;
	int oom; /* set once an allocation failed; further appends are ignored */
};

void tapir_buf__init(struct tapir_buf *b);
void tapir_buf__free(struct tapir_buf *b);
void tapir_buf__reset(struct tapir_buf *b);
void tapir_buf__append(struct tapir_buf *b, const char *s, size_t n);
void tapir_buf__puts(struct tapir_buf *b, const char *s);
void tapir_buf__printf(struct tapir_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Room for @n more bytes at the end, or NULL once out of memory; tapir_buf__commit() then
 * keeps the first @n written there (at most what was asked for).
 */
char *tapir_buf__room(struct tapir_buf *b, size_t n);
void tapir_buf__commit(struct tapir_buf *b, size_t n);

/* Numbers, written to @dst without a NUL: at most TAPIR_NUM_MAX bytes; returns the length. */
#define TAPIR_NUM_MAX 32
size_t tapir_fmt_u64(char *dst, uint64_t v);
/*
 * A double the way Prometheus reads it back exactly: integers plainly, +Inf, -Inf, NaN, and
 * otherwise the shortest of printf's %.15g, %.16g and %.17g that reads back, byte for byte.
 */
size_t tapir_fmt_double(char *dst, double v);
void tapir_buf__double(struct tapir_buf *b, double v);
void tapir_buf__u64(struct tapir_buf *b, uint64_t v);
/*
 * A label value, escaped for the text format (backslash, double quote, newline), with
 * invalid UTF-8 replaced by U+FFFD and the result cut at TAPIR_MAX_LABEL_VALUE bytes on a
 * character boundary.
 */
#define TAPIR_MAX_LABEL_VALUE 1024
void tapir_buf__label_value(struct tapir_buf *b, const char *v);

#endif
