// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the text buffer: growth, number formatting and label-value escaping. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"

#define FFFD	      "\xef\xbf\xbd"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* An independent check that @s is well-formed UTF-8, by code point ranges. */
static int utf8_ok(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, len, k;
	uint32_t cp, min;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		} else if ((s[i] & 0xe0) == 0xc0) {
			len = 2, cp = s[i] & 0x1f, min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			len = 3, cp = s[i] & 0x0f, min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			len = 4, cp = s[i] & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (i + len > n)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

static void check_double(double v, const char *want)
{
	struct tapir_buf b;

	tapir_buf__init(&b);
	tapir_buf__double(&b, v);
	assert_false(b.oom);
	assert_string_equal(b.data, want);
	assert_int_equal(b.len, strlen(want));
	tapir_buf__free(&b);
}

static void check_label(const char *in, const char *want)
{
	struct tapir_buf b;

	tapir_buf__init(&b);
	tapir_buf__label_value(&b, in);
	assert_false(b.oom);
	assert_string_equal(b.data, want);
	assert_int_equal(b.len, strlen(want));
	tapir_buf__free(&b);
}

static void test_empty(void **state)
{
	struct tapir_buf b;

	tapir_buf__init(&b);
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	assert_int_equal(b.len, 0);
	tapir_buf__reset(&b);
	assert_string_equal(b.data, "");
	tapir_buf__free(&b);
	tapir_buf__free(&b);
}

static void test_append_grow(void **state)
{
	struct tapir_buf b;
	char want[20001];
	int i;

	tapir_buf__init(&b);
	for (i = 0; i < 10000; i++)
		tapir_buf__append(&b, i % 2 ? "b" : "a", 1);
	tapir_buf__puts(&b, "");
	for (i = 0; i < 10000; i++)
		want[i] = i % 2 ? 'b' : 'a';
	want[10000] = '\0';
	assert_int_equal(b.len, 10000);
	assert_string_equal(b.data, want);

	tapir_buf__printf(&b, "%s|%d|%.3f", "x", -7, 2.5);
	assert_int_equal(b.len, 10000 + strlen("x|-7|2.500"));
	assert_string_equal(b.data + 10000, "x|-7|2.500");

	/* one printf larger than the current capacity */
	memset(want, 'z', 20000);
	want[20000] = '\0';
	tapir_buf__reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	tapir_buf__printf(&b, "<%s>", want);
	assert_int_equal(b.len, 20002);
	assert_int_equal(b.data[0], '<');
	assert_int_equal(b.data[20001], '>');
	assert_int_equal(b.data[20002], '\0');
	assert_false(b.oom);
	tapir_buf__free(&b);
}

static void test_printf_first(void **state)
{
	struct tapir_buf b;

	tapir_buf__init(&b);
	tapir_buf__printf(&b, "%u", 42u);
	assert_string_equal(b.data, "42");
	tapir_buf__free(&b);

	tapir_buf__init(&b);
	tapir_buf__printf(&b, "%s", "");
	assert_string_equal(b.data, "");
	assert_int_equal(b.len, 0);
	tapir_buf__free(&b);
}

static void test_oom_sticky(void **state)
{
	struct tapir_buf b;

	tapir_buf__init(&b);
	tapir_buf__puts(&b, "kept");
	b.oom = 1;
	tapir_buf__puts(&b, "dropped");
	tapir_buf__printf(&b, "%d", 1);
	tapir_buf__double(&b, 0.5);
	tapir_buf__label_value(&b, "dropped");
	assert_int_equal(b.len, 4);
	assert_string_equal(b.data, "kept");
	tapir_buf__reset(&b);
	assert_false(b.oom);
	tapir_buf__puts(&b, "again");
	assert_string_equal(b.data, "again");
	tapir_buf__free(&b);
}

static void test_double_integers(void **state)
{
	check_double(0, "0");
	check_double(-0.0, "0");
	check_double(1, "1");
	check_double(-42, "-42");
	check_double(1048576, "1048576");
	check_double(1e15, "1000000000000000");
	check_double(9007199254740991.0, "9007199254740991");
	check_double(-9007199254740991.0, "-9007199254740991");
	/* from 2^53 on, the shortest of %.15g..%.17g that reads back */
	check_double(9007199254740992.0, "9007199254740992");
	check_double(18014398509481988.0, "18014398509481988");
	check_double(1152921504606846976.0, "1.152921504606847e+18");
	check_double(1e20, "1e+20");
}

static void test_double_fractions(void **state)
{
	check_double(0.005, "0.005");
	check_double(0.1, "0.1");
	check_double(0.25, "0.25");
	check_double(2.5, "2.5");
	check_double(-0.5, "-0.5");
	check_double(1e-7, "1e-07");
	check_double(1.0 / 3, "0.3333333333333333");
	check_double(0.1 + 0.2, "0.30000000000000004");
	check_double(DBL_MAX, "1.7976931348623157e+308");
	check_double(DBL_MIN, "2.2250738585072014e-308");
	check_double(5e-324, "4.94065645841247e-324");
}

static void test_double_special(void **state)
{
	check_double(INFINITY, "+Inf");
	check_double(-INFINITY, "-Inf");
	check_double(NAN, "NaN");
	check_double(-NAN, "NaN");
}

/* Whatever the bits, the text reads back as the same double. */
static void test_double_round_trip(void **state)
{
	struct tapir_buf b;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	double v;
	int i;

	tapir_buf__init(&b);
	for (i = 0; i < 100000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(&v, &x, sizeof(v));
		if (!isfinite(v))
			continue;
		tapir_buf__reset(&b);
		tapir_buf__double(&b, v);
		assert_true(strtod(b.data, NULL) == v);
		assert_true(b.len <= 24);
	}
	tapir_buf__free(&b);
}

/* The text tapir wrote before the fast paths: printf's shortest of %.15g..%.17g. */
static void ref_double(double v, char *out, size_t len)
{
	int prec;

	if (isnan(v)) {
		snprintf(out, len, "NaN");
	} else if (isinf(v)) {
		snprintf(out, len, "%s", v > 0 ? "+Inf" : "-Inf");
	} else if (fabs(v) < 9007199254740992.0 && v == trunc(v)) {
		snprintf(out, len, "%lld", (long long)v);
	} else {
		for (prec = 15; prec < 17; prec++) {
			snprintf(out, len, "%.*g", prec, v);
			if (strtod(out, NULL) == v)
				return;
		}
		snprintf(out, len, "%.17g", v);
	}
}

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static unsigned long n_compared;

static void same_as_printf(double v)
{
	char want[64], got[TAPIR_NUM_MAX + 1];
	size_t n;

	ref_double(v, want, sizeof(want));
	n = tapir_fmt_double(got, v);
	assert_true(n <= 24);
	got[n] = '\0';
	if (strcmp(got, want))
		fail_msg("%a: got %s, printf %s", v, got, want);
	n_compared++;
}

static void both_signs(double v)
{
	same_as_printf(v);
	same_as_printf(-v);
}

/* Byte for byte what printf and strtod made, over the values metrics take and their edges. */
static void test_double_matches_printf(void **state)
{
	uint64_t x = 0x2545f4914f6cdd1dULL, m;
	double sum = 0, p, v;
	int i, e, k;

	n_compared = 0;
	for (i = 0; i < 100000; i++) { /* any bits at all */
		m = xorshift(&x);
		memcpy(&v, &m, sizeof(v));
		same_as_printf(v);
	}
	for (i = 0; i < 100000; i++) { /* decimals of up to 17 digits, from 1e-22 to 1e17 */
		m = xorshift(&x) % (xorshift(&x) % 2 ? 100000000000000000ULL : 1000000ULL);
		both_signs((double)m / pow(10, xorshift(&x) % 23));
		both_signs((double)m * pow(10, xorshift(&x) % 4));
	}
	for (i = 0; i < 50000; i++) { /* what tapir computes: seconds from ns and us, their sums */
		m = xorshift(&x) % 5000000000ULL;
		both_signs((double)m / 1e9);
		both_signs((double)m / 1e6);
		sum += (double)(m % 900000000) / 1e9;
		same_as_printf(sum);
	}
	/* Exact ties at the 17th and 16th digit: N / 2^j has j decimals, 18 or 17 digits in all. */
	for (e = -4; e <= 14; e++) {
		for (i = 0; i < 2000; i++) {
			for (k = 17; k >= 16; k--) {
				p = ldexp(1, k - e);
				m = (uint64_t)(pow(10, e) * p) +
				    xorshift(&x) % (uint64_t)(9 * pow(10, e) * p);
				both_signs((double)(m | 1) / p);
			}
		}
	}
	for (e = -30; e <= 30; e++) { /* powers of ten and their neighbours */
		p = pow(10, e);
		both_signs(p);
		v = p;
		for (i = 0; i < 5; i++)
			v = nextafter(v, 0);
		for (i = 0; i < 10; i++, v = nextafter(v, INFINITY))
			both_signs(v);
		for (k = 1; k <= 9; k++)
			both_signs(k * p - p / 1e15), both_signs(k * p + p / 1e16);
	}
	for (i = 0; i < 100000; i++) { /* integers and counts, to 2^64 */
		m = xorshift(&x) >> (xorshift(&x) % 64);
		both_signs((double)m);
		both_signs((double)m + 0.5);
	}
	both_signs(0.1 + 0.2);
	both_signs(1.0 / 3);
	both_signs(123456789012.3125);
	both_signs(999999999999999.9);
	both_signs(999999999999999.94);
	both_signs(99999.999999999999);
	both_signs(0.000099999999999999999);
	both_signs(DBL_MIN);
	both_signs(DBL_MAX);
	both_signs(DBL_EPSILON);
	both_signs(9007199254740993.0);
	both_signs(0);
	both_signs(INFINITY);
	same_as_printf(NAN);
	assert_true(n_compared > 1000000);
}

static void test_u64(void **state)
{
	static const uint64_t v[] = { 0,
				      1,
				      9,
				      10,
				      99,
				      100,
				      101,
				      12345,
				      4294967295ULL,
				      4294967296ULL,
				      10000000000000000000ULL,
				      UINT64_MAX };
	char want[32], got[TAPIR_NUM_MAX + 1];
	uint64_t x = 88172645463325252ULL, u;
	struct tapir_buf b;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(v) + 100000; i++) {
		u = i < ARRAY_SIZE(v) ? v[i] : xorshift(&x) >> (x % 64);
		snprintf(want, sizeof(want), "%" PRIu64, u);
		got[tapir_fmt_u64(got, u)] = '\0';
		assert_string_equal(got, want);
	}
	tapir_buf__init(&b);
	tapir_buf__puts(&b, "n=");
	tapir_buf__u64(&b, UINT64_MAX);
	assert_string_equal(b.data, "n=18446744073709551615");
	assert_int_equal(b.len, strlen(b.data));
	tapir_buf__free(&b);
}

