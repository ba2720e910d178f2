/* SPDX-License-Identifier: GPL-2.0 */
/* The daemon's YAML configuration: what to watch, with which labels, and tunables. */
#ifndef TAPIR_CONFIG_H
#define TAPIR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The deployment labels every request family carries, in exposition order. */
enum tapir_label {
	TAPIR_L_MODEL_ID,
	TAPIR_L_MODEL_NAME,
	TAPIR_L_DEPLOYMENT_ID,
	TAPIR_L_ENVIRONMENT,
	TAPIR_L_ROLLOUT_PHASE,
	TAPIR_L_COUNT,
};

extern const char *const tapir_label_names[TAPIR_L_COUNT];

/*
 * deployments[].async: which requests of the rule's cgroups are async jobs reaching the model
 * server, where their enqueue time is, and, for a gateway, its submit paths and webhook
 * deliveries (user/families/async.c).
 */
struct tapir_async_rule {
	char **paths; /* fnmatch(3) globs on the request path (no query): async requests */
	size_t n_paths;
	char *header;		/* a request field that marks async requests; NULL: none */
	char *header_value;	/* its whole value, case-insensitive; NULL: any */
	char **enqueue_headers; /* fields with the enqueue time, the first present wins */
	size_t n_enqueue_headers;
	char **submit_paths; /* globs: a gateway's submit requests, 2xx: a job queued */
	size_t n_submit_paths;
	char *webhook_destination; /* an outbound.destinations name; NULL: no webhooks */
	char *webhook_method;	   /* of webhook deliveries */
	int line;
};

struct tapir_rule {
	char *cgroup;		     /* fnmatch(3) glob on the cgroup v2 path, FNM_PATHNAME */
	char *labels[TAPIR_L_COUNT]; /* never NULL after load: "" where unset */
	char *env[TAPIR_L_COUNT];    /* environment variable giving the label, NULL if none */
	int line;		     /* where the rule starts in the file, for messages */
	bool no_llm;		     /* llm: false: no LLM payload capture for its cgroups */
	char **llm_paths;	     /* llm: [paths]: LLM paths of its cgroups beyond llm.paths */
	size_t n_llm_paths;
	int llm_line;			/* where its llm key is, for messages */
	struct tapir_async_rule *async; /* NULL: no async rules */
};

/* struct tapir_config.bpf_variant: which build of the HTTP programs to load (--bpf-variant). */
enum tapir_bpf_variant {
	TAPIR_BPF_AUTO,	  /* bpf_loop where the kernel has it, else compat */
	TAPIR_BPF_LOOP,	  /* bpf_loop and global functions: 5.17+ */
	TAPIR_BPF_COMPAT, /* bounded loops and tail calls: every kernel with BTF and ring buffers */
};

/* struct tapir_config.bpf_hooks: where the HTTP programs watch sends and receives (--bpf-hooks). */
enum tapir_bpf_hooks {
	TAPIR_HOOKS_AUTO,    /* socket, else fexit, else syscall: the first this kernel takes */
	TAPIR_HOOKS_SOCKET,  /* sock_{send,recv}_length: 6.3+, loop build only */
	TAPIR_HOOKS_SYSCALL, /* syscall tracepoints: every kernel */
	TAPIR_HOOKS_FEXIT,   /* fexit on tcp_{send,recv}msg, tcp_sendpage: BPF trampolines */
	TAPIR_HOOKS_SKB,     /* cgroup_skb on the watched cgroups: the loop build, HTTP/1.x only */
};

/* struct tapir_web.client_auth: the client_auth_type values of node_exporter's web config that
 * tapir implements (the ones that verify what they ask for). */
enum tapir_client_auth {
	TAPIR_CLIENT_AUTH_NONE,	    /* NoClientCert */
	TAPIR_CLIENT_AUTH_IF_GIVEN, /* VerifyClientCertIfGiven */
	TAPIR_CLIENT_AUTH_REQUIRE,  /* RequireAndVerifyClientCert */
};

struct tapir_web_user {
	char *name;
	char *hash; /* bcrypt: $2a$, $2b$ or $2y$, 60 characters */
};

/*
 * Security and limits of the /metrics endpoint: the config's `web:` section, or the file that
 * --web-config names (node_exporter's web configuration format, where it fits).
 */
struct tapir_web {
	char *source;	 /* file the settings came from, for messages; NULL: built-in */
	char *cert_file; /* TLS when set; key_file is set too */
	char *key_file;
	char *client_ca_file;		  /* client certificates are verified against these CAs */
	int cert_line, key_line, ca_line; /* where each file was named, for messages */
	int line;			  /* where the settings start; 0: nothing was configured */
	int client_auth;		  /* enum tapir_client_auth */
	int min_tls;			  /* 12 or 13: TLS 1.2 or 1.3 at least */
	struct tapir_web_user *users;	  /* basic auth on when n_users > 0 */
	size_t n_users;
	uint32_t max_requests;	   /* scrapes in progress at once; 503 beyond */
	uint32_t max_connections;  /* open connections; beyond, the oldest idle one is closed */
	uint32_t header_timeout_s; /* a request must arrive whole within this */
	uint32_t idle_timeout_s;   /* a connection with no traffic is closed after this */
};

/* struct tapir_engine_rule.engine: -1 turns scraping off; else enum tapir_engine_kind. */
#define TAPIR_ENGINE_RULE_OFF  (-1)
#define TAPIR_ENGINE_RULE_AUTO 0

