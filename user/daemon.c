// SPDX-License-Identifier: GPL-2.0
/* The daemon's main loop: drain records, rescan cgroups, serve scrapes. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tapir/http.h"
#include "cgroups.h"
#include "daemon.h"
#include "engines.h"
#include "health.h"
#include "http_agg.h"
#include "http_metrics.h"
#include "llm_metrics.h"
#include "outbound.h"
#include "async.h"
#include "reqline.h"
#include "llm_track.h"
#include "loader.h"
#include "log.h"
#include "registry.h"
#include "replicas.h"
#include "gpu.h"
#include "grpc.h"
#include "h2_track.h"
#include "h2_pair.h"
#include "pod_id.h"
#include "podmeta.h"
#include "procfs.h"
#include "server.h"

#define POLL_MS	   50	 /* longest a record waits in the ring before it is counted */
#define RESCAN_MS  2000	 /* periodic cgroup rescan, a safety net behind cgroup_mkdir events */
#define PUBLISH_MS 10000 /* exposition rebuilt at least this often without scrapes */
#define AGG_MS	   1000	 /* the kernel's aggregates read at least this often */
/* An LLM request with no piece for this long is looked for in the conns map: gone, it is lost. */
#define LLM_IDLE_NS (5 * 1000000000ULL)

struct tapir_daemon {
	const struct tapir_config *cfg;
	struct tapir_registry *reg;
	struct tapir_http_metrics *http;
	struct tapir_http_agg *agg; /* reads http_agg: what the kernel aggregated */
	struct tapir_health *health;
	struct tapir_loader *loader;
	struct tapir_cgroups *cgroups;
	struct tapir_replicas *replicas;
	struct tapir_gpu *gpu;	    /* NULL on nodes without NVIDIA GPUs */
	struct tapir_podmeta *kube; /* NULL without kubernetes.kubelet_url */
	uint64_t kube_gen;	    /* generation the pending labels were last resolved at */
	struct tapir_server *server;
	/* vLLM and SGLang scrapes (engines.c); NULL when off. */
	struct tapir_engines *engines;
	/* LLM token metrics: payload pieces from llm_events, parsed per request; NULL when off. */
	struct ring_buffer *llm_rb;
	struct tapir_llm_track *llm;
	struct tapir_llm_metrics *llm_metrics;
	struct llm_gauge *llm_gauges; /* (label set, pod) pairs baseten_llm_num_requests showed */
	size_t n_llm_gauges;
	uint64_t llm_lost[TAPIR_LLM_LOST_REASONS]; /* the kernel's counts, as last exported */
	uint64_t last_llm_expire_ms;
	/* HTTP/2: frames from h2_events, one request per stream; NULL where it is not followed. */
	struct ring_buffer *h2_rb;
	struct tapir_h2_track *h2;
	struct tapir_h2_pair *h2_pair; /* h2c upgrades: the 101 record and stream 1, as one */
	struct tapir_grpc_metrics *grpc;
	struct tapir_outbound *outbound; /* requests the watched processes send */
	struct tapir_async *async;	 /* deployments[].async: jobs, queue, webhooks */
	volatile sig_atomic_t stop;
	volatile sig_atomic_t reload; /* SIGHUP: read the web settings again */
	int rescan;		      /* a cgroup appeared or went since the last scan */
	uint64_t records, unlabelled;
	uint64_t last_agg_ms;
	int ncpus;
	int pin_lock; /* flock'd pin directory, -1 without pins */
	/* The exposition: built by the main loop into `building`, swapped into `published`
	 * under expo_lock, which the server thread holds only to copy it out. */
	struct tapir_buf building, published;
	int published_err;
	uint64_t published_gen, wanted_gen, last_publish_ms;
	pthread_mutex_t expo_lock;
	int epfd;    /* the main loop's: the ring buffers and wake_fd */
	int wake_fd; /* eventfd: a scrape wants an exposition */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/* A pair of baseten_llm_num_requests, and the requests counted in it this round. */
struct llm_gauge {
	uint32_t labels_id;
	char pod[TAPIR_POD_ID_HEX + 1];
	double n;
};

/* _internal_pod_id of cgroup @w: its replica's (as the engine families compute it). */
static void pod_of(struct tapir_daemon *d, const struct tapir_watched *w, char *pod)
{
	const struct tapir_watched *r = w ? tapir_cgroups__find(d->cgroups, w->replica_id) : NULL;

	if (!w) {
		pod[0] = '\0';
		return;
	}
	tapir_pod_id(r ? r->rel : w->rel, pod);
}

/* The pair (@id, @pod) of the LLM families' series, remembered so that forget() finds it. */
static struct llm_gauge *llm_pair(struct tapir_daemon *d, uint32_t id, const char *pod)
{
	struct llm_gauge *g;
	size_t i;

