/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Requests aggregated in the kernel: per-CPU histograms keyed by series, and the pure rules
 * (status label, bucket, probe candidates) that the kernel and the daemon both apply. */
#ifndef TAPIR_AGG_H
#define TAPIR_AGG_H

/*
 * Included by http.h, after the outcomes and methods it names. An ordinary request costs the kernel a few stores into
 * its series' aggregate in the http_agg map (per CPU) and no ring-buffer record; the daemon
 * reads the aggregates and adds what changed. Requests that need the daemon's eye go as
 * records (struct tapir_http_event): a possible readiness probe (the daemon matches the whole
 * path), a series the map had no room for, a method tapir does not know, and every request
 * when the configured buckets do not fit the aggregate.
 */
#define TAPIR_AGG_BOUNDS 24 /* bucket bounds per histogram; +Inf makes one more */
#define TAPIR_AGG_PROBES 16 /* readiness probe paths the kernel can tell apart */

/* A series of the request families: the cgroup, its label set and the status_code label. */
struct tapir_agg_key {
	__u64 cgroup_id;
	__u32 labels_id; /* the connection's, for a cgroup the daemon no longer knows */
	__u16 status;	 /* tapir_status_label() */
	__u16 __pad;
};

/* Observations of one histogram: per bucket (not cumulative; the last one is +Inf) and sum. */
struct tapir_agg_hist {
	__u64 sum; /* nanoseconds or bytes */
	__u64 n[TAPIR_AGG_BOUNDS + 1];
};

/* One CPU's share of a series, since the series appeared: only ever grows. */
struct tapir_agg {
	__u64 requests;
	__u64 last_ns; /* end of the latest request: the replica's latest signal */
	struct tapir_agg_hist e2e, ttfb, req_size, resp_size;
};

/**
 * tapir_status_label - the status_code label of a request
 *
 * The status line's code for an answer that completed; nginx's 499 when the client went away
 * first, 502 when the server did, 101 for a connection that left HTTP/1.x.
 */
TAPIR_INLINE __u16 tapir_status_label(__u8 outcome, __u16 status)
{
	switch (outcome) {
	case TAPIR_OUT_CLIENT_ABORT: return 499;
	case TAPIR_OUT_SERVER_ABORT: return 502;
	case TAPIR_OUT_UPGRADED: return 101;
	}
	return status;
}

/* The bucket of @v: the first bound it does not exceed, or @n (+Inf). */
TAPIR_INLINE __u32 tapir_agg_bucket(const volatile __u64 *bounds, __u32 n, __u64 v)
{
	__u32 i;

	for (i = 0; i < TAPIR_AGG_BOUNDS; i++)
		if (i >= n || v <= bounds[i])
			break;
	return i;
}

#ifndef __bpf__
/* A bound of the config (seconds times 1e9, or bytes) in the kernel's integer units, rounded
 * to nearest: bucket i holds v <= bound i, as the daemon compares a record's value. */
TAPIR_INLINE __u64 tapir_agg_bound(double bound, double scale)
{
	return (__u64)(bound * scale + 0.5);
}
#endif

TAPIR_INLINE void tapir_agg_observe(struct tapir_agg_hist *h, const volatile __u64 *bounds, __u32 n,
				    __u64 v)
{
	__u32 b = tapir_agg_bucket(bounds, n, v);

	if (b > TAPIR_AGG_BOUNDS) /* never: for the verifier */
		b = TAPIR_AGG_BOUNDS;
	h->n[b]++;
	h->sum += v;
}

/* Bytes of the method token and its space, where the path of a request line starts; 0 for
 * methods tapir does not know. */
TAPIR_INLINE __u32 tapir_path_start(__u8 method)
{
	switch (method) {
	case TP_M_GET: return 4;
	case TP_M_HEAD: return 5;
	case TP_M_POST: return 5;
	case TP_M_PUT: return 4;
	case TP_M_DELETE: return 7;
	case TP_M_OPTIONS: return 8;
	case TP_M_PATCH: return 6;
	case TP_M_CONNECT: return 8;
	case TP_M_TRACE: return 6;
	}
	return 0;
}

/*
 * The first eight bytes of each probe path, as a little-endian word and the mask of its bytes:
 * a request whose path starts the same way may be a probe and goes to the daemon, which compares
 * the whole path. Anything else is not a probe.
 */
struct tapir_probe_prefix {
	__u64 word[TAPIR_AGG_PROBES];
	__u64 mask[TAPIR_AGG_PROBES];
};

/* Fill @pp from @n paths (n <= TAPIR_AGG_PROBES, each NUL-terminated). */
TAPIR_INLINE void tapir_probe_prefixes(struct tapir_probe_prefix *pp, const char *const *paths,
				       __u32 n)
{
	__u32 i, j;

	for (i = 0; i < TAPIR_AGG_PROBES; i++) {
		pp->word[i] = 0;
		pp->mask[i] = 0;
		for (j = 0; i < n && j < 8 && paths[i][j]; j++) {
			pp->word[i] |= (__u64)(__u8)paths[i][j] << (8 * j);
			pp->mask[i] |= 0xffULL << (8 * j);
		}
	}
}

/* @x: eight bytes of a request line from its path's start, little-endian. */
TAPIR_INLINE int tapir_probe_candidate(__u64 x, const volatile __u64 *word,
				       const volatile __u64 *mask, __u32 n)
{
	__u32 i;

	for (i = 0; i < TAPIR_AGG_PROBES; i++) {
		if (i >= n)
			break;
		if ((x & mask[i]) == word[i])
			return 1;
	}
	return 0;
}

#endif /* TAPIR_AGG_H */