/* engines.rules[]: what to scrape in replicas whose cgroup (or an ancestor) matches. */
struct tapir_engine_rule {
	char *cgroup;  /* fnmatch(3) glob, as deployments[].cgroup */
	int engine;    /* TAPIR_ENGINE_RULE_OFF, _AUTO (detect), or an enum tapir_engine_kind */
	uint32_t port; /* 0: detected */
	char *path;    /* never NULL after load: "/metrics" where unset */
	int line;
};

/* outbound.destinations[]: what a request this side sent is labelled with (destination). */
struct tapir_destination {
	char *name;    /* the label value */
	char *address; /* fnmatch(3) glob on the server's address as text; NULL: any */
	uint32_t port; /* 0: any */
	char *path;    /* prefix of the request path; NULL: any */
	int line;
};

struct tapir_config {
	char *path;	 /* file it came from, NULL for built-in defaults */
	char *web_path;	 /* --web-config: web settings from there, not from `web:` */
	int bpf_variant; /* enum tapir_bpf_variant; from the command line, not the file */
	int bpf_hooks;	 /* enum tapir_bpf_hooks; from the command line */
	char *listen;	 /* "ADDR:PORT" */
	struct tapir_rule *rules;
	size_t n_rules;
	double *latency_buckets; /* seconds, strictly increasing, > 0 */
	size_t n_latency_buckets;
	double *size_buckets; /* bytes, strictly increasing, > 0 */
	size_t n_size_buckets;
	uint32_t max_connections;   /* entries of the BPF conns map */
	uint32_t ringbuf_bytes;	    /* BPF ring buffer size: a power of two, >= 4096 */
	uint32_t aggregated_series; /* series the kernel aggregates (http_agg entries); 0: none */
	uint32_t gc_interval_ms;    /* how often dead processes' connections are swept */
	uint32_t
		series_grace_s; /* series of a label set whose cgroups are all gone live this long */
	uint32_t max_series; /* per metric family; beyond it, new series are dropped and counted */
	char **probe_paths;  /* request paths that count as readiness probes */
	size_t n_probe_paths;
	uint32_t unknown_after_s; /* readiness becomes "unknown" after this long without a signal */
	char *nvml_library;
	/* Kubernetes pod metadata from the kubelet's /pods; kubelet_url NULL: off. */
	char *kubelet_url;
	char *kube_token_file; /* bearer token, re-read on each fetch; NULL: none */
	char *kube_ca_file;    /* NULL: the system's CAs */
	bool kube_insecure;    /* skip TLS verification (kubelet serving certs are self-signed) */
	uint32_t kube_refresh_s;
	char *kube_labels[TAPIR_L_COUNT];
	struct tapir_web web;
	/* LLM token metrics (llm.*): payload capture of LLM API requests in the kernel. */
	bool llm_enabled;
	char **llm_paths; /* paths beyond the built-in ones (tapir_llm_api_of_suffix) */
	size_t n_llm_paths;
	uint32_t llm_request_head_bytes; /* of each request, from its line */
	uint32_t llm_response_bytes;	 /* of each answer, headers included */
	uint32_t llm_ringbuf_bytes;	 /* the llm_events ring */
	/* vLLM and SGLang engines found in watched replicas, scraped inside their pods. */
	/* Requests the watched processes send (outbound.*). */
	bool outbound_enabled;
	struct tapir_destination *destinations;
	size_t n_destinations;
	bool engines_enabled;
	uint32_t engine_interval_s;    /* a scrape of every target this often */
	uint32_t engine_timeout_ms;    /* one scrape, connection included */
	uint32_t engine_max_body;      /* bytes of one /metrics answer */
	uint32_t engine_max_samples;   /* samples of one /metrics answer */
	uint32_t autoscaling_window_s; /* trailing window of baseten_llm_avg_in_flight_tokens */
	struct tapir_engine_rule *engine_rules;
	size_t n_engine_rules;
	/* "label:KEY", "annotation:KEY", "pod", "namespace" */ /* dlopen() name of NVML */
};

/* Built-in defaults (no rules). Returns NULL and sets errno on allocation failure. */
struct tapir_config *tapir_config__new_default(void);

/*
 * Parse @path. On success returns 0 and sets *@out. On failure returns -EINVAL (or -errno for
 * I/O and allocation), sets *@out to NULL and writes "FILE:LINE: reason" into @err.
 */
int tapir_config__load(const char *path, struct tapir_config **out, char *err, size_t errlen);

/* Same, from a string; @name stands for the file name in messages. */
int tapir_config__parse(const char *name, const char *text, size_t len, struct tapir_config **out,
			char *err, size_t errlen);

void tapir_config__free(struct tapir_config *cfg);

/* Does rule @r need each request's head (its fields) from the kernel: async rules that match
 * requests? Does any rule of @cfg? */
bool tapir_rule__wants_heads(const struct tapir_rule *r);
bool tapir_config__wants_heads(const struct tapir_config *cfg);

/* Built-in web settings: no TLS, no auth, default limits. */
void tapir_web__init(struct tapir_web *w);
/*
 * Parse the web configuration file @path (the `web:` section's keys at its top level) into @w,
 * which is initialised first. 0, or -errno with "FILE:LINE: reason" in @err and @w cleared.
 */
int tapir_web__load(const char *path, struct tapir_web *w, char *err, size_t errlen);
/* Same, from a string; @name stands for the file name in messages. */
int tapir_web__parse(const char *name, const char *text, size_t len, struct tapir_web *w, char *err,
		     size_t errlen);
/* Free what @w holds and reset it to the built-in settings. */
void tapir_web__clear(struct tapir_web *w);

#endif