	for (i = 0; i < d->n_llm_gauges; i++)
		if (d->llm_gauges[i].labels_id == id && !strcmp(d->llm_gauges[i].pod, pod))
			return &d->llm_gauges[i];
	g = realloc(d->llm_gauges, (i + 1) * sizeof(*g));
	if (!g)
		return NULL;
	d->llm_gauges = g;
	d->n_llm_gauges++;
	g[i].labels_id = id;
	snprintf(g[i].pod, sizeof(g[i].pod), "%s", pod);
	g[i].n = 0;
	return &g[i];
}

/* An LLM request is over (llm_track.c): its tokens into the LLM families. */
static void llm_done(void *ctx, const struct tapir_llm_who *who, const struct tapir_llm_result *res)
{
	struct tapir_daemon *d = ctx;
	const struct tapir_watched *w = tapir_cgroups__find(d->cgroups, who->cgroup_id);
	uint32_t id = w ? w->labels_id : who->labels_id;
	const char *const *labels = tapir_cgroups__labels(d->cgroups, id);
	char pod[TAPIR_POD_ID_HEX + 1];

	if (who->outbound) {
		/* A request the deployment sent: not its own tokens, the destination's. */
		if (labels)
			tapir_outbound__llm(d->outbound, id, labels, who->sock, who->head, res);
		return;
	}
	if (!labels && !(res->flags & TAPIR_LLM_UNPARSED))
		return; /* counted unlabelled with its request record */
	pod_of(d, w, pod);
	if (labels)
		llm_pair(d, id, pod);
	tapir_llm_metrics__record(d->llm_metrics, id, labels, pod, res);
}

/*
 * Is the path of LLM request @e one its cgroup's rule follows? The kernel's table is one for
 * all rules: a path only another rule's llm list names is not this deployment's.
 */
static bool llm_path_ours(struct tapir_daemon *d, const struct tapir_http_event *e)
{
	const struct tapir_watched *w = tapir_cgroups__find(d->cgroups, e->cgroup_id);
	char path[TAPIR_LINE_BYTES + 1];
	const struct tapir_rule *r;
	size_t len, i;

	/* LLM capture off (request heads only, for async rules): no LLM request at all. */
	if (!d->cfg->llm_enabled ||
	    (w && w->rule < d->cfg->n_rules && d->cfg->rules[w->rule].no_llm))
		return false;
	if (strncmp((const char *)e->line, "POST /", 6))
		return false;
	tapir_request_path((const char *)e->line, TAPIR_LINE_BYTES, path, sizeof(path));
	len = strlen(path);
	if (tapir_llm_api_of_path(path) != TAPIR_LLM_NONE)
		return true;
	if (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	for (i = 0; i < d->cfg->n_llm_paths; i++)
		if (!strcmp(path, d->cfg->llm_paths[i]))
			return true;
	if (!w || w->rule >= d->cfg->n_rules)
		return false;
	r = &d->cfg->rules[w->rule];
	for (i = 0; i < r->n_llm_paths; i++)
		if (!strcmp(path, r->llm_paths[i]))
			return true;
	return false;
}

/* Does the connection of socket @sock still hold LLM request (@id, @start_ns)? A request that
 * waits long for its answer is still there; one given up on (a parse failure) is not. */
static bool llm_alive(void *ctx, uint64_t sock, uint32_t id, uint64_t start_ns)
{
	struct tapir_daemon *d = ctx;
	struct tapir_conn_key key = { .sock = sock };
	struct tapir_conn c;
	__u32 i, slot;

	if (bpf_map_lookup_elem(tapir_loader__conns_fd(d->loader), &key, &c))
		return false;
	for (i = 0; i < c.count && i < TAPIR_MAX_PENDING; i++) {
		slot = (c.head + i) & (TAPIR_MAX_PENDING - 1);
		if (c.llm_id[slot] == id && c.start_ns[slot] == start_ns)
			return true;
	}
	return false;
}

static int on_llm_chunk(void *ctx, void *data, size_t size)
{
	struct tapir_daemon *d = ctx;

	tapir_llm_track__chunk(d->llm, data, size);
	return 0;
}

static void llm_count(void *ctx, uint32_t labels_id, uint64_t cgroup_id)
{
	struct tapir_daemon *d = ctx;
	const struct tapir_watched *w = tapir_cgroups__find(d->cgroups, cgroup_id);
	char pod[TAPIR_POD_ID_HEX + 1];
	struct llm_gauge *g;

	pod_of(d, w, pod);
	g = llm_pair(d, w ? w->labels_id : labels_id, pod);
	if (g)
		g->n++;
}

/* baseten_llm_num_requests from the requests in flight; a pair that had some shows 0 after. */
static void refresh_llm(struct tapir_daemon *d, const uint64_t *stats)
{
	static const __u32 lost_stat[TAPIR_LLM_LOST_REASONS] = {
		[TAPIR_LLM_LOST_DROPPED] = TAPIR_STAT_LLM_DROPPED,
		[TAPIR_LLM_LOST_CAP] = TAPIR_STAT_LLM_CAP,
		[TAPIR_LLM_LOST_UNREADABLE] = TAPIR_STAT_LLM_UNREADABLE,
	};
	const char *const *labels;
	size_t i;

	if (!d->llm)
		return;
	for (i = 0; i < d->n_llm_gauges; i++)
		d->llm_gauges[i].n = 0;
	tapir_llm_track__each(d->llm, llm_count, d);
	for (i = 0; i < d->n_llm_gauges; i++) {
		labels = tapir_cgroups__labels(d->cgroups, d->llm_gauges[i].labels_id);
		if (labels)
			tapir_llm_metrics__set_in_flight(d->llm_metrics, labels,
							 d->llm_gauges[i].pod, d->llm_gauges[i].n);
	}
	for (i = 0; i < TAPIR_LLM_LOST_REASONS; i++) {
		if (stats[lost_stat[i]] > d->llm_lost[i])
			tapir_llm_metrics__payload_lost(d->llm_metrics, i,
							stats[lost_stat[i]] - d->llm_lost[i]);
		d->llm_lost[i] = stats[lost_stat[i]];
	}
}

/*
 * The labels of @n requests of cgroup @cgroup_id recorded under label set @labels_id: the
 * cgroup's current ones (they may have been resolved from its environment since the connection
 * began), the record's own for a cgroup already gone; NULL, counted unlabelled, for none. Sets
 * *@wp to the cgroup (NULL when gone) and *@idp to the label set used.
 */
static const char *const *record_labels(struct tapir_daemon *d, uint64_t cgroup_id,
					uint32_t labels_id, uint64_t n,
					const struct tapir_watched **wp, uint32_t *idp)
{
	const struct tapir_watched *w = tapir_cgroups__find(d->cgroups, cgroup_id);
	const char *const *labels;

	*wp = w;
	*idp = w ? w->labels_id : labels_id;
	labels = tapir_cgroups__labels(d->cgroups, *idp);
	d->records += n;
	if (!labels)
		d->unlabelled += n;
	return labels;
}

/* The async rules of cgroup @w, NULL for none. */
static const struct tapir_async_rule *async_of(struct tapir_daemon *d,
					       const struct tapir_watched *w)
{
	return w && w->rule < d->cfg->n_rules ? d->cfg->rules[w->rule].async : NULL;
}

/*
 * A request's head arrived whole (llm_track.c): an async rule's job or submit is seen now, when
 * it arrives, not when it is answered. Returns its mark (TAPIR_ASYNC_*) for the record.
 */
static int on_head(void *ctx, uint32_t labels_id, uint64_t cgroup_id, uint64_t start_ns,
		   const char *head, size_t len)
{
	struct tapir_daemon *d = ctx;
	const struct tapir_watched *w = tapir_cgroups__find(d->cgroups, cgroup_id);
	const struct tapir_async_rule *rule = async_of(d, w);
	const char *const *labels;
	struct timespec real, mono;

	(void)labels_id;
	if (!rule || !(labels = tapir_cgroups__labels(d->cgroups, w->labels_id)))
		return 0;
	/* The kernel's clock is CLOCK_MONOTONIC; enqueue times are wall-clock times. */
	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	return tapir_async__head(d->async, rule, w->labels_id, labels,
				 (double)start_ns / 1e9 + (double)(real.tv_sec - mono.tv_sec) +
					 (double)(real.tv_nsec - mono.tv_nsec) / 1e9,
				 head, len);
}

static void account(struct tapir_daemon *d, const struct tapir_http_event *e,
		    const struct tapir_h2_result *r)
{
	const struct tapir_watched *w;
	uint32_t id;
	const char *const *labels = record_labels(d, e->cgroup_id, e->labels_id, 1, &w, &id);
	const struct tapir_async_rule *rule = async_of(d, w);
	int mark = 0;

	if (!labels)
		return;
	if (rule) {
		mark = !e->llm_id ? TAPIR_ASYNC_NO_HEAD
		       : d->llm	  ? tapir_llm_track__mark(d->llm, e)
				  : TAPIR_ASYNC_LOST;
		mark = tapir_async__record(d->async, rule, id, labels, e, mark);
	}
	/* One label set id for the series cache and the label text, so replicas of one rule
	 * with different environments are never merged. A submit is a job queued, not an
	 * inference. */
	if (!(mark & TAPIR_ASYNC_SUBMIT))
		tapir_http_metrics__record(d->http, e, mark & TAPIR_ASYNC_JOB, id, labels);
	tapir_cgroups__mark_served(d->cgroups, id);
	if (w) /* the cgroup is looked up once per record: here */
		tapir_replicas__request(d->replicas, w->replica_id, e);
	if (r) /* an HTTP/2 stream: a gRPC call when it has a status */
		tapir_grpc_metrics__record(d->grpc, id, labels, r->grpc_status);
}

/* A request a watched process sent. */
static void account_out(struct tapir_daemon *d, const struct tapir_http_event *e)
{
	const struct tapir_watched *w;
	uint32_t id;
	const char *const *labels = record_labels(d, e->cgroup_id, e->labels_id, 1, &w, &id);
	const struct tapir_async_rule *rule = async_of(d, w);
	const char *dest;

	if (!labels)
		return;
	dest = tapir_outbound__record(d->outbound, e, id, labels);
	if (rule)
		tapir_async__outbound(d->async, rule, id, labels, e, dest);
}

/* What the kernel aggregated for a series since the last read: as many records at once. */
static void account_agg(void *ctx, const struct tapir_agg_key *k, const struct tapir_agg *delta)
{
	struct tapir_daemon *d = ctx;
	const struct tapir_watched *w;
	uint32_t id;
	const char *const *labels =
		record_labels(d, k->cgroup_id, k->labels_id, delta->requests, &w, &id);

	if (!labels)
		return;
	tapir_http_metrics__merge(d->http, id, labels, k->status, delta);
	tapir_cgroups__mark_served(d->cgroups, id);
	/* Possible probes never aggregate: these are requests, the latest at last_ns. */
	if (w && delta->requests)
		tapir_replicas__signal(d->replicas, w->replica_id, false, k->status,
				       delta->last_ns);
}

static void read_agg(struct tapir_daemon *d)
{
	int n = tapir_http_agg__read(d->agg, account_agg, d);

	if (n < 0)
		pr_debug("reading the kernel's aggregates: %s", strerror(-n));
	d->last_agg_ms = now_ms();
}

/* A label set whose cgroups are all gone, past the grace period: its series go. */
static void forget(void *ctx, uint32_t id, const char *const *labels)
{
	struct tapir_daemon *d = ctx;
	size_t i;

	/* The kernel's last figures for it first, then its series go. */
	tapir_http_agg__forget(d->agg, id, account_agg, d);
	tapir_http_metrics__forget(d->http, id, labels);
	tapir_replicas__forget(d->replicas, id, labels);
	tapir_outbound__forget(d->outbound, id, labels);
	tapir_grpc_metrics__forget(d->grpc, id, labels);
	tapir_async__forget(d->async, id, labels);
	for (i = 0; i < d->n_llm_gauges;) {
		if (d->llm_gauges[i].labels_id != id) {
			i++;
			continue;
		}
		tapir_llm_metrics__forget(d->llm_metrics, labels, d->llm_gauges[i].pod);
		d->llm_gauges[i] = d->llm_gauges[--d->n_llm_gauges];
	}
	tapir_llm_metrics__forget_deployment(d->llm_metrics, labels);
}

/* A request of HTTP/2 (@r, the stream) or of an h2c upgrade (@r NULL: a 101 alone), counted. */
static void h2_account(void *ctx, const struct tapir_http_event *e, const struct tapir_h2_result *r)
{
	account(ctx, e, r);
}

/* An HTTP/2 stream is over (h2_track.c): a request, and a gRPC call when it has a status. */
static void h2_done(void *ctx, const struct tapir_h2_who *who, const struct tapir_h2_result *r)
{
	struct tapir_daemon *d = ctx;
	struct tapir_http_event e;

	if (r->flags & TAPIR_H2_R_UPGRADE) {
		tapir_h2_pair__stream(d->h2_pair, who, r, now_ms());
		return;
	}
	tapir_h2_track__event(who, r, &e);
	account(d, &e, r);
}

static int on_h2(void *ctx, void *data, size_t size)
{
	struct tapir_daemon *d = ctx;
	const struct tapir_h2_rec *e = data;

	tapir_h2_track__record(d->h2, data, size);
	if (size < sizeof(*e) ||
	    (e->kind != TAPIR_H2R_OPEN && e->kind != TAPIR_H2R_CLOSE && e->kind != TAPIR_H2R_ERROR))
		return 0;
	/* A connection that began or ended: a 101 held for an earlier one at this address is
	 * settled (its stream 1 reported or counted lost); an h2c upgrade's 101 waits for its
	 * stream 1 (h2_pair.h), if h2_track had room to follow it. */
	tapir_h2_pair__end(d->h2_pair, e->sock);
	if (e->kind == TAPIR_H2R_OPEN && e->value == TAPIR_H2_OPEN_UPGRADE &&
	    tapir_h2_track__follows(d->h2, e->sock))
		tapir_h2_pair__open(d->h2_pair, e->sock, now_ms());
	return 0;
}

/* HTTP/2: its families, and a reader of h2_events where the HTTP programs fill it. */
static int h2_start(struct tapir_daemon *d)
{
	int fd = tapir_loader__h2_fd(d->loader);

	d->grpc = tapir_grpc_metrics__new(d->reg);
	if (!d->grpc)
		return -errno;
	if (fd < 0) {
		pr_info("http2: not followed by the HTTP programs loaded: its connections count "
			"as ignored (http2)");
		return 0;
	}
	d->h2 = tapir_h2_track__new(d->cfg->max_connections, h2_done, d);
	d->h2_pair = tapir_h2_pair__new(4096, h2_account, d);
	if (!d->h2 || !d->h2_pair)
		return -errno;
	d->h2_rb = ring_buffer__new(fd, on_h2, d, NULL);
	return d->h2_rb ? 0 : -errno;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct tapir_daemon *d = ctx;
	__u32 type;

	if (size < sizeof(type))
		return 0;
	memcpy(&type, data, sizeof(type));
	if (type == TAPIR_REC_HTTP && size >= sizeof(struct tapir_http_event)) {
		const struct tapir_http_event *e = data;

		/* Its pieces went to llm_events before this record was written: its head (and
		 * its async mark) is known before it is counted. */
		if (e->llm_id && d->llm)
			ring_buffer__consume(d->llm_rb);
		/* A 101 may be an h2c upgrade: its answer comes on stream 1 of HTTP/2. */
		if (e->outcome == TAPIR_OUT_UPGRADED && d->h2_pair)
			tapir_h2_pair__request(d->h2_pair, e, now_ms());
		else
			account(d, e, NULL);
		if (e->llm_id && d->llm)
			tapir_llm_track__record(d->llm, e, llm_path_ours(d, e));
	} else if (type == TAPIR_REC_HTTP_OUT && size >= sizeof(struct tapir_http_event)) {
		const struct tapir_http_event *e = data;

		if (e->llm_id && d->llm)
			ring_buffer__consume(d->llm_rb);
		account_out(d, e);
		if (e->llm_id && d->llm)
			tapir_llm_track__record(d->llm, e, llm_path_ours(d, e));
	} else if (type == TAPIR_REC_CONN_OUT && size >= sizeof(struct tapir_conn_out_event)) {
		tapir_outbound__conn(d->outbound, data);
	} else if (type == TAPIR_REC_LIFECYCLE && size >= sizeof(struct tapir_lifecycle_event)) {
		const struct tapir_lifecycle_event *e = data;

		if (e->what == TAPIR_LC_MKDIR || e->what == TAPIR_LC_RMDIR) {
			/* After the batch, not inside it: a rescan walks the whole tree, and the
			 * records behind this one need not wait for it (BPF reports processes
			 * only of cgroups already in the map, so none is lost by waiting). */
			d->rescan = 1;
		} else {
			if (e->what == TAPIR_LC_EXEC)
				tapir_cgroups__exec(d->cgroups, e->cgroup_id, e->tgid);
			tapir_replicas__lifecycle(d->replicas, e, now_ms());
		}
	}
	return 0;
}

/* The socket-buffer hooks, when they run, on the top-most watched cgroups of this scan. */
static void cover(struct tapir_daemon *d)
{
	const struct tapir_watched **tops;
	ssize_t n;

	if (!tapir_loader__skb_hooks(d->loader))
		return; /* the other hooks filter by cgroup in the kernel: nothing to hang */
	n = tapir_cgroups__tops(d->cgroups, &tops);
	if (n < 0)
		return; /* out of memory: the hooks stay where they hang, the next scan tries again */
	tapir_loader__cover(d->loader, tapir_cgroups__root(d->cgroups), tops, (size_t)n);
	free(tops);
}

/* The connections of one process found at start, and what to enter them with. */
struct prestart {
	int prestart_fd;
	int pid;
	const struct tapir_watched *w;
	unsigned int ports[256]; /* listening ports of its network namespace */
	size_t n_ports;
	size_t seeded;
};

static void prestart_sock(void *ctx, const struct tapir_proc_sock *s)
{
	struct prestart *p = ctx;
	__u64 key = s->inode, cgid = p->w->id;
	size_t i;

	if (s->state != TAPIR_TCP_ESTABLISHED || !s->inode)
		return;
	for (i = 0; i < p->n_ports && p->ports[i] != s->lport; i++)
		;
	if (i == p->n_ports)
		return; /* not accepted on a listening port: an outbound connection */
	if (!bpf_map_update_elem(p->prestart_fd, &key, &cgid, BPF_NOEXIST))
		p->seeded++;
}

/*
 * Server-side connections open before the programs were attached (a restart under load) may be
 * mid-request: enter them so that an answer to a request tapir never saw begin is counted
 * (tapir_records_lost_total{reason="before_start"}) and their next request is followed.
 */
static void seed_prestart(struct tapir_daemon *d)
{
	struct prestart p = { .prestart_fd = tapir_loader__prestart_fd(d->loader) };
	char path[4608];
	size_t n, i;
	FILE *f;

	if (p.prestart_fd < 0)
		return;
	p.w = tapir_cgroups__watched(d->cgroups, &n);
	for (i = 0; i < n; i++, p.w++) {
		snprintf(path, sizeof(path), "%s%s/cgroup.procs", tapir_cgroups__root(d->cgroups),
			 p.w->rel);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fscanf(f, "%d", &p.pid) == 1) {
			if (p.pid == getpid())
				continue;
			p.n_ports = tapir_proc_listen_ports(p.pid, p.ports, 256);
			if (p.n_ports)
				tapir_proc_tcp_fds(p.pid, prestart_sock, &p);
		}
		fclose(f);
	}
	if (p.seeded)
		pr_info("%zu connections were open before start: followed from their next request",
			p.seeded);
}

static void read_stats(struct tapir_daemon *d, uint64_t *sum)
{
	int fd = tapir_loader__stats_fd(d->loader);
	uint64_t vals[d->ncpus];
	__u32 k;
	int c;

	memset(sum, 0, TAPIR_STAT_MAX * sizeof(*sum));
	for (k = 0; k < TAPIR_STAT_MAX; k++) {
		if (bpf_map_lookup_elem(fd, &k, vals))
			continue;
		for (c = 0; c < d->ncpus; c++)
			sum[k] += vals[c];
	}
}

struct h2_sum {
	struct tapir_daemon *d;
	double *sum;
	size_t n;
};

/* @n streams open on an HTTP/2 connection of cgroup @cgroup_id. */
static void h2_inflight(void *ctx, uint64_t cgroup_id, size_t n)
{
	struct h2_sum *hs = ctx;
	const struct tapir_watched *w = tapir_cgroups__find(hs->d->cgroups, cgroup_id);

	if (w && w->labels_id < hs->n)
		hs->sum[2 * w->labels_id] += n;
}

/*
 * The gauges (requests in flight, open WebSockets) from the one place that knows them: each
 * connection's pending requests and state in the conns map, summed per label set, and the
 * streams open on each HTTP/2 connection (h2_track.c).
 */
static void refresh_gauges(struct tapir_daemon *d)
{
	int fd = tapir_loader__conns_fd(d->loader);
	size_t n = tapir_cgroups__n_labelsets(d->cgroups), i;
	struct tapir_conn_key key, next, *prev = NULL;
	const struct tapir_watched *w;
	struct tapir_conn c;
	double *sum = calloc(n ? 2 * n : 1, sizeof(*sum));

	if (!sum)
		return;
	while (fd >= 0 && bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &c))
			continue;
		if ((!c.count && c.state != TAPIR_CONN_UPGRADED) || (c.flags & TAPIR_CF_CLIENT))
			continue; /* nothing in flight, or not served: its own outbound requests */
		w = tapir_cgroups__find(d->cgroups, c.cgroup_id);
		if (!w || w->labels_id >= n)
			continue;
		sum[2 * w->labels_id] += tapir_conn_in_flight(&c);
		sum[2 * w->labels_id + 1] += c.state == TAPIR_CONN_UPGRADED;
	}
	if (d->h2) {
		struct h2_sum hs = { d, sum, n };

		tapir_h2_track__inflight(d->h2, h2_inflight, &hs);
	}
	for (i = 0; i < n; i++) {
		/* Without rules every cgroup is watched: show those that served HTTP only. */
		const char *const *labels = tapir_cgroups__labels(d->cgroups, i);

		if (!labels || (!d->cfg->n_rules && !tapir_cgroups__served(d->cgroups, i)))
			continue;
		tapir_http_metrics__set_gauges(d->http, i, labels, sum[2 * i], sum[2 * i + 1]);
	}
	free(sum);
}

