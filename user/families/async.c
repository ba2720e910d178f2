// SPDX-License-Identifier: GPL-2.0
/* Async inference: which requests are jobs, how long they queued, the queue, webhooks. */
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "async.h"
#include "grow.h"
#include "labels.h"
#include "reqline.h"

#define PATH_MAX_BYTES 1024 /* of a request path compared with the globs */
/* A job whose enqueue time is up to this far after its arrival queued 0 s: rounding of a
 * millisecond clock, not a clock from the future. */
#define FUTURE_SLACK_S 0.001

enum reason { R_ABSENT, R_MALFORMED, R_FUTURE, R_LOST, R_NOT_CAPTURED, R_COUNT };
static const char *const reason_names[R_COUNT] = { "absent", "malformed", "future", "lost",
						   "not_captured" };

/* The series of one label set, made when first needed. */
struct set {
	struct tapir_series *queue_time, *queue_size, *hooks, *hook_latency;
	struct tapir_series *unknown[R_COUNT];
	int64_t queued; /* jobs accepted and not yet dispatched, never below 0 */
};

struct tapir_async {
	struct tapir_family *queue_time, *queue_size, *hooks, *hook_latency, *unknown;
	struct set *sets; /* by labels_id */
	size_t n_sets;
};

static const char *const reason_extra[] = { "reason" };

struct tapir_async *tapir_async__new(struct tapir_registry *r, const struct tapir_config *cfg)
{
	struct tapir_async *a = calloc(1, sizeof(*a));
	const char *l[TAPIR_LABELS_MAX];
	size_t n = tapir_labels(l, tapir_label_names, NULL, 0);

	if (!a)
		return NULL;
	a->queue_time = tapir_registry__family(
		r, "baseten_time_in_async_queue_seconds",
		"Time async requests spend queued before processing.", TAPIR_HISTOGRAM, l, n,
		cfg->latency_buckets, cfg->n_latency_buckets);
	a->queue_size = tapir_registry__family(r, "baseten_async_queue_size",
					       "Number of queued async requests over time.",
					       TAPIR_GAUGE, l, n, NULL, 0);
	a->hooks = tapir_registry__family(
		r, "baseten_async_webhook_requests_total",
		"Cumulative number of async inference webhook delivery requests sent.",
		TAPIR_COUNTER, l, n, NULL, 0);
	a->hook_latency = tapir_registry__family(
		r, "baseten_async_webhook_latency_seconds",
		"Latency of async inference webhook delivery requests in seconds.", TAPIR_HISTOGRAM,
		l, n, cfg->latency_buckets, cfg->n_latency_buckets);
	n = tapir_labels(l, tapir_label_names, reason_extra, 1);
	a->unknown = tapir_registry__family(
		r, "tapir_async_queue_time_unknown_total",
		"Async requests whose enqueue time was absent, malformed, in the future, lost or not "
		"captured.",
		TAPIR_COUNTER, l, n, NULL, 0);
	if (!a->queue_time || !a->queue_size || !a->hooks || !a->hook_latency || !a->unknown) {
		free(a);
		errno = errno ? errno : EINVAL;
		return NULL;
	}
	return a;
}

void tapir_async__free(struct tapir_async *a)
{
	if (!a)
		return;
	free(a->sets);
	free(a);
}

static struct set *set_of(struct tapir_async *a, uint32_t labels_id)
{
	if (tapir_grow_zeroed((void **)&a->sets, &a->n_sets, labels_id, sizeof(*a->sets)))
		return NULL;
	return &a->sets[labels_id];
}

/* Series @s of family @f for @labels (and @extra), looked up once; NULL past the series cap. */
static struct tapir_series *series(struct tapir_series **s, struct tapir_family *f,
				   const char *const *labels, const char *extra)
{
	const char *v[TAPIR_LABELS_MAX];

	if (!*s) {
		tapir_labels(v, labels, extra ? &extra : NULL, extra ? 1 : 0);
		*s = tapir_series__get(f, v);
	}
	return *s;
}

