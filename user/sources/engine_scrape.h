/* SPDX-License-Identifier: GPL-2.0 */
/* The engine scraper: a thread that finds vLLM and SGLang in replicas and reads their /metrics. */
#ifndef TAPIR_ENGINE_SCRAPE_H
#define TAPIR_ENGINE_SCRAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "engine.h"

/* Why a scrape failed: tapir_engine_scrape_errors_total{reason}. */
enum tapir_engine_error {
	TAPIR_EE_NONE,
	TAPIR_EE_NETNS,		  /* the target's network namespace could not be entered */
	TAPIR_EE_CONNECT,	  /* refused or unreachable */
	TAPIR_EE_TIMEOUT,	  /* no whole answer within engines.timeout_ms */
	TAPIR_EE_HTTP_STATUS,	  /* an answer other than 200 (redirects are not followed) */
	TAPIR_EE_TOO_LARGE,	  /* a body over engines.max_body_bytes */
	TAPIR_EE_PROTOCOL,	  /* not HTTP, or the connection broke */
	TAPIR_EE_PARSE,		  /* not the Prometheus text format */
	TAPIR_EE_TOO_MANY_SERIES, /* over engines.max_series samples, or too many kept series */
	TAPIR_EE_INIT,		  /* libcurl could not be set up: nothing was sent */
	TAPIR_EE_STOPPED,	  /* the scraper's thread stopped: no engine is scraped any more */
	TAPIR_EE_COUNT,
};

const char *tapir_engine_error_name(enum tapir_engine_error e);
/* Whether a fetch that failed with @e should find the engine's port again before the next. */
bool tapir_engine_error__relocates(enum tapir_engine_error e);

/* A replica to look into, built by the main loop. */
struct tapir_engine_job {
	uint64_t replica_id;
	char **dirs; /* its cgroup directories (absolute): the replica's and those below it */
	size_t n_dirs;
	const struct tapir_engine_rule *rule; /* the engines rule that matched it, or NULL */
};

/* What a round found for a job. */
struct tapir_engine_outcome {
	uint64_t replica_id;
	enum tapir_engine_kind kind; /* TAPIR_ENGINE_NONE: no engine, or not listening yet */
	int pid;
	unsigned int port;
	enum tapir_engine_error error;
	struct tapir_engine_metrics metrics; /* a successful scrape's */
	uint64_t took_us;		     /* detection and scrape, on the scraper's thread */
};

struct tapir_engine_scraper;

/* Starts the scraper's thread. NULL with errno set on failure. */
struct tapir_engine_scraper *tapir_engine_scraper__new(const struct tapir_config *cfg,
						       int own_clients_fd);
/* Stops the thread (an answer being read is abandoned at once) and frees everything. */
void tapir_engine_scraper__free(struct tapir_engine_scraper *s);

/* Start a round over @jobs, which the scraper takes over (whatever the result). -EBUSY while
 * the previous round runs or its outcomes wait to be collected; -ESRCH once its thread has
 * stopped. */
int tapir_engine_scraper__submit(struct tapir_engine_scraper *s, struct tapir_engine_job *jobs,
				 size_t n);
/* 0 and the outcomes of a finished round, taken over by the caller (free with
 * __outcomes_free); a round without memory for them finishes with NULL and 0. -EAGAIN while
 * none is ready, -ESRCH once the thread has stopped (none will be). Never blocks on a round in
 * progress. */
int tapir_engine_scraper__collect(struct tapir_engine_scraper *s, struct tapir_engine_outcome **out,
				  size_t *n);
void tapir_engine_outcomes__free(struct tapir_engine_outcome *o, size_t n);
void tapir_engine_jobs__free(struct tapir_engine_job *jobs, size_t n);

#endif
