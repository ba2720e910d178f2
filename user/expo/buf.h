/* SPDX-License-Identifier: GPL-2.0 */
/* A growable byte buffer for building text, with Prometheus label-value escaping. */
#ifndef TAPIR_BUF_H
#define TAPIR_BUF_H

#include <stddef.h>

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
/* A double the way Prometheus reads it back exactly: integers plainly, +Inf, -Inf, NaN. */
void tapir_buf__double(struct tapir_buf *b, double v);
/*
 * A label value, escaped for the text format (backslash, double quote, newline), with
 * invalid UTF-8 replaced by U+FFFD and the result cut at TAPIR_MAX_LABEL_VALUE bytes on a
 * character boundary.
 */
#define TAPIR_MAX_LABEL_VALUE 1024
void tapir_buf__label_value(struct tapir_buf *b, const char *v);

#endif
