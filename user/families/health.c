// SPDX-License-Identifier: GPL-2.0
/* tapir_* families: build info, programs attached, and a counter for every loss. */
#include <errno.h>
#include <stdlib.h>

#include <linux/types.h>

#include "tapir/http.h"
#include "health.h"

struct tapir_health {
	struct tapir_family *build, *prog, *lost, *evicted, *parse, *ignored, *upgraded, *fallback;
	struct tapir_family *records, *unlabelled, *watched, *dropped, *series, *kube, *web;
};

/* Where each BPF stat goes: family index, label value. */
enum { H_LOST, H_EVICTED, H_PARSE, H_IGNORED, H_UPGRADED, H_FALLBACK };
static const struct {
	int family;
	const char *reason;
} stat_map[TAPIR_STAT_MAX] = {
	[TAPIR_STAT_RINGBUF_LOST] = { H_LOST, "ringbuf_full" },
	[TAPIR_STAT_IO_TABLE_FULL] = { H_LOST, "syscall_table_full" },
	[TAPIR_STAT_CONN_TABLE_FULL] = { H_EVICTED, "table_full" },
	[TAPIR_STAT_CONN_REPLACED] = { H_EVICTED, "socket_reused" },
	[TAPIR_STAT_PARSE_REQUEST] = { H_PARSE, "request" },
	[TAPIR_STAT_PARSE_RESPONSE] = { H_PARSE, "response" },
	[TAPIR_STAT_SCAN_LIMIT] = { H_PARSE, "scan_limit" },
	[TAPIR_STAT_READ_FAULT] = { H_PARSE, "read_fault" },
	[TAPIR_STAT_PENDING_OVERFLOW] = { H_PARSE, "pipeline_overflow" },
	[TAPIR_STAT_STRAY_RESPONSE] = { H_PARSE, "stray_response" },
	[TAPIR_STAT_IGNORED_NOT_TCP] = { H_IGNORED, "not_tcp" },
	[TAPIR_STAT_IGNORED_NOT_HTTP] = { H_IGNORED, "not_http" },
	[TAPIR_STAT_IGNORED_TLS] = { H_IGNORED, "tls" },
	[TAPIR_STAT_IGNORED_HTTP2] = { H_IGNORED, "http2" },
	[TAPIR_STAT_UPGRADED] = { H_UPGRADED, NULL },
	[TAPIR_STAT_AMBIGUOUS_REQUEST] = { H_PARSE, "ambiguous_request" },
	[TAPIR_STAT_REQ_UNTRACKED] = { H_LOST, "connection_table_full" },
	[TAPIR_STAT_BEFORE_START] = { H_LOST, "before_start" },
	[TAPIR_STAT_AGG_FULL] = { H_FALLBACK, NULL },
	[TAPIR_STAT_IGNORED_SELF] = { H_IGNORED, "tapir" },
	[TAPIR_STAT_IGNORED_OUTBOUND] = { H_IGNORED, "outbound" },
	[TAPIR_STAT_H2_UNTRACKED] = { H_EVICTED, "http2_table_full" },
	[TAPIR_STAT_H2_FRAMING] = { H_PARSE, "http2_framing" },
	[TAPIR_STAT_H2_RINGBUF] = { H_LOST, "http2_ringbuf_full" },
	[TAPIR_STAT_H2_BLOCK_CAP] = { H_PARSE, "http2_header_block" },
	[TAPIR_STAT_H2_PRESTART] = { H_IGNORED, "http2_before_start" },
	[TAPIR_STAT_SEGMENT_GAP] = { H_PARSE, "segment_gap" },
	[TAPIR_STAT_SEGMENT_BUSY] = { H_LOST, "segment_busy" },
};

static const char *const reason[] = { "reason" };