static void test_room_commit(void **state)
{
	struct tapir_buf b;
	char *p;

	tapir_buf__init(&b);
	tapir_buf__puts(&b, "ab");
	p = tapir_buf__room(&b, 1000);
	assert_non_null(p);
	assert_true(b.cap > b.len + 1000);
	memcpy(p, "cdef", 4);
	tapir_buf__commit(&b, 3);
	assert_string_equal(b.data, "abcde");
	assert_int_equal(b.len, 5);
	tapir_buf__free(&b);
}

static void test_label_plain(void **state)
{
	check_label("", "");
	check_label(NULL, "");
	check_label("llama-3-70b", "llama-3-70b");
	check_label("a b\tc\r{}=,", "a b\tc\r{}=,");
	/* valid multibyte text passes untouched: 2, 3 and 4 byte forms */
	check_label("h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e",
		    "h\xc3\xa9llo \xe2\x82\xac \xf0\x9d\x84\x9e");
	check_label("\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\xef\xbf\xbf\xf4\x8f\xbf\xbf");
}

static void test_label_escapes(void **state)
{
	check_label("\"", "\\\"");
	check_label("\\", "\\\\");
	check_label("\n", "\\n");
	check_label("say \"hi\"\\n\nbye", "say \\\"hi\\\"\\\\n\\nbye");
	check_label("\\\"", "\\\\\\\"");
}

