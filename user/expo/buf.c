// SPDX-License-Identifier: GPL-2.0
/* A growable text buffer that remembers allocation failure instead of reporting each one. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
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

char *tapir_buf__room(struct tapir_buf *b, size_t n)
{
	return reserve(b, n) ? NULL : b->data + b->len;
}

void tapir_buf__commit(struct tapir_buf *b, size_t n)
{
	b->len += n;
	b->data[b->len] = '\0';
}

static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
				  "31323334353637383940414243444546474849505152535455565758596061"
				  "62636465666768697071727374757677787980818283848586878889909192"
				  "93949596979899";

/* The decimal digits of @v, written backwards from @end; returns where they start. */
static char *u64_digits(char *end, uint64_t v)
{
	while (v >= 100) {
		end -= 2;
		memcpy(end, digit_pairs + 2 * (v % 100), 2);
		v /= 100;
	}
	if (v >= 10) {
		end -= 2;
		memcpy(end, digit_pairs + 2 * v, 2);
	} else {
		*--end = '0' + v;
	}
	return end;
}

size_t tapir_fmt_u64(char *dst, uint64_t v)
{
	char tmp[20], *p = u64_digits(tmp + sizeof(tmp), v);
	size_t n = tmp + sizeof(tmp) - p;

	memcpy(dst, p, n);
	return n;
}

typedef unsigned __int128 u128;

static const uint64_t pow10_u64[20] = {
	1ULL,
	10ULL,
	100ULL,
	1000ULL,
	10000ULL,
	100000ULL,
	1000000ULL,
	10000000ULL,
	100000000ULL,
	1000000000ULL,
	10000000000ULL,
	100000000000ULL,
	1000000000000ULL,
	10000000000000ULL,
	100000000000000ULL,
	1000000000000000ULL,
	10000000000000000ULL,
	100000000000000000ULL,
	1000000000000000000ULL,
	10000000000000000000ULL,
};

/* 10^k for k <= 38 would fit; k stays <= 20 here. */
static u128 pow10_u128(int k)
{
	return k < 20 ? pow10_u64[k] : (u128)pow10_u64[19] * pow10_u64[k - 19];
}

/*
 * The fraction @v (1e-4 <= v < 1e15, not an integer) to @prec significant digits, exactly as
 * printf's %.*e rounds (the exact binary value, ties to even): v = f / 2^s, so the digits are
 * f * 10^k / 2^s, which fits in 128 bits for k <= 20. Returns k with the digits in *q
 * (10^(prec-1) <= *q < 10^prec), or -1 where another k would be needed.
 */
static int frac_digits(uint64_t f, int s, int prec, int k, uint64_t *q)
{
	u128 n, rem, half;
	int tries;

	for (tries = 0; tries < 3; tries++) {
		if (k < 0 || k > 20)
			return -1;
		n = (u128)f * pow10_u128(k);
		*q = n >> s;
		rem = n & (((u128)1 << s) - 1);
		half = (u128)1 << (s - 1);
		if (rem > half || (rem == half && (*q & 1)))
			++*q;
		if (*q >= pow10_u64[prec])
			k--;
		else if (*q < pow10_u64[prec - 1])
			k++;
		else
			return k;
	}
	return -1;
}

/*
 * Does q / 10^k read back as f / 2^s? It does when it lies inside the interval that rounds to
 * f (its ends where f is even, as strtod rounds ties to even); the interval is narrower below
 * a power of two. Compared scaled by 10^k * 2^(s+2), which stays below 2^125.
 */
static bool reads_back(uint64_t f, int s, uint64_t q, int k)
{
	u128 p = pow10_u128(k), v4 = (u128)f * p * 4, d = (u128)q << (s + 2);
	u128 lo = f == 1ULL << 52 ? p : 2 * p, hi = 2 * p;

	if (f & 1)
		return d > v4 - lo && d < v4 + hi;
	return d >= v4 - lo && d <= v4 + hi;
}

/*
 * %.15g, %.16g or %.17g of @v, the first that reads back, for a fraction in the fixed-point
 * range of %g; 0 for a value outside it. The digits are those printf would write.
 */
static size_t fmt_fraction(char *dst, double v)
{
	char digits[17], *p = dst;
	uint64_t bits, f, q = 0;
	int s, prec, k = -1, x, est, i, nd;
	double a = fabs(v);

	if (!(a >= 1e-4 && a < 1e15))
		return 0;
	memcpy(&bits, &a, sizeof(bits));
	f = (bits & ((1ULL << 52) - 1)) | 1ULL << 52;
	s = 1075 - (int)(bits >> 52);
	/* the exponent of the leading digit from the binary one, give or take one */
	est = (int)floor(((int)(bits >> 52) - 1023) * 0.30102999566398120);
	est = est < -4 ? -4 : est > 14 ? 14 : est;
	for (prec = 15; prec <= 17; prec++) {
		k = frac_digits(f, s, prec, prec - 1 - est, &q);
		if (k < 0)
			return 0;
		if (prec == 17 || reads_back(f, s, q, k))
			break;
	}
	x = prec - 1 - k;
	if (x < -4 || x >= prec)
		return 0;
	u64_digits(digits + prec, q);
	for (nd = prec; nd > x + 1 && digits[nd - 1] == '0'; nd--)
		;
	if (v < 0)
		*p++ = '-';
	if (x >= 0) {
		memcpy(p, digits, x + 1);
		p += x + 1;
	} else {
		*p++ = '0';
	}
	if (nd > x + 1) {
		*p++ = '.';
		for (i = x + 1; i < 0; i++)
			*p++ = '0';
		i = x + 1 > 0 ? x + 1 : 0;
		memcpy(p, digits + i, nd - i);
		p += nd - i;
	}
	return p - dst;
}

size_t tapir_fmt_double(char *dst, double v)
{
	char tmp[32];
	size_t n;
	int prec;

	if (isnan(v)) {
		memcpy(dst, "NaN", 3);
		return 3;
	}
	if (isinf(v)) {
		memcpy(dst, v > 0 ? "+Inf" : "-Inf", 4);
		return 4;
	}
	/* Exact in a double, so the integer text reads back as the same value (and -0 as 0). */
	if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v) {
		if (v < 0) {
			*dst = '-';
			return 1 + tapir_fmt_u64(dst + 1, (uint64_t) - (int64_t)v);
		}
		return tapir_fmt_u64(dst, (uint64_t)v);
	}
	n = fmt_fraction(dst, v);
	if (n)
		return n;
	/* Exponents, and integers from 2^53 on: the shortest of %.15g..%.17g that reads back. */
	for (prec = 15; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	if (prec == 17)
		snprintf(tmp, sizeof(tmp), "%.17g", v);
	n = strlen(tmp);
	memcpy(dst, tmp, n);
	return n;
}

void tapir_buf__double(struct tapir_buf *b, double v)
{
	char *p = tapir_buf__room(b, TAPIR_NUM_MAX);

	if (p)
		tapir_buf__commit(b, tapir_fmt_double(p, v));
}

void tapir_buf__u64(struct tapir_buf *b, uint64_t v)
{
	char *p = tapir_buf__room(b, TAPIR_NUM_MAX);

	if (p)
		tapir_buf__commit(b, tapir_fmt_u64(p, v));
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