/*
 * Build the exposition on the main loop, which owns every piece of state it reads: BPF stats
 * and connections, the registry, the replicas' cgroupfs, /proc and NVML figures. Then publish
 * it: the server thread only ever copies published text, so a scrape never holds anything the
 * drain of the ring buffers needs.
 */
static void publish(struct tapir_daemon *d)
{
	struct tapir_health_input in = { 0 };
	uint64_t stats[TAPIR_STAT_MAX], web_refused[TAPIR_WEB_REFUSAL_MAX];
	struct tapir_buf tmp;
	int err;

	/* Records in the ring are older than what the aggregates hold now: first them. */
	if (d->h2_rb)
		ring_buffer__consume(d->h2_rb);
	tapir_loader__consume(d->loader);
	read_agg(d);
	read_stats(d, stats);
	in.bpf_stats = stats;
	in.lifecycle_lost = tapir_loader__lifecycle_lost(d->loader);
	in.n_progs = tapir_loader__programs(d->loader, &in.progs);
	in.records = d->records;
	in.unlabelled = d->unlabelled;
	in.watched_cgroups = tapir_cgroups__n_watched(d->cgroups);
	in.series_dropped = tapir_registry__overflow(d->reg);
	in.series = tapir_registry__n_series(d->reg);
	tapir_server__refusals(d->server, web_refused);
	in.web_refused = web_refused;
	in.web_refused_names = tapir_web_refusal_names;
	in.n_web_refused = TAPIR_WEB_REFUSAL_MAX;
	if (d->kube) {
		in.has_kube = true;
		tapir_podmeta__counts(d->kube, &in.kube_ok, &in.kube_failed);
	}
	refresh_gauges(d);
	if (d->h2) {
		uint64_t lost[TAPIR_H2_LOST_REASONS];

		tapir_h2_track__lost(d->h2, lost);
		tapir_grpc_metrics__set_lost(d->grpc, lost);
	}
	refresh_llm(d, stats);
	tapir_replicas__refresh(d->replicas, tapir_loader__listeners_fd(d->loader), d->gpu,
				now_ms());
	tapir_engines__refresh(d->engines, now_ms());
	tapir_health__update(d->health, &in);
	tapir_buf__reset(&d->building);
	err = tapir_registry__render(d->reg, &d->building);

	pthread_mutex_lock(&d->expo_lock);
	tmp = d->published;
	d->published = d->building;
	d->building = tmp;
	d->published_err = err;
	__atomic_store_n(&d->published_gen, d->published_gen + 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&d->expo_lock);
	tapir_server__published(d->server);
	d->last_publish_ms = now_ms();
}

