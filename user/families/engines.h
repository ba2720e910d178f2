/* SPDX-License-Identifier: GPL-2.0 */
/* vLLM and SGLang families: engine metrics re-exported per replica, and the baseten_llm_* ones. */
#ifndef TAPIR_ENGINES_H
#define TAPIR_ENGINES_H

#include <stdint.h>

#include "cgroups.h"
#include "config.h"
#include "registry.h"
#include "replicas.h"

struct tapir_engines;

/* NULL with errno 0 when nothing can be scraped (engines.enabled false and no rule names an
 * engine); NULL with errno set on failure. */
/* @own_clients_fd: the BPF map where a scrape's local port is put while it lasts, so that the
 * engine's HTTP families do not count tapir's own requests (-1: none). */
struct tapir_engines *tapir_engines__new(struct tapir_registry *reg, const struct tapir_config *cfg,
					 struct tapir_cgroups *cg, struct tapir_replicas *rs,
					 int own_clients_fd);
void tapir_engines__free(struct tapir_engines *e);

/* A turn of the main loop: take a finished round's figures, start the next round when due.
 * Never waits on a scrape. NULL-safe. */
void tapir_engines__tick(struct tapir_engines *e, uint64_t now_ms);
/* Before the exposition is rendered: a round that finished meanwhile shows in it. NULL-safe. */
void tapir_engines__refresh(struct tapir_engines *e, uint64_t now_ms);

/*
 * The baseten_llm_kv_cache_hit_rate family the engines registered (NULL-safe: NULL without
 * engines), for tapir_llm_metrics__new: one family, whose series these engines own.
 */
struct tapir_family *tapir_engines__hit_rate_family(const struct tapir_engines *e);

#endif