static void test_label_invalid_utf8(void **state)
{
	check_label("\x80", FFFD);
	check_label("a\xbf!", "a" FFFD "!");
	check_label("\xff\xfe", FFFD FFFD);
	/* overlongs */
	check_label("\xc0\xaf", FFFD FFFD);
	check_label("\xc1\xbf", FFFD FFFD);
	check_label("\xe0\x80\xaf", FFFD FFFD FFFD);
	check_label("\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD);
	/* UTF-16 surrogates */
	check_label("\xed\xa0\x80", FFFD FFFD FFFD);
	check_label("\xed\xbf\xbf", FFFD FFFD FFFD);
	/* past U+10FFFF */
	check_label("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD);
	check_label("\xf5\x80", FFFD FFFD);
	check_label("\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD);
	/* truncated: the well-formed prefix is one U+FFFD */
	check_label("a\xe2\x82", "a" FFFD);
	check_label("\xe2\x82z", FFFD "z");
	check_label("\xf0\x9f\x98", FFFD);
	check_label("\xf0\x9f\x98\x80\x80", "\xf0\x9f\x98\x80" FFFD);
	check_label("\xc3", FFFD);
	/* an escape right after a bad byte still escapes */
	check_label("\xc3\"", FFFD "\\\"");
}

/* Appends after what is there and leaves it alone. */
static void test_label_appends(void **state)
{
	struct tapir_buf b;

	tapir_buf__init(&b);
	tapir_buf__puts(&b, "x=\"");
	tapir_buf__label_value(&b, "a\"b");
	tapir_buf__puts(&b, "\"");
	assert_string_equal(b.data, "x=\"a\\\"b\"");
	tapir_buf__free(&b);
}

static void check_cut(const char *unit, size_t want_len, const char *tail)
{
	size_t ulen = strlen(unit), n = 10240 / ulen * ulen, i;
	struct tapir_buf b;
	char *in;

	in = malloc(n + 1);
	assert_non_null(in);
	for (i = 0; i < n; i += ulen)
		memcpy(in + i, unit, ulen);
	in[n] = '\0';

	tapir_buf__init(&b);
	tapir_buf__puts(&b, "pre");
	tapir_buf__label_value(&b, in);
	assert_false(b.oom);
	assert_int_equal(b.len - 3, want_len);
	assert_int_equal(strlen(b.data), b.len);
	assert_true(b.len - 3 <= TAPIR_MAX_LABEL_VALUE);
	assert_true(utf8_ok(b.data, b.len));
	assert_memory_equal(b.data + b.len - strlen(tail), tail, strlen(tail));
	tapir_buf__free(&b);
	free(in);
}

static void test_label_truncation(void **state)
{
	check_cut("a", 1024, "aa");
	/* 3-byte characters: 341 fit, a 342nd would straddle the cut */
	check_cut("\xe2\x82\xac", 1023, "\xe2\x82\xac");
	check_cut("\xf0\x9d\x84\x9e", 1024, "\xf0\x9d\x84\x9e");
	check_cut("\xc3\xa9", 1024, "\xc3\xa9");
	/* each bad byte grows to three */
	check_cut("\xff", 1023, FFFD);
	/* escapes double: 512 fit exactly */
	check_cut("\"", 1024, "\\\"");
	check_cut("\n", 1024, "\\n");
	/* 13 bytes a unit: 78 units, an 'a' and four escapes, never half of the fifth */
	check_cut("a\\\\\\\\\\\\", 1023, "a\\\\\\\\\\\\\\\\");
}

/* The escape of the byte at the boundary is dropped whole, not split. */
static void test_label_cut_escape_whole(void **state)
{
	struct tapir_buf b;
	char in[1100];
	size_t i, bs;

	memset(in, 'a', 1023);
	in[1023] = '"';
	in[1024] = 'z';
	in[1025] = '\0';
	tapir_buf__init(&b);
	tapir_buf__label_value(&b, in);
	assert_int_equal(b.len, 1023);
	for (i = 0; i < b.len; i++)
		assert_int_equal(b.data[i], 'a');
	tapir_buf__free(&b);

	/* 1022 plain bytes then a backslash: its escape just fits */
	memset(in, 'a', 1022);
	in[1022] = '\\';
	in[1023] = '\n';
	in[1024] = '\0';
	tapir_buf__init(&b);
	tapir_buf__label_value(&b, in);
	assert_int_equal(b.len, 1024);
	assert_memory_equal(b.data + 1022, "\\\\", 2);
	for (bs = 0, i = b.len; i > 0 && b.data[i - 1] == '\\'; i--)
		bs++;
	assert_int_equal(bs % 2, 0);
	tapir_buf__free(&b);

	/* a 4-byte character that would end at 1025 is dropped */
	memset(in, 'a', 1021);
	memcpy(in + 1021, "\xf0\x9f\x98\x80", 5);
	tapir_buf__init(&b);
	tapir_buf__label_value(&b, in);
	assert_int_equal(b.len, 1021);
	tapir_buf__free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_append_grow),
		cmocka_unit_test(test_printf_first),
		cmocka_unit_test(test_oom_sticky),
		cmocka_unit_test(test_double_integers),
		cmocka_unit_test(test_double_fractions),
		cmocka_unit_test(test_double_special),
		cmocka_unit_test(test_double_round_trip),
		cmocka_unit_test(test_double_matches_printf),
		cmocka_unit_test(test_u64),
		cmocka_unit_test(test_room_commit),
		cmocka_unit_test(test_label_plain),
		cmocka_unit_test(test_label_escapes),
		cmocka_unit_test(test_label_invalid_utf8),
		cmocka_unit_test(test_label_appends),
		cmocka_unit_test(test_label_truncation),
		cmocka_unit_test(test_label_cut_escape_whole),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
