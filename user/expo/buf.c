// SPDX-License-Identifier: GPL-2.0
/* A growable text buffer that remembers allocation failure instead of reporting each one. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* What data points at before the first allocation, so that it is always a C string. */
static char empty[1];

void tapir_buf__init(struct tapir_buf *b)
{
	b->data = empty;
	b->len = 0;
	b->cap = 0;
	b->oom = 0;
}

void tapir_buf__free(struct tapir_buf *b)
{
	if (b->cap)
		free(b->data);
	tapir_buf__init(b);
}

/* Keep the memory for the next round (a scrape renders into the same buffer each time). */
void tapir_buf__reset(struct tapir_buf *b)
{
	b->len = 0;
	b->oom = 0;
	if (b->cap)
		b->data[0] = '\0';
}

/* Make room for @n more bytes plus the NUL; 0, or -ENOMEM with oom set. */
static int reserve(struct tapir_buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 256;
	char *data;

	if (b->oom)
		return -ENOMEM;
	if (b->cap && n < b->cap - b->len)
		return 0;
	if (n > SIZE_MAX / 2 - b->len)
		goto oom;
	while (cap - b->len <= n)
		cap *= 2;
	data = realloc(b->cap ? b->data : NULL, cap);
	if (!data)
		goto oom;
	if (!b->cap)
		data[0] = '\0';
	b->data = data;
	b->cap = cap;
	return 0;
oom:
	b->oom = 1;
	return -ENOMEM;
}

void tapir_buf__append(struct tapir_buf *b, const char *s, size_t n)
{
	if (reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void tapir_buf__puts(struct tapir_buf *b, const char *s)
{
	tapir_buf__append(b, s, strlen(s));
}

void tapir_buf__printf(struct tapir_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->cap ? b->data + b->len : NULL, b->cap ? b->cap - b->len : 0, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n >= b->cap - b->len && !reserve(b, n)) {
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
	}
	if (n >= 0 && !b->oom && (size_t)n < b->cap - b->len)
		b->len += n;
	else if (b->cap)
		b->data[b->len] = '\0'; /* undo a cut-off or failed write */
}

void tapir_buf__double(struct tapir_buf *b, double v)
{
	char tmp[32];
	int prec;

	if (isnan(v)) {
		tapir_buf__puts(b, "NaN");
		return;
	}
	if (isinf(v)) {
		tapir_buf__puts(b, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	/* Exact in a double, so the integer text reads back as the same value (and -0 as 0). */
	if (fabs(v) < 9007199254740992.0 && v == trunc(v)) {
		tapir_buf__printf(b, "%lld", (long long)v);
		return;
	}
	for (prec = 15; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	if (prec == 17)
		snprintf(tmp, sizeof(tmp), "%.17g", v);
	tapir_buf__puts(b, tmp);
}

/*
 * Length of the UTF-8 sequence at @s. Returns 1 with *len set when it is well formed
 * (Unicode table 3-7: no overlongs, no surrogates, nothing past U+10FFFF), otherwise 0 with
 * *len the length of its maximal ill-formed prefix, which becomes one U+FFFD. A NUL never
 * qualifies as a continuation byte, so this does not read past the terminator.
 */
static int utf8_seq(const unsigned char *s, size_t *len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (s[0] < 0x80) {
		*len = 1;
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		need = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else {
		*len = 1;
		return 0;
	}
	for (i = 1; i < need; i++) {
		if (s[i] < lo || s[i] > hi) {
			*len = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	*len = need;
	return 1;
}

void tapir_buf__label_value(struct tapir_buf *b, const char *v)
{
	const unsigned char *s = (const unsigned char *)(v ? v : "");
	char esc[2] = { '\\' };
	size_t used = 0, len, n, i;
	const char *out;
	char *dst;

	/* Escaping and U+FFFD only ever write what fits, so reserve the cap once. */
	if (reserve(b, TAPIR_MAX_LABEL_VALUE))
		return;
	dst = b->data + b->len;
	while (*s) {
		if (*s >= 0x80) {
			if (utf8_seq(s, &len)) {
				out = (const char *)s;
				n = len;
			} else {
				out = "\xef\xbf\xbd";
				n = 3;
			}
		} else if (*s == '\\' || *s == '"' || *s == '\n') {
			esc[1] = *s == '\n' ? 'n' : *s;
			out = esc;
			n = 2;
			len = 1;
		} else {
			/* the common case, a byte at a time */
			if (used == TAPIR_MAX_LABEL_VALUE)
				break;
			dst[used++] = *s++;
			continue;
		}
		if (used + n > TAPIR_MAX_LABEL_VALUE)
			break;
		for (i = 0; i < n; i++)
			dst[used + i] = out[i];
		used += n;
		s += len;
	}
	b->len += used;
	b->data[b->len] = '\0';
}