/* The server's side of a scrape, on its thread: ask the main loop for a fresh exposition... */
static uint64_t expo_request(void *ctx)
{
	struct tapir_daemon *d = ctx;
	uint64_t want, one = 1;

	pthread_mutex_lock(&d->expo_lock);
	want = d->published_gen + 1;
	if (d->wanted_gen < want) {
		__atomic_store_n(&d->wanted_gen, want, __ATOMIC_RELEASE);
		if (write(d->wake_fd, &one, sizeof(one)) < 0)
			pr_debug("cannot wake the main loop: %s", strerror(errno));
	}
	pthread_mutex_unlock(&d->expo_lock);
	return want;
}

/* ...see which one is out... */
static uint64_t expo_published(void *ctx)
{
	struct tapir_daemon *d = ctx;

	return __atomic_load_n(&d->published_gen, __ATOMIC_ACQUIRE);
}

/* ...and copy it, never holding anything the drain of the ring buffers needs. */
static int expo_copy(void *ctx, struct tapir_buf *out)
{
	struct tapir_daemon *d = ctx;
	int err;

	pthread_mutex_lock(&d->expo_lock);
	tapir_buf__append(out, d->published.data, d->published.len);
	err = d->published_err;
	pthread_mutex_unlock(&d->expo_lock);
	return out->oom ? -ENOMEM : err;
}