const char *tapir_head_field(const char *head, size_t len, const char *name, size_t *vlen)
{
	const char *end = head + len, *p = memchr(head, '\n', len), *eol, *v, *ve;
	size_t nl = strlen(name);

	while (p && ++p < end) {
		eol = memchr(p, '\n', end - p);
		if (!eol)
			eol = end;
		if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
			for (v = p + nl + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
				;
			for (ve = eol;
			     ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'); ve--)
				;
			*vlen = ve - v;
			return v;
		}
		p = eol < end ? eol : NULL;
	}
	return NULL;
}

int tapir_async_enqueue_time(const char *value, size_t len, double *epoch_s)
{
	char buf[40], *endp;
	double v;
	size_t i;

	if (len >= 2 && value[0] == 't' && value[1] == '=') {
		value += 2;
		len -= 2;
	}
	if (!len || len >= sizeof(buf))
		return -EINVAL;
	/* Digits, at most one '.', nothing else: no sign, exponent, hex, inf or nan. */
	for (i = 0; i < len; i++)
		if (!(value[i] >= '0' && value[i] <= '9') && value[i] != '.')
			return -EINVAL;
	memcpy(buf, value, len);
	buf[len] = '\0';
	v = strtod(buf, &endp);
	if (*endp || !(v > 0) || !isfinite(v))
		return -EINVAL;
	if (v < 1e11)
		*epoch_s = v;
	else if (v < 1e14)
		*epoch_s = v / 1e3;
	else if (v < 1e17)
		*epoch_s = v / 1e6;
	else if (v < 1e20)
		*epoch_s = v / 1e9;
	else
		return -EINVAL;
	return 0;
}

static bool any_glob(char *const *globs, size_t n, const char *path)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!fnmatch(globs[i], path, 0))
			return true;
	return false;
}

/* What request @path (and its head, NULL when unknown) is to @rule. */
static int classify(const struct tapir_async_rule *rule, const char *path, const char *head,
		    size_t len)
{
	size_t vlen;
	const char *v;

	if (any_glob(rule->submit_paths, rule->n_submit_paths, path))
		return TAPIR_ASYNC_SUBMIT;
	if (any_glob(rule->paths, rule->n_paths, path))
		return TAPIR_ASYNC_JOB;
	if (rule->header && head && (v = tapir_head_field(head, len, rule->header, &vlen)) &&
	    (!rule->header_value ||
	     (vlen == strlen(rule->header_value) && !strncasecmp(v, rule->header_value, vlen))))
		return TAPIR_ASYNC_JOB;
	return 0;
}

static void unknown(struct tapir_async *a, struct set *s, const char *const *labels, enum reason r)
{
	tapir_series__add(series(&s->unknown[r], a->unknown, labels, reason_names[r]), 1);
}

/* The queue of @s moves by @d, never below 0 (jobs queued before tapir started). */
static void queue_move(struct tapir_async *a, struct set *s, const char *const *labels, int d)
{
	s->queued += d;
	if (s->queued < 0)
		s->queued = 0;
	tapir_series__set(series(&s->queue_size, a->queue_size, labels, NULL), (double)s->queued);
}

/* A job arrived at @arrival_s: its time in queue from its head's enqueue field. */
static void job_arrived(struct tapir_async *a, const struct tapir_async_rule *rule, struct set *s,
			const char *const *labels, double arrival_s, const char *head, size_t len)
{
	const char *v = NULL;
	double enq, q;
	size_t i, vlen;

	for (i = 0; i < rule->n_enqueue_headers && !v; i++)
		v = tapir_head_field(head, len, rule->enqueue_headers[i], &vlen);
	if (!v)
		unknown(a, s, labels, R_ABSENT);
	else if (tapir_async_enqueue_time(v, vlen, &enq))
		unknown(a, s, labels, R_MALFORMED);
	else if ((q = arrival_s - enq) < -FUTURE_SLACK_S)
		unknown(a, s, labels, R_FUTURE);
	else
		tapir_series__observe(series(&s->queue_time, a->queue_time, labels, NULL),
				      q > 0 ? q : 0);
}

