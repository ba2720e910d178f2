// SPDX-License-Identifier: GPL-2.0
/* The metric registry: families hold series in hash tables keyed by their rendered labels. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

struct tapir_series {
	struct tapir_series *hnext;	  /* hash chain */
	struct tapir_series *prev, *next; /* the family's series in creation order */
	struct tapir_family *family;
	uint64_t hash;
	/*
	 * 'a="x",b="y"' with the values escaped, sanitised and cut: both the lookup key and
	 * what is printed, so label sets that print alike are one series and the exposition
	 * never repeats a series. Points into this allocation.
	 */
	const char *labels;
	size_t labels_len;
	double value;
	double sum;
	uint64_t count;
	/* Copied buckets (tapir_series__set_buckets): n_ext bounds, then n_ext cumulative counts,
	 * with value as the count; NULL for buckets of the family's own. */
	double *ext;
	size_t n_ext;
	uint64_t counts[]; /* per bucket, not cumulative; the last one is +Inf */
};

struct tapir_family {
	struct tapir_family *next;
	char *name;
	size_t name_len;
	struct tapir_buf header; /* the HELP (where there is one) and TYPE lines */
	enum tapir_metric_type type;
	/* 'a="' then '",b="' and so on: what goes before each value in a series' labels */
	struct tapir_buf label_text;
	size_t *label_off; /* n_labels + 1 offsets into label_text */
	size_t n_labels;
	double *bounds;
	size_t n_bounds;
	/* 'le="0.005"} ' for each bound and then +Inf, ready to follow the series labels */
	struct tapir_buf le_text;
	size_t *le_off; /* n_bounds + 2 offsets into le_text */
	struct tapir_series **table;
	size_t table_size; /* a power of two */
	size_t n_series;
	struct tapir_series *head, *tail;
	size_t max_series;
	uint64_t overflow;
	struct tapir_buf key; /* scratch for lookups */
};

struct tapir_registry {
	struct tapir_family *head, *tail;
};

static const char *const type_names[] = {
	[TAPIR_COUNTER] = "counter",
	[TAPIR_GAUGE] = "gauge",
	[TAPIR_HISTOGRAM] = "histogram",
};

static const char *const hist_suffixes[] = { "_bucket", "_sum", "_count" };

struct tapir_registry *tapir_registry__new(void)
{
	return calloc(1, sizeof(struct tapir_registry));
}

static void family_free(struct tapir_family *f)
{
	struct tapir_series *s, *next;

	for (s = f->head; s; s = next) {
		next = s->next;
		free(s->ext);
		free(s);
	}
	free(f->label_off);
	free(f->name);
	tapir_buf__free(&f->header);
	free(f->bounds);
	free(f->le_off);
	free(f->table);
	tapir_buf__free(&f->label_text);
	tapir_buf__free(&f->le_text);
	tapir_buf__free(&f->key);
	free(f);
}

