// SPDX-License-Identifier: GPL-2.0
/* Parses Prometheus text format 0.0.4 and OpenMetrics 1.0 line by line, refusing what is not. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "promtext.h"

struct parser {
	const char *p, *end; /* the current line, without its newline */
	size_t line;
	const char *reason;
	char *scratch; /* unescaped label values of the current sample */
	size_t used;
};

static const char *const type_names[] = {
	[TAPIR_PROM_UNTYPED] = "untyped",   [TAPIR_PROM_COUNTER] = "counter",
	[TAPIR_PROM_GAUGE] = "gauge",	    [TAPIR_PROM_HISTOGRAM] = "histogram",
	[TAPIR_PROM_SUMMARY] = "summary",   [TAPIR_PROM_INFO] = "info",
	[TAPIR_PROM_STATESET] = "stateset", [TAPIR_PROM_GAUGEHISTOGRAM] = "gaugehistogram",
};

static int fail(struct parser *ps, const char *reason)
{
	ps->reason = reason;
	return -EINVAL;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

static bool name_start(char c, bool colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool name_char(char c, bool colon)
{
	return name_start(c, colon) || (c >= '0' && c <= '9');
}

static void skip_space(struct parser *ps)
{
	while (ps->p < ps->end && is_space(*ps->p))
		ps->p++;
}

/* A metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or, without colons, a label name. */
static int name(struct parser *ps, bool colon, const char **s, size_t *len)
{
	const char *start = ps->p;

	if (ps->p == ps->end || !name_start(*ps->p, colon))
		return fail(ps, colon ? "expected a metric name" : "expected a label name");
	while (ps->p < ps->end && name_char(*ps->p, colon))
		ps->p++;
	*s = start;
	*len = ps->p - start;
	return 0;
}

/* The token up to the next blank or the end of the line. */
static size_t token(struct parser *ps, const char **s)
{
	*s = ps->p;
	while (ps->p < ps->end && !is_space(*ps->p))
		ps->p++;
	return ps->p - *s;
}

int tapir_prom_float(const char *s, size_t n, double *out, const char **why)
{
	static const char *const words[] = { "inf",	  "+inf",      "-inf", "infinity",
					     "+infinity", "-infinity", "nan" };
	char buf[64], *endp;
	size_t i, digits = 0;

	*why = "expected a number";
	if (!n || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcasecmp(buf, words[i]))
			goto convert;
	i = buf[0] == '+' || buf[0] == '-';
	for (; buf[i] >= '0' && buf[i] <= '9'; i++)
		digits++;
	if (buf[i] == '.')
		for (i++; buf[i] >= '0' && buf[i] <= '9'; i++)
			digits++;
	if (!digits)
		return -EINVAL;
	if (buf[i] == 'e' || buf[i] == 'E') {
		i++;
		if (buf[i] == '+' || buf[i] == '-')
			i++;
		if (buf[i] < '0' || buf[i] > '9') {
			*why = "bad exponent";
			return -EINVAL;
		}
		while (buf[i] >= '0' && buf[i] <= '9')
			i++;
	}
	*why = "junk in a number";
	if (buf[i])
		return -EINVAL;
convert:
	*why = "bad number";
	*out = strtod(buf, &endp);
	return *endp ? -EINVAL : 0;
}

/* A sample value or timestamp (tapir_prom_float()). */
static int number(struct parser *ps, double *out)
{
	const char *s, *why;
	size_t n = token(ps, &s);

	return tapir_prom_float(s, n, out, &why) ? fail(ps, why) : 0;
}

/* A quoted label value, unescaped into the scratch: \\, \" and \n are the only escapes. */
static int label_value(struct parser *ps, struct tapir_prom_label *l)
{
	char *out = ps->scratch + ps->used;
	size_t n = 0;

	if (ps->p == ps->end || *ps->p != '"')
		return fail(ps, "expected a quoted label value");
	for (ps->p++; ps->p < ps->end && *ps->p != '"'; ps->p++) {
		char c = *ps->p;

		if (c == '\\') {
			if (++ps->p == ps->end)
				break;
			c = *ps->p == 'n' ? '\n' : *ps->p;
			if (*ps->p != 'n' && *ps->p != '\\' && *ps->p != '"')
				return fail(ps, "unknown escape in a label value");
		}
		if (n == TAPIR_PROM_MAX_LABEL_LEN)
			return fail(ps, "label value too long");
		out[n++] = c;
	}
	if (ps->p == ps->end)
		return fail(ps, "unterminated label value");
	ps->p++;
	l->value = out;
	l->value_len = n;
	ps->used += n;
	return 0;
}

static int labels(struct parser *ps, struct tapir_prom_sample *s)
{
	struct tapir_prom_label *l;
	size_t i;
	int err;

	ps->p++; /* '{' */
	for (;;) {
		skip_space(ps);
		if (ps->p < ps->end && *ps->p == '}')
			break;
		if (s->n_labels == TAPIR_PROM_MAX_LABELS)
			return fail(ps, "too many labels");
		l = &s->labels[s->n_labels];
		err = name(ps, false, &l->name, &l->name_len);
		if (err)
			return err;
		for (i = 0; i < s->n_labels; i++)
			if (s->labels[i].name_len == l->name_len &&
			    !memcmp(s->labels[i].name, l->name, l->name_len))
				return fail(ps, "duplicate label");
		skip_space(ps);
		if (ps->p == ps->end || *ps->p != '=')
			return fail(ps, "expected '='");
		ps->p++;
		skip_space(ps);
		err = label_value(ps, l);
		if (err)
			return err;
		s->n_labels++;
		skip_space(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p == ps->end || *ps->p != '}')
			return fail(ps, "expected ',' or '}'");
		break;
	}
	ps->p++;
	return 0;
}

/* name{labels} value [timestamp] [# exemplar] */
static int sample_line(struct parser *ps, const struct tapir_prom_ops *ops, void *ctx,
		       struct tapir_prom_sample *s)
{
	double ts;
	int err;

	s->n_labels = 0;
	s->has_timestamp = false;
	ps->used = 0;
	err = name(ps, true, &s->name, &s->name_len);
	if (err)
		return err;
	if (ps->p < ps->end && *ps->p == '{') {
		err = labels(ps, s);
		if (err)
			return err;
	}
	if (ps->p == ps->end || !is_space(*ps->p))
		return fail(ps, "expected a blank before the value");
	skip_space(ps);
	err = number(ps, &s->value);
	if (err)
		return err;
	skip_space(ps);
	if (ps->p < ps->end && *ps->p != '#') {
		err = number(ps, &ts);
		if (err)
			return err;
		s->has_timestamp = true;
		skip_space(ps);
	}
	/* An OpenMetrics exemplar: " # {labels} value [timestamp]"; not kept. */
	if (ps->p < ps->end && (*ps->p != '#' || ps->p + 1 == ps->end || !is_space(ps->p[1])))
		return fail(ps, "junk after the value");
	return ops->sample ? ops->sample(ctx, s) : 0;
}

/* "# TYPE name type"; HELP, UNIT and other comments are skipped. */
static int comment_line(struct parser *ps, const struct tapir_prom_ops *ops, void *ctx)
{
	const char *word, *nm;
	size_t n, nlen, t;
	int err;

	ps->p++;
	skip_space(ps);
	n = token(ps, &word);
	if (n != 4 || memcmp(word, "TYPE", 4))
		return 0;
	skip_space(ps);
	err = name(ps, true, &nm, &nlen);
	if (err)
		return err;
	skip_space(ps);
	n = token(ps, &word);
	skip_space(ps);
	if (ps->p != ps->end)
		return fail(ps, "junk after the type");
	for (t = 0; t < sizeof(type_names) / sizeof(type_names[0]); t++)
		if (strlen(type_names[t]) == n && !memcmp(type_names[t], word, n))
			break;
	/* OpenMetrics calls it unknown. */
	if (t == sizeof(type_names) / sizeof(type_names[0])) {
		if (n != 7 || memcmp(word, "unknown", 7))
			return fail(ps, "unknown metric type");
		t = TAPIR_PROM_UNTYPED;
	}
	return ops->type ? ops->type(ctx, nm, nlen, (enum tapir_prom_type)t) : 0;
}

int tapir_prom_parse(const char *text, size_t len, size_t max_samples,
		     const struct tapir_prom_ops *ops, void *ctx, struct tapir_prom_error *err)
{
	struct parser ps = { .line = 0 };
	const char *next = text, *end = text + len, *nl;
	struct tapir_prom_sample *s;
	size_t samples = 0;
	bool eof = false;
	int ret = 0;

	s = malloc(sizeof(*s));
	ps.scratch = malloc(TAPIR_PROM_MAX_LABELS * TAPIR_PROM_MAX_LABEL_LEN);
	if (!s || !ps.scratch) {
		ret = -ENOMEM;
		goto out;
	}
	if (memchr(text, '\0', len)) {
		ps.line = 1;
		ret = fail(&ps, "NUL byte in the text");
		goto out;
	}
	while (!ret && next < end) {
		nl = memchr(next, '\n', end - next);
		ps.p = next;
		ps.end = nl ? nl : end;
		next = nl ? nl + 1 : end;
		ps.line++;
		if (ps.end > ps.p && ps.end[-1] == '\r')
			ps.end--;
		skip_space(&ps);
		if (ps.p == ps.end)
			continue;
		if (eof) {
			ret = fail(&ps, "text after # EOF");
			break;
		}
		if (*ps.p == '#') {
			if (ps.end - ps.p == 5 && !memcmp(ps.p, "# EOF", 5)) {
				eof = true;
				continue;
			}
			ret = comment_line(&ps, ops, ctx);
			continue;
		}
		if (max_samples && ++samples > max_samples) {
			ret = -E2BIG;
			break;
		}
		ret = sample_line(&ps, ops, ctx, s);
	}
out:
	if (ret && err) {
		err->line = ps.line;
		err->reason = ret == -EINVAL ? ps.reason : ret == -E2BIG ? "too many samples" : "";
	}
	free(s);
	free(ps.scratch);
	return ret;
}