static const struct tapir_server_ops expo_ops = {
	.request = expo_request,
	.published = expo_published,
	.copy = expo_copy,
};

static int main_loop_fds(struct tapir_daemon *d)
{
	struct epoll_event ev = { .events = EPOLLIN };

	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->epfd < 0 || d->wake_fd < 0)
		return -errno;
	ev.data.fd = tapir_loader__ring_fd(d->loader);
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
		return -errno;
	ev.data.fd = d->wake_fd;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->wake_fd, &ev))
		return -errno;
	if (d->llm_rb) {
		ev.data.fd = ring_buffer__epoll_fd(d->llm_rb);
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
			return -errno;
	}
	if (d->h2_rb) {
		ev.data.fd = ring_buffer__epoll_fd(d->h2_rb);
		if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev))
			return -errno;
	}
	return 0;
}

/* LLM token metrics: their families, and a reader of llm_events when the kernel fills it. */
static int llm_start(struct tapir_daemon *d)
{
	int fd = tapir_loader__llm_fd(d->loader);

	if (fd < 0) {
		if (d->cfg->llm_enabled)
			pr_info("llm: no payload capture in this BPF build: no LLM token metrics");
		return 0;
	}
	d->llm_metrics = tapir_llm_metrics__new(d->reg, tapir_engines__hit_rate_family(d->engines));
	d->llm = tapir_llm_track__new(d->cfg->llm_request_head_bytes, llm_done, on_head, d);
	if (!d->llm_metrics || !d->llm)
		return -ENOMEM;
	d->llm_rb = ring_buffer__new(fd, on_llm_chunk, d, NULL);
	return d->llm_rb ? 0 : -errno;
}

