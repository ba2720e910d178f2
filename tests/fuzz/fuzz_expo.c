// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: the exposition writer's escaping (user/expo/buf.c), which carries label values
 * from pod labels, environment variables and cgroup names into /metrics. Every escaped value
 * must be valid UTF-8 with no raw newline or double quote and only the escapes the text format
 * knows, and must read back as the input where the input was valid UTF-8 and short. Every
 * double must read back as itself, in the very text printf's shortest of %.15g..%.17g makes.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* Length of the UTF-8 character at @s (of @n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned int cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static int valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		k = utf8_len(s + i, n - i);
		if (!k)
			return 0;
		i += k;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tapir_buf b, back;
	char *v;
	size_t i;
	double d, r;

	/* A double from the first 8 bytes, printed and read back. */
	if (size >= 8) {
		memcpy(&d, data, 8);
		tapir_buf__init(&b);
		tapir_buf__double(&b, d);
		if (b.oom)
			abort();
		r = strtod(b.data, NULL);
		if (!(isnan(d) ? isnan(r) : r == d))
			abort();
		/* Byte for byte printf's shortest of %.15g..%.17g, which the fast paths replace. */
		if (isfinite(d) && !(fabs(d) < 9007199254740992.0 && d == trunc(d))) {
			char want[32];
			int prec;

			for (prec = 15; prec < 17; prec++) {
				snprintf(want, sizeof(want), "%.*g", prec, d);
				if (strtod(want, NULL) == d)
					break;
			}
			if (prec == 17)
				snprintf(want, sizeof(want), "%.17g", d);
			if (strcmp(b.data, want))
				abort();
		}
		tapir_buf__free(&b);
	}

	v = malloc(size + 1);
	if (!v)
		return 0;
	memcpy(v, data, size);
	v[size] = '\0';
	tapir_buf__init(&b);
	tapir_buf__label_value(&b, v);
	if (b.oom || b.len > 2 * TAPIR_MAX_LABEL_VALUE ||
	    !valid_utf8((unsigned char *)b.data, b.len))
		abort();
	/* Unescape: only \\, \" and \n, and no raw newline or quote. */
	tapir_buf__init(&back);
	for (i = 0; i < b.len; i++) {
		char c = b.data[i];

		if (c == '\n' || c == '"')
			abort();
		if (c == '\\') {
			if (++i == b.len)
				abort();
			c = b.data[i];
			if (c == 'n')
				c = '\n';
			else if (c != '\\' && c != '"')
				abort();
		}
		tapir_buf__append(&back, &c, 1);
	}
	if (back.len > TAPIR_MAX_LABEL_VALUE)
		abort();
	/* Valid and short: exactly the input (up to its first NUL). */
	if (valid_utf8((unsigned char *)v, strlen(v)) && strlen(v) <= TAPIR_MAX_LABEL_VALUE / 2 &&
	    (back.len != strlen(v) || memcmp(back.data ? back.data : "", v, back.len)))
		abort();
	tapir_buf__free(&back);
	tapir_buf__free(&b);
	free(v);
	return 0;
}
