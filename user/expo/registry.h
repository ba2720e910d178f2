/* SPDX-License-Identifier: GPL-2.0 */
/* Metric registry: families of counters, gauges and histograms, rendered at scrape time. */
#ifndef TAPIR_REGISTRY_H
#define TAPIR_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "buf.h"

enum tapir_metric_type { TAPIR_COUNTER, TAPIR_GAUGE, TAPIR_HISTOGRAM };

struct tapir_registry;
struct tapir_family;
struct tapir_series;

struct tapir_registry *tapir_registry__new(void);
void tapir_registry__free(struct tapir_registry *r);

/* A registry has one owner: the daemon's main loop updates and renders it, no lock. */

/*
 * Add a family. @label_names are copied. @buckets (histograms only, upper bounds, strictly
 * increasing, +Inf implied) are copied. Families render in the order they were added.
 * Returns NULL and sets errno on bad arguments or allocation failure.
 */
struct tapir_family *tapir_registry__family(struct tapir_registry *r, const char *name,
					    const char *help, enum tapir_metric_type type,
					    const char *const *label_names, size_t n_labels,
					    const double *buckets, size_t n_buckets);

/*
 * Limit the number of series of a family (0 = unlimited). Once reached, series__get for a
 * new label set returns NULL and the family's overflow count rises.
 */
void tapir_family__set_max_series(struct tapir_family *f, size_t max);
uint64_t tapir_family__overflow(const struct tapir_family *f);
size_t tapir_family__n_series(const struct tapir_family *f);
/* The same limit for every family added so far; the sum of their overflows and series. */
void tapir_registry__set_max_series(struct tapir_registry *r, size_t max);
uint64_t tapir_registry__overflow(const struct tapir_registry *r);
size_t tapir_registry__n_series(const struct tapir_registry *r);

/* The series for @values (n_labels strings, copied), created at zero on first use. */
struct tapir_series *tapir_series__get(struct tapir_family *f, const char *const *values);
/* As __get; *@created says whether this call made the series. Label sets that print alike are
 * one series, so a caller that removes what it holds takes only what it made: another's is not
 * its to remove. */
struct tapir_series *tapir_series__get_new(struct tapir_family *f, const char *const *values,
					   bool *created);
/* Forget a series (e.g. its container is gone). */
void tapir_series__remove(struct tapir_family *f, struct tapir_series *s);

void tapir_series__add(struct tapir_series *s, double v);     /* counters and gauges */
void tapir_series__set(struct tapir_series *s, double v);     /* gauges (and counters read
								 from an external total) */
void tapir_series__observe(struct tapir_series *s, double v); /* histograms */
/* Histograms: add @counts observations per bucket (not cumulative; the family's bounds, then
 * +Inf at index n_bounds; beyond it ignored, up to @n) whose values sum to @sum. */
void tapir_series__merge(struct tapir_series *s, const __u64 *counts, size_t n, double sum);
/*
 * Histograms copied from elsewhere (an engine's own buckets, whatever the family's): @n upper
 * bounds, strictly increasing and the last +Inf, with their cumulative counts, then the sum and
 * count. They replace what the series had and render instead of the family's buckets. 0,
 * -EINVAL (not a histogram, bad bounds) or -ENOMEM.
 */
int tapir_series__set_buckets(struct tapir_series *s, const double *bounds,
			      const double *cumulative, size_t n, double sum, double count);
double tapir_series__value(const struct tapir_series *s);
uint64_t tapir_series__count(const struct tapir_series *s); /* histograms */
double tapir_series__sum(const struct tapir_series *s);	    /* histograms */

/* Render every family in Prometheus text format 0.0.4. Returns 0 or -ENOMEM. */
int tapir_registry__render(struct tapir_registry *r, struct tapir_buf *out);

#endif