struct tapir_daemon *tapir_daemon__new(const struct tapir_config *cfg, const char *pin_dir)
{
	struct tapir_daemon *d = calloc(1, sizeof(*d));
	char msg[512];
	int err = 0;

	if (!d)
		return NULL;
	d->cfg = cfg;
	d->pin_lock = -1;
	d->epfd = d->wake_fd = -1;
	tapir_buf__init(&d->building);
	tapir_buf__init(&d->published);
	pthread_mutex_init(&d->expo_lock, NULL);
	d->ncpus = libbpf_num_possible_cpus();
	if (pin_dir) {
		/* First: a second daemon on the same pins must not disturb the first one. */
		d->pin_lock = tapir_pin_dir_claim(pin_dir);
		if (d->pin_lock < 0) {
			err = d->pin_lock;
			goto fail_err;
		}
	}
	d->reg = tapir_registry__new();
	if (!d->reg)
		goto fail;
	d->http = tapir_http_metrics__new(d->reg, cfg);
	d->health = tapir_health__new(d->reg);
	if (!d->http || !d->health)
		goto fail;
	d->outbound = tapir_outbound__new(d->reg, cfg);
	d->async = tapir_async__new(d->reg, cfg);
	if (!d->outbound || !d->async)
		goto fail;
	d->loader = tapir_loader__new(cfg, on_record, d);
	if (!d->loader)
		goto fail;
	d->agg = tapir_http_agg__new(tapir_loader__agg_fd(d->loader), d->ncpus);
	if (!d->agg)
		goto fail;
	d->cgroups = tapir_cgroups__new(cfg, tapir_loader__watched_fd(d->loader));
	if (!d->cgroups)
		goto fail;
	d->kube = tapir_podmeta__new(cfg);
	if (!d->kube && errno)
		goto fail;
	tapir_cgroups__set_kube(d->cgroups, d->kube);
	err = tapir_cgroups__scan(d->cgroups);
	if (err < 0)
		goto fail_err;
	if (cfg->n_rules)
		pr_info("%d cgroups watched by %zu rules", err, cfg->n_rules);
	else
		pr_info("no deployment rules: watching all %d cgroups, each named after its "
			"container, service or directory",
			err);
	d->replicas = tapir_replicas__new(d->reg, cfg, d->cgroups);
	if (!d->replicas)
		goto fail;
	tapir_replicas__set_kube(d->replicas, d->kube);
	d->engines = tapir_engines__new(d->reg, cfg, d->cgroups, d->replicas,
					tapir_loader__own_clients_fd(d->loader));
	if (!d->engines && errno)
		goto fail;
	err = llm_start(d);
	if (err)
		goto fail_err;
	err = h2_start(d);
	if (err)
		goto fail_err;
	/* Every family exists now: bound them all (overflow is counted and exported). */
	tapir_registry__set_max_series(d->reg, cfg->max_series);
	tapir_replicas__sync(d->replicas, now_ms());
	tapir_replicas__seed_listeners(d->replicas, tapir_loader__listeners_fd(d->loader));
	d->gpu = tapir_gpu__new(cfg->nvml_library);
	err = tapir_loader__attach(d->loader);
	if (err)
		goto fail_err;
	cover(d);
	seed_prestart(d);
	if (pin_dir)
		tapir_loader__pin(d->loader, pin_dir);
	err = main_loop_fds(d);
	if (err)
		goto fail_err;
	publish(d); /* the first scrape finds an exposition even before the loop runs */
	d->server = tapir_server__new(cfg->listen, &cfg->web, &expo_ops, d, msg, sizeof(msg));
	if (!d->server) {
		err = errno;
		pr_err("%s", msg);
		errno = err;
		goto fail;
	}
	pr_info("serving /metrics on %s", cfg->listen);
	return d;

fail_err:
	errno = -err;
fail:
	err = errno;
	tapir_daemon__free(d);
	errno = err ? err : EINVAL;
	return NULL;
}