struct tapir_health *tapir_health__new(struct tapir_registry *r)
{
	static const char *const build_labels[] = { "version", "revision" };
	static const char *const prog_labels[] = { "program", "feature", "variant", "reason" };
	struct tapir_health *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->build =
		tapir_registry__family(r, "tapir_build_info", "tapir build; the value is always 1.",
				       TAPIR_GAUGE, build_labels, 2, NULL, 0);
	h->prog = tapir_registry__family(r, "tapir_bpf_program_attached",
					 "1 if the BPF program is attached, 0 if this kernel "
					 "lacks its hook, refused it, or it failed to attach "
					 "(reason says which).",
					 TAPIR_GAUGE, prog_labels, 4, NULL, 0);
	h->records =
		tapir_registry__family(r, "tapir_records_total",
				       "Requests received from the kernel: aggregated there per "
				       "series, or sent one record each.",
				       TAPIR_COUNTER, NULL, 0, NULL, 0);
	h->lost = tapir_registry__family(r, "tapir_records_lost_total",
					 "Requests or syscalls the kernel side could not record.",
					 TAPIR_COUNTER, reason, 1, NULL, 0);
	h->unlabelled =
		tapir_registry__family(r, "tapir_records_unlabelled_total",
				       "Records from a cgroup whose labels were already forgotten.",
				       TAPIR_COUNTER, NULL, 0, NULL, 0);
	h->evicted = tapir_registry__family(
		r, "tapir_connections_evicted_total",
		"Connections not followed to their end: table full, or a socket address reused "
		"without an end seen.",
		TAPIR_COUNTER, reason, 1, NULL, 0);
	h->parse = tapir_registry__family(r, "tapir_parse_failures_total",
					  "HTTP/1.x framing tapir could not follow.", TAPIR_COUNTER,
					  reason, 1, NULL, 0);
	h->ignored = tapir_registry__family(r, "tapir_ignored_connections_total",
					    "Connections of watched cgroups that are not HTTP/1.x.",
					    TAPIR_COUNTER, reason, 1, NULL, 0);
	h->upgraded = tapir_registry__family(
		r, "tapir_upgraded_connections_total",
		"Connections that left HTTP/1.x through 101 Switching Protocols.", TAPIR_COUNTER,
		NULL, 0, NULL, 0);
	h->watched = tapir_registry__family(r, "tapir_watched_cgroups",
					    "Cgroups whose traffic is being followed.", TAPIR_GAUGE,
					    NULL, 0, NULL, 0);
	h->dropped = tapir_registry__family(
		r, "tapir_series_dropped_total",
		"New series refused because their family reached limits.max_series.", TAPIR_COUNTER,
		NULL, 0, NULL, 0);
	h->series = tapir_registry__family(r, "tapir_series",
					   "Series in the exposition, all families together.",
					   TAPIR_GAUGE, NULL, 0, NULL, 0);
	h->kube = tapir_registry__family(r, "tapir_kubelet_fetches_total",
					 "Fetches of the kubelet's /pods, by result (ok, error); "
					 "present when kubernetes.kubelet_url is set.",
					 TAPIR_COUNTER, (const char *const[]){ "result" }, 1, NULL,
					 0);
	h->fallback = tapir_registry__family(
		r, "tapir_aggregation_fallback_total",
		"Requests sent to the daemon as ring-buffer records, not aggregated in the kernel: "
		"the aggregation table (limits.aggregated_series) had no room for their series.",
		TAPIR_COUNTER, NULL, 0, NULL, 0);
	h->web = tapir_registry__family(r, "tapir_web_refused_total",
					"Requests and connections the /metrics endpoint refused or "
					"closed, by reason (see README: web).",
					TAPIR_COUNTER, reason, 1, NULL, 0);
	if (!h->fallback || !h->web || !h->kube || !h->dropped || !h->series || !h->build ||
	    !h->prog || !h->records || !h->lost || !h->unlabelled || !h->evicted || !h->parse ||
	    !h->ignored || !h->upgraded || !h->watched) {
		free(h);
		errno = EINVAL;
		return NULL;
	}
	return h;
}

void tapir_health__free(struct tapir_health *h)
{
	free(h);
}

static void set(struct tapir_family *f, const char *label, double v)
{
	const char *values[1] = { label };

	tapir_series__set(tapir_series__get(f, label ? values : NULL), v);
}

void tapir_health__update(struct tapir_health *h, const struct tapir_health_input *in)
{
	struct tapir_family *fams[] = { h->lost,    h->evicted,	 h->parse,
					h->ignored, h->upgraded, h->fallback };
	const char *bi[2] = { TAPIR_VERSION, TAPIR_GIT_REV };
	size_t i;

	tapir_series__set(tapir_series__get(h->build, bi), 1);
	for (i = 0; i < in->n_progs; i++) {
		const char *v[4] = { in->progs[i].name, in->progs[i].feature, in->progs[i].variant,
				     in->progs[i].attached ? "" : in->progs[i].reason };

		tapir_series__set(tapir_series__get(h->prog, v), in->progs[i].attached);
	}
	for (i = 0; i < TAPIR_STAT_MAX; i++) {
		if (!stat_map[i].reason && stat_map[i].family < H_UPGRADED)
			continue;
		set(fams[stat_map[i].family], stat_map[i].reason, (double)in->bpf_stats[i]);
	}
	set(h->lost, "lifecycle_events_full", (double)in->lifecycle_lost);
	set(h->records, NULL, (double)in->records);
	set(h->unlabelled, NULL, (double)in->unlabelled);
	set(h->watched, NULL, (double)in->watched_cgroups);
	set(h->dropped, NULL, (double)in->series_dropped);
	set(h->series, NULL, (double)in->series);
	for (i = 0; i < in->n_web_refused; i++)
		set(h->web, in->web_refused_names[i], (double)in->web_refused[i]);
	if (in->has_kube) {
		const char *ok[1] = { "ok" }, *err[1] = { "error" };

		tapir_series__set(tapir_series__get(h->kube, ok), (double)in->kube_ok);
		tapir_series__set(tapir_series__get(h->kube, err), (double)in->kube_failed);
	}
}