void tapir_registry__free(struct tapir_registry *r)
{
	struct tapir_family *f, *next;

	if (!r)
		return;
	for (f = r->head; f; f = next) {
		next = f->next;
		family_free(f);
	}
	free(r);
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for metrics, the same without colons for labels. */
static bool valid_name(const char *s, bool colon)
{
	size_t i;

	if (!s || !*s)
		return false;
	for (i = 0; s[i]; i++)
		if (!is_alpha(s[i]) && !(colon && s[i] == ':') && !(i && is_digit(s[i])))
			return false;
	return true;
}

static bool valid_label_names(const char *const *names, size_t n, enum tapir_metric_type type)
{
	size_t i, j;

	if (n && !names)
		return false;
	for (i = 0; i < n; i++) {
		if (!valid_name(names[i], false) || !strncmp(names[i], "__", 2))
			return false;
		/* le is the bucket label */
		if (type == TAPIR_HISTOGRAM && !strcmp(names[i], "le"))
			return false;
		for (j = 0; j < i; j++)
			if (!strcmp(names[i], names[j]))
				return false;
	}
	return true;
}

/* Strictly increasing, no NaN, finite except an explicit trailing +Inf. */
static bool valid_buckets(const double *b, size_t n, enum tapir_metric_type type)
{
	size_t i;

	if (type != TAPIR_HISTOGRAM)
		return n == 0;
	if (n && !b)
		return false;
	for (i = 0; i < n; i++) {
		if (isnan(b[i]) || (isinf(b[i]) && (b[i] < 0 || i != n - 1)))
			return false;
		if (i && !(b[i] > b[i - 1]))
			return false;
	}
	return true;
}

/* Does @full read as histogram @base's _bucket, _sum or _count series? */
static bool is_hist_sample(const char *full, const char *base)
{
	size_t n = strlen(base), i;

	if (strncmp(full, base, n))
		return false;
	for (i = 0; i < sizeof(hist_suffixes) / sizeof(hist_suffixes[0]); i++)
		if (!strcmp(full + n, hist_suffixes[i]))
			return true;
	return false;
}

/* Two families whose sample names overlap would make one unreadable exposition. */
static bool name_taken(const struct tapir_registry *r, const char *name,
		       enum tapir_metric_type type)
{
	const struct tapir_family *f;

	for (f = r->head; f; f = f->next) {
		if (!strcmp(f->name, name))
			return true;
		if (f->type == TAPIR_HISTOGRAM && is_hist_sample(name, f->name))
			return true;
		if (type == TAPIR_HISTOGRAM && is_hist_sample(f->name, name))
			return true;
	}
	return false;
}

/* The HELP and TYPE lines, written once; HELP text escapes only backslash and newline. */
static int family_set_header(struct tapir_family *f, const char *help)
{
	struct tapir_buf *h = &f->header;
	const char *p;

	if (help) {
		tapir_buf__puts(h, "# HELP ");
		tapir_buf__append(h, f->name, f->name_len);
		tapir_buf__append(h, " ", 1);
		for (p = help; *p; p++) {
			if (*p == '\\' || *p == '\n')
				tapir_buf__append(h, *p == '\n' ? "\\n" : "\\\\", 2);
			else
				tapir_buf__append(h, p, 1);
		}
		tapir_buf__append(h, "\n", 1);
	}
	tapir_buf__puts(h, "# TYPE ");
	tapir_buf__append(h, f->name, f->name_len);
	tapir_buf__append(h, " ", 1);
	tapir_buf__puts(h, type_names[f->type]);
	tapir_buf__append(h, "\n", 1);
	return h->oom ? -ENOMEM : 0;
}

static int family_set_labels(struct tapir_family *f, const char *const *names, size_t n)
{
	size_t i;

	f->label_off = malloc((n + 1) * sizeof(*f->label_off));
	if (!f->label_off)
		return -ENOMEM;
	f->n_labels = n;
	for (i = 0; i < n; i++) {
		f->label_off[i] = f->label_text.len;
		if (i)
			tapir_buf__puts(&f->label_text, "\",");
		tapir_buf__puts(&f->label_text, names[i]);
		tapir_buf__puts(&f->label_text, "=\"");
	}
	f->label_off[n] = f->label_text.len;
	return f->label_text.oom ? -ENOMEM : 0;
}

static int family_set_buckets(struct tapir_family *f, const double *b, size_t n)
{
	size_t i;

	/* +Inf is always there, so an explicit one is dropped */
	if (n && isinf(b[n - 1]))
		n--;
	if (n) {
		f->bounds = malloc(n * sizeof(*f->bounds));
		if (!f->bounds)
			return -ENOMEM;
		memcpy(f->bounds, b, n * sizeof(*f->bounds));
	}
	f->n_bounds = n;
	f->le_off = malloc((n + 2) * sizeof(*f->le_off));
	if (!f->le_off)
		return -ENOMEM;
	for (i = 0; i <= n; i++) {
		f->le_off[i] = f->le_text.len;
		tapir_buf__puts(&f->le_text, "le=\"");
		tapir_buf__double(&f->le_text, i < n ? b[i] : INFINITY);
		tapir_buf__puts(&f->le_text, "\"} ");
	}
	f->le_off[n + 1] = f->le_text.len;
	return f->le_text.oom ? -ENOMEM : 0;
}

struct tapir_family *tapir_registry__family(struct tapir_registry *r, const char *name,
					    const char *help, enum tapir_metric_type type,
					    const char *const *label_names, size_t n_labels,
					    const double *buckets, size_t n_buckets)
{
	struct tapir_family *f;
	int err = -ENOMEM;

	if (!r || !valid_name(name, true) ||
	    (type != TAPIR_COUNTER && type != TAPIR_GAUGE && type != TAPIR_HISTOGRAM) ||
	    !valid_label_names(label_names, n_labels, type) ||
	    !valid_buckets(buckets, n_buckets, type)) {
		errno = EINVAL;
		return NULL;
	}
	if (name_taken(r, name, type)) {
		errno = EEXIST;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->type = type;
	tapir_buf__init(&f->header);
	tapir_buf__init(&f->label_text);
	tapir_buf__init(&f->le_text);
	tapir_buf__init(&f->key);
	f->table_size = 16;
	f->table = calloc(f->table_size, sizeof(*f->table));
	f->name = strdup(name);
	if (!f->table || !f->name)
		goto err_free;
	f->name_len = strlen(name);
	err = family_set_header(f, help);
	if (!err)
		err = family_set_labels(f, label_names, n_labels);
	if (!err && type == TAPIR_HISTOGRAM)
		err = family_set_buckets(f, buckets, n_buckets);
	if (err)
		goto err_free;

	if (r->tail)
		r->tail->next = f;
	else
		r->head = f;
	r->tail = f;
	return f;

err_free:
	family_free(f);
	errno = -err;
	return NULL;
}

void tapir_family__set_max_series(struct tapir_family *f, size_t max)
{
	f->max_series = max;
}

void tapir_registry__set_max_series(struct tapir_registry *r, size_t max)
{
	struct tapir_family *f;

	for (f = r->head; f; f = f->next)
		f->max_series = max;
}

uint64_t tapir_registry__overflow(const struct tapir_registry *r)
{
	const struct tapir_family *f;
	uint64_t sum = 0;

	for (f = r->head; f; f = f->next)
		sum += f->overflow;
	return sum;
}

size_t tapir_registry__n_series(const struct tapir_registry *r)
{
	const struct tapir_family *f;
	size_t sum = 0;

	for (f = r->head; f; f = f->next)
		sum += f->n_series;
	return sum;
}

uint64_t tapir_family__overflow(const struct tapir_family *f)
{
	return f->overflow;
}

size_t tapir_family__n_series(const struct tapir_family *f)
{
	return f->n_series;
}

/* Eight bytes a step with a multiply-xorshift mix: keys are a few hundred bytes at most. */
static uint64_t hash_bytes(const char *p, size_t n)
{
	uint64_t h = n * 0x9e3779b97f4a7c15ULL, w;

	for (; n >= sizeof(w); p += sizeof(w), n -= sizeof(w)) {
		memcpy(&w, p, sizeof(w));
		h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
		h ^= h >> 31;
	}
	if (n) {
		w = 0;
		memcpy(&w, p, n);
		h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

/* Double the table once there are as many series as slots; chains stay short on average. */
static int family_grow(struct tapir_family *f)
{
	size_t size = f->table_size * 2, i;
	struct tapir_series **table, *s;

	table = calloc(size, sizeof(*table));
	if (!table)
		return -ENOMEM;
	for (s = f->head; s; s = s->next) {
		i = s->hash & (size - 1);
		s->hnext = table[i];
		table[i] = s;
	}
	free(f->table);
	f->table = table;
	f->table_size = size;
	return 0;
}

/* The rendered label set of @values, in f->key. */
static int family_key(struct tapir_family *f, const char *const *values)
{
	const char *text = f->label_text.data;
	struct tapir_buf *key = &f->key;
	size_t i;

	tapir_buf__reset(key);
	for (i = 0; i < f->n_labels; i++) {
		tapir_buf__append(key, text + f->label_off[i],
				  f->label_off[i + 1] - f->label_off[i]);
		tapir_buf__label_value(key, values[i]);
	}
	if (f->n_labels)
		tapir_buf__append(key, "\"", 1);
	return key->oom ? -ENOMEM : 0;
}

static struct tapir_series *series_new(struct tapir_family *f, uint64_t hash)
{
	size_t n_counts = f->type == TAPIR_HISTOGRAM ? f->n_bounds + 1 : 0;
	struct tapir_series *s;
	char *labels;
	size_t i;

	s = calloc(1, sizeof(*s) + n_counts * sizeof(s->counts[0]) + f->key.len + 1);
	if (!s)
		return NULL;
	labels = (char *)&s->counts[n_counts];
	memcpy(labels, f->key.data, f->key.len + 1);
	s->labels = labels;
	s->labels_len = f->key.len;
	s->family = f;
	s->hash = hash;

	i = hash & (f->table_size - 1);
	s->hnext = f->table[i];
	f->table[i] = s;
	s->prev = f->tail;
	if (f->tail)
		f->tail->next = s;
	else
		f->head = s;
	f->tail = s;
	f->n_series++;
	return s;
}

struct tapir_series *tapir_series__get(struct tapir_family *f, const char *const *values)
{
	bool created;

	return tapir_series__get_new(f, values, &created);
}

struct tapir_series *tapir_series__get_new(struct tapir_family *f, const char *const *values,
					   bool *created)
{
	struct tapir_series *s;
	uint64_t hash;
	int err;

	*created = false;
	if (!f || (f->n_labels && !values)) {
		errno = EINVAL;
		return NULL;
	}
	err = family_key(f, values);
	if (err) {
		errno = -err;
		return NULL;
	}
	hash = hash_bytes(f->key.data, f->key.len);
	for (s = f->table[hash & (f->table_size - 1)]; s; s = s->hnext)
		if (s->hash == hash && s->labels_len == f->key.len &&
		    !memcmp(s->labels, f->key.data, f->key.len))
			return s;

	if (f->max_series && f->n_series >= f->max_series) {
		f->overflow++;
		errno = ENOSPC;
		return NULL;
	}
	/* A failed grow only lengthens the chains. */
	if (f->n_series >= f->table_size)
		family_grow(f);
	s = series_new(f, hash);
	if (!s)
		errno = ENOMEM;
	*created = s != NULL;
	return s;
}

void tapir_series__remove(struct tapir_family *f, struct tapir_series *s)
{
	struct tapir_series **pp;

	if (!f || !s || s->family != f)
		return;
	for (pp = &f->table[s->hash & (f->table_size - 1)]; *pp; pp = &(*pp)->hnext) {
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	}
	if (s->prev)
		s->prev->next = s->next;
	else
		f->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		f->tail = s->prev;
	f->n_series--;
	free(s->ext);
	free(s);
}

void tapir_series__add(struct tapir_series *s, double v)
{
	if (!s || s->family->type == TAPIR_HISTOGRAM)
		return;
	/* counters only go up */
	if (s->family->type == TAPIR_COUNTER && !(v >= 0))
		return;
	s->value += v;
}

void tapir_series__set(struct tapir_series *s, double v)
{
	if (!s || s->family->type == TAPIR_HISTOGRAM)
		return;
	s->value = v;
}

void tapir_series__observe(struct tapir_series *s, double v)
{
	const struct tapir_family *f;
	size_t lo = 0, hi, mid;

	if (!s || s->family->type != TAPIR_HISTOGRAM)
		return;
	f = s->family;
	/* the first bucket with v <= bound; NaN and values above every bound go to +Inf */
	hi = f->n_bounds;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (v <= f->bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	s->counts[lo]++;
	s->count++;
	s->sum += v;
}

void tapir_series__merge(struct tapir_series *s, const __u64 *counts, size_t n, double sum)
{
	size_t i;

	if (!s || s->family->type != TAPIR_HISTOGRAM)
		return;
	/* The aggregate has room for more buckets than the family: the rest are 0 but +Inf,
	 * which sits right after the family's last bound. */
	for (i = 0; i < n && i <= s->family->n_bounds; i++) {
		s->counts[i] += counts[i];
		s->count += counts[i];
	}
	s->sum += sum;
}

int tapir_series__set_buckets(struct tapir_series *s, const double *bounds,
			      const double *cumulative, size_t n, double sum, double count)
{
	double *ext;
	size_t i;

	if (!s || s->family->type != TAPIR_HISTOGRAM || !n || !isinf(bounds[n - 1]) ||
	    bounds[n - 1] < 0)
		return -EINVAL;
	for (i = 0; i < n; i++)
		if (isnan(bounds[i]) || (i && !(bounds[i] > bounds[i - 1])))
			return -EINVAL;
	if (n != s->n_ext) {
		ext = realloc(s->ext, 2 * n * sizeof(*ext));
		if (!ext)
			return -ENOMEM;
		s->ext = ext;
		s->n_ext = n;
	}
	memcpy(s->ext, bounds, n * sizeof(*bounds));
	memcpy(s->ext + n, cumulative, n * sizeof(*cumulative));
	s->sum = sum;
	s->value = count;
	return 0;
}

double tapir_series__value(const struct tapir_series *s)
{
	return s ? s->value : 0;
}

uint64_t tapir_series__count(const struct tapir_series *s)
{
	return s ? s->count : 0;
}

double tapir_series__sum(const struct tapir_series *s)
{
	return s ? s->sum : 0;
}

/* 'name_suffix{labels} ' or 'name_suffix ' at @p, which has room for it; returns its end. */
static char *put_sample_name(char *p, const struct tapir_family *f, const char *suffix,
			     size_t suffix_len, const struct tapir_series *s)
{
	p = mempcpy(p, f->name, f->name_len);
	p = mempcpy(p, suffix, suffix_len);
	if (s->labels_len) {
		*p++ = '{';
		p = mempcpy(p, s->labels, s->labels_len);
		*p++ = '}';
	}
	*p++ = ' ';
	return p;
}

/* A series with copied buckets: each bound printed here, not taken from the family. */
static void render_ext(struct tapir_buf *out, const struct tapir_family *f,
		       const struct tapir_series *s)
{
	size_t line =
		f->name_len + sizeof("_bucket{,le=\"\"} \n") + s->labels_len + 2 * TAPIR_NUM_MAX;
	char *p, *start;
	size_t i;

	p = start = tapir_buf__room(out, (s->n_ext + 2) * line);
	if (!p)
		return;
	for (i = 0; i < s->n_ext; i++) {
		p = mempcpy(p, f->name, f->name_len);
		p = mempcpy(p, "_bucket{", 8);
		if (s->labels_len) {
			p = mempcpy(p, s->labels, s->labels_len);
			*p++ = ',';
		}
		p = mempcpy(p, "le=\"", 4);
		p += tapir_fmt_double(p, s->ext[i]);
		p = mempcpy(p, "\"} ", 3);
		p += tapir_fmt_double(p, s->ext[s->n_ext + i]);
		*p++ = '\n';
	}
	p = put_sample_name(p, f, "_sum", 4, s);
	p += tapir_fmt_double(p, s->sum);
	*p++ = '\n';
	p = put_sample_name(p, f, "_count", 6, s);
	p += tapir_fmt_double(p, s->value);
	*p++ = '\n';
	tapir_buf__commit(out, p - start);
}

/* A series' lines, written straight into room reserved for all of them at once. */
static void render_series(struct tapir_buf *out, const struct tapir_family *f,
			  const struct tapir_series *s)
{
	/* name, suffix, braces, separator and space, value, newline: per line */
	size_t line = f->name_len + sizeof("_bucket{,} \n") + s->labels_len + TAPIR_NUM_MAX;
	char *p, *start;
	uint64_t cum = 0;
	size_t i;

	if (f->type != TAPIR_HISTOGRAM) {
		p = start = tapir_buf__room(out, line);
		if (!p)
			return;
		p = put_sample_name(p, f, "", 0, s);
		p += tapir_fmt_double(p, s->value);
		*p++ = '\n';
		tapir_buf__commit(out, p - start);
		return;
	}
	if (s->ext) {
		render_ext(out, f, s);
		return;
	}
	p = start = tapir_buf__room(out, (f->n_bounds + 3) * line + f->le_text.len);
	if (!p)
		return;
	for (i = 0; i <= f->n_bounds; i++) {
		cum += s->counts[i];
		p = mempcpy(p, f->name, f->name_len);
		p = mempcpy(p, "_bucket{", 8);
		if (s->labels_len) {
			p = mempcpy(p, s->labels, s->labels_len);
			*p++ = ',';
		}
		p = mempcpy(p, f->le_text.data + f->le_off[i], f->le_off[i + 1] - f->le_off[i]);
		p += tapir_fmt_u64(p, cum);
		*p++ = '\n';
	}
	p = put_sample_name(p, f, "_sum", 4, s);
	p += tapir_fmt_double(p, s->sum);
	*p++ = '\n';
	p = put_sample_name(p, f, "_count", 6, s);
	p += tapir_fmt_u64(p, s->count);
	*p++ = '\n';
	tapir_buf__commit(out, p - start);
}

int tapir_registry__render(struct tapir_registry *r, struct tapir_buf *out)
{
	const struct tapir_family *f;
	const struct tapir_series *s;

	for (f = r->head; f; f = f->next) {
		tapir_buf__append(out, f->header.data, f->header.len);
		for (s = f->head; s; s = s->next)
			render_series(out, f, s);
	}
	return out->oom ? -ENOMEM : 0;
}