/* Does a scrape wait for an exposition newer than the published one? */
static bool scrape_waiting(struct tapir_daemon *d)
{
	return __atomic_load_n(&d->wanted_gen, __ATOMIC_ACQUIRE) > d->published_gen;
}

/* The loop sleeps on the ring buffers and on scrapes asking for an exposition. */
static int wait_work(struct tapir_daemon *d)
{
	struct epoll_event ev[4];
	uint64_t v;
	int n, i;

	n = epoll_wait(d->epfd, ev, 4, POLL_MS);
	for (i = 0; i < n; i++)
		if (ev[i].data.fd == d->wake_fd && read(d->wake_fd, &v, sizeof(v)) < 0)
			break;
	/* Records are mostly submitted without a wake-up: drain on every turn, payload first. */
	if (d->llm_rb)
		ring_buffer__consume(d->llm_rb);
	if (d->h2_rb)
		ring_buffer__consume(d->h2_rb);
	n = tapir_loader__consume(d->loader);
	return n < 0 && n != -EINTR ? n : 0;
}

/* SIGHUP: the web settings again, from --web-config or the config file. Everything else in the
 * config takes a restart; the metric state is untouched either way. */
static void reload_web(struct tapir_daemon *d)
{
	struct tapir_config *fresh = NULL;
	struct tapir_web w;
	char err[512];
	int ret;

	tapir_web__init(&w);
	if (d->cfg->web_path) {
		ret = tapir_web__load(d->cfg->web_path, &w, err, sizeof(err));
	} else if (d->cfg->path) {
		ret = tapir_config__load(d->cfg->path, &fresh, err, sizeof(err));
		if (!ret) {
			w = fresh->web; /* taken over: fresh goes without it */
			tapir_web__init(&fresh->web);
		}
		tapir_config__free(fresh);
	} else {
		pr_info("SIGHUP: no config file to read web settings from; nothing changed");
		return;
	}
	if (!ret)
		ret = tapir_server__reconfigure(d->server, &w, err, sizeof(err));
	if (ret)
		pr_err("SIGHUP: %s; the web settings in force stay", err);
	else
		pr_info("SIGHUP: web settings reloaded from %s: %s, %zu basic auth user%s",
			w.source ? w.source : "defaults",
			!w.cert_file	   ? "no TLS"
			: w.client_ca_file ? "TLS with client certificates"
					   : "TLS",
			w.n_users, w.n_users == 1 ? "" : "s");
	tapir_web__clear(&w);
}