int tapir_async__head(struct tapir_async *a, const struct tapir_async_rule *rule,
		      uint32_t labels_id, const char *const *labels, double arrival_s,
		      const char *head, size_t len)
{
	char path[PATH_MAX_BYTES];
	const char *eol = memchr(head, '\n', len);
	struct set *s = set_of(a, labels_id);
	int mark;

	tapir_request_path(head, eol ? (size_t)(eol - head) : len, path, sizeof(path));
	mark = classify(rule, path, head, len);
	if (!s)
		return TAPIR_ASYNC_SEEN | mark;
	if (rule->n_submit_paths && !s->queue_size)
		queue_move(a, s, labels, 0); /* a gateway's queue shows from its first request */
	if (mark & TAPIR_ASYNC_SUBMIT)
		queue_move(a, s, labels, 1);
	if (mark & TAPIR_ASYNC_JOB) {
		job_arrived(a, rule, s, labels, arrival_s, head, len);
		if (rule->n_submit_paths)
			queue_move(a, s, labels, -1);
	}
	return TAPIR_ASYNC_SEEN | mark;
}

static bool accepted(const struct tapir_http_event *e)
{
	return e->outcome == TAPIR_OUT_COMPLETE && e->status >= 200 && e->status < 300;
}

int tapir_async__record(struct tapir_async *a, const struct tapir_async_rule *rule,
			uint32_t labels_id, const char *const *labels,
			const struct tapir_http_event *e, int mark)
{
	char path[TAPIR_LINE_BYTES + 1];
	struct set *s = set_of(a, labels_id);
	enum reason why;

	if (mark >= 0) {
		/* Counted when it arrived: a submit refused or cut short leaves again. */
		if (s && (mark & TAPIR_ASYNC_SUBMIT) && !accepted(e))
			queue_move(a, s, labels, -1);
		return mark;
	}
	tapir_request_path((const char *)e->line, TAPIR_LINE_BYTES, path, sizeof(path));
	why = mark == TAPIR_ASYNC_NO_HEAD ? R_NOT_CAPTURED : R_LOST;
	mark = classify(rule, path, NULL, 0);
	if (!s)
		return mark;
	if ((mark & TAPIR_ASYNC_SUBMIT) && accepted(e))
		queue_move(a, s, labels, 1);
	if (mark & TAPIR_ASYNC_JOB) {
		unknown(a, s, labels, why);
		if (rule->n_submit_paths)
			queue_move(a, s, labels, -1);
	}
	return mark;
}

void tapir_async__outbound(struct tapir_async *a, const struct tapir_async_rule *rule,
			   uint32_t labels_id, const char *const *labels,
			   const struct tapir_http_event *e, const char *dest)
{
	size_t ml;
	struct set *s;

	if (!rule->webhook_destination || strcmp(dest, rule->webhook_destination))
		return;
	ml = strlen(rule->webhook_method);
	if (ml >= TAPIR_LINE_BYTES || memcmp(e->line, rule->webhook_method, ml) ||
	    e->line[ml] != ' ')
		return;
	s = set_of(a, labels_id);
	if (!s)
		return;
	tapir_series__add(series(&s->hooks, a->hooks, labels, NULL), 1);
	if (e->end_ns >= e->start_ns)
		tapir_series__observe(series(&s->hook_latency, a->hook_latency, labels, NULL),
				      (double)(e->end_ns - e->start_ns) / 1e9);
}

void tapir_async__forget(struct tapir_async *a, uint32_t labels_id, const char *const *labels)
{
	struct set *s;
	int r;

	(void)labels;
	if (!a || labels_id >= a->n_sets)
		return;
	s = &a->sets[labels_id];
	tapir_series__remove(a->queue_time, s->queue_time);
	tapir_series__remove(a->queue_size, s->queue_size);
	tapir_series__remove(a->hooks, s->hooks);
	tapir_series__remove(a->hook_latency, s->hook_latency);
	for (r = 0; r < R_COUNT; r++)
		tapir_series__remove(a->unknown, s->unknown[r]);
	*s = (struct set){ 0 };
}