int tapir_daemon__run(struct tapir_daemon *d)
{
	struct sched_param sp = { 0 };
	uint64_t last_scan = now_ms(), t;
	int n;

	/* The loop wakes every POLL_MS, scans cgroups and renders expositions: as SCHED_BATCH it
	 * keeps its fair share of CPU but never preempts the process it woke beside (a served
	 * model's request would wait for it); it runs when that one's slice ends. The /metrics and
	 * kubelet threads, made before, keep the default policy: a scrape is answered at once. */
	if (sched_setscheduler(0, SCHED_BATCH, &sp))
		pr_warn("the main loop stays SCHED_OTHER (SCHED_BATCH: %s): its wake-ups may "
			"preempt the watched servers",
			strerror(errno));

	while (!d->stop) {
		if (d->reload) {
			d->reload = 0;
			reload_web(d);
		}
		n = wait_work(d);
		if (n < 0) {
			pr_err("reading the ring buffer failed: %s", strerror(-n));
			return n;
		}
		t = now_ms();
		/* A waiting scrape first: its exposition waits for no cgroup walk (tens of ms
		 * with 1,000 cgroups) and no container reads. A cgroup that appeared in this
		 * batch shows in the next one; no record of it can precede its scan. */
		if (scrape_waiting(d))
			publish(d);
		if (d->kube && tapir_podmeta__generation(d->kube) != d->kube_gen) {
			/* A fresh pod list: labels that waited for their pod can be resolved. */
			d->kube_gen = tapir_podmeta__generation(d->kube);
			tapir_cgroups__relabel_pending(d->cgroups);
			tapir_replicas__sync(d->replicas, t);
		}
		if (d->rescan || t - last_scan >= RESCAN_MS) {
			d->rescan = 0;
			tapir_cgroups__scan(d->cgroups);
			cover(d);
			tapir_replicas__sync(d->replicas, t);
			tapir_cgroups__expire(d->cgroups, (uint64_t)d->cfg->series_grace_s * 1000,
					      forget, d);
			last_scan = t;
		}
		/* A scrape that came meanwhile; without scrapes, one every PUBLISH_MS keeps what
		 * a stalled loop would serve recent. */
		if (scrape_waiting(d) || t - d->last_publish_ms >= PUBLISH_MS)
			publish(d);
		else if (t - d->last_agg_ms >= AGG_MS)
			read_agg(d); /* readiness and the series' grace periods need no scrape */
		tapir_replicas__tick(d->replicas, t);
		tapir_engines__tick(d->engines, t);
		if (d->h2_pair)
			tapir_h2_pair__expire(d->h2_pair, t, 0);
		if (d->llm && t - d->last_llm_expire_ms >= RESCAN_MS) {
			tapir_llm_track__expire(d->llm, t * 1000000ULL, LLM_IDLE_NS, llm_alive, d);
			d->last_llm_expire_ms = t;
		}
	}
	return 0;
}

void tapir_daemon__stop(struct tapir_daemon *d)
{
	d->stop = 1;
}

void tapir_daemon__reload(struct tapir_daemon *d)
{
	d->reload = 1;
}

void tapir_daemon__free(struct tapir_daemon *d)
{
	if (!d)
		return;
	tapir_server__free(d->server);
	tapir_gpu__free(d->gpu);
	ring_buffer__free(d->llm_rb);
	ring_buffer__free(d->h2_rb);
	tapir_h2_track__free(d->h2);
	tapir_h2_pair__free(d->h2_pair);
	tapir_grpc_metrics__free(d->grpc);
	tapir_llm_track__free(d->llm);
	tapir_llm_metrics__free(d->llm_metrics);
	free(d->llm_gauges);
	tapir_engines__free(d->engines); /* before the replicas its figures go to */
	tapir_replicas__free(d->replicas);
	tapir_podmeta__free(d->kube);
	tapir_cgroups__free(d->cgroups);
	tapir_http_agg__free(d->agg);
	tapir_loader__free(d->loader);
	tapir_health__free(d->health);
	tapir_http_metrics__free(d->http);
	tapir_outbound__free(d->outbound);
	tapir_async__free(d->async);
	tapir_registry__free(d->reg);
	if (d->pin_lock >= 0)
		close(d->pin_lock);
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	tapir_buf__free(&d->building);
	tapir_buf__free(&d->published);
	pthread_mutex_destroy(&d->expo_lock);
	free(d);
}
