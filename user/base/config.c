// SPDX-License-Identifier: GPL-2.0
/* Reads tapir.yaml with libyaml into a struct tapir_config, rejecting anything it does not know. */
#include <arpa/inet.h>
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "strv.h"
#include "config.h"
#include "llm.h"

const char *const tapir_label_names[TAPIR_L_COUNT] = {
	[TAPIR_L_MODEL_ID] = "model_id",	   [TAPIR_L_MODEL_NAME] = "model_name",
	[TAPIR_L_DEPLOYMENT_ID] = "deployment_id", [TAPIR_L_ENVIRONMENT] = "environment",
	[TAPIR_L_ROLLOUT_PHASE] = "rollout_phase",
};

#define DEFAULT_LISTEN		  "0.0.0.0:9464"
#define DEFAULT_MAX_CONNECTIONS	  65536
#define DEFAULT_RINGBUF_BYTES	  (2u << 20)
#define DEFAULT_AGGREGATED_SERIES 1024
#define AGGREGATED_SERIES_MAX	  65536
#define DEFAULT_GC_INTERVAL_MS	  1000
#define DEFAULT_UNKNOWN_AFTER_S	  300
#define DEFAULT_NVML_LIBRARY	  "libnvidia-ml.so.1"

#define MAX_CONNECTIONS_MAX (1u << 24)
#define RINGBUF_BYTES_MIN   4096u
#define RINGBUF_BYTES_MAX   (1u << 30)
#define GC_INTERVAL_MS_MIN  10
#define GC_INTERVAL_MS_MAX  600000
#define UNKNOWN_AFTER_S_MIN 1
#define UNKNOWN_AFTER_S_MAX 86400
#define PROBE_PATH_MAX	    200

#define DEFAULT_ENGINE_INTERVAL_S    5
#define DEFAULT_ENGINE_TIMEOUT_MS    3000
#define DEFAULT_ENGINE_MAX_BODY	     (4u << 20)
#define DEFAULT_ENGINE_MAX_SAMPLES   10000
#define DEFAULT_AUTOSCALING_WINDOW_S 60

#define DEFAULT_LLM_REQUEST_HEAD_BYTES 16384
#define DEFAULT_LLM_RESPONSE_BYTES     (1u << 20)
#define DEFAULT_LLM_RINGBUF_BYTES      (1u << 20)

/* A config is a page or two; anything this big is a mistake, not a config. */
#define MAX_FILE_BYTES (16 << 20)

static const double default_latency_buckets[] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800,
};

/* Request and response sizes: powers of 4 from 64 B to 1 GiB. */
static const double default_size_buckets[] = {
	64,	 256,	  1024,	    4096,     16384,	 65536,	     262144,
	1048576, 4194304, 16777216, 67108864, 268435456, 1073741824,
};

/* The KServe v1 model status path, then the usual health and readiness endpoints. */
static const char *const default_probe_paths[] = {
	"/v1/models/model", "/health", "/healthz", "/ready", "/readyz",
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct parse_ctx {
	const char *name;
	yaml_document_t *doc;
	struct tapir_config *cfg;
	char *err;
	size_t errlen;
	int llm_line; /* of llm.paths, for check_llm_table() */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int node_line(const yaml_node_t *node)
{
	return node ? (int)node->start_mark.line + 1 : 1;
}

static int bad(struct parse_ctx *c, const yaml_node_t *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Reports "FILE:LINE: reason" for @node and returns -EINVAL, so callers can `return bad(...)`. */
static int bad(struct parse_ctx *c, const yaml_node_t *node, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	set_err(c->err, c->errlen, "%s:%d: %s", c->name, node_line(node), reason);
	return -EINVAL;
}

static int no_mem(struct parse_ctx *c)
{
	set_err(c->err, c->errlen, "%s: %s", c->name, strerror(ENOMEM));
	return -ENOMEM;
}

/*
 * Quote a user-supplied string for an error message: escaped, so a value with newlines still
 * gives a one-line message, and cut short, so a 10 KB value does not drown the reason.
 */
static const char *quote(char *out, size_t outlen, const char *s, size_t len)
{
	const size_t max_in = 48;
	size_t i, o = 0, n = len < max_in ? len : max_in;

	/* Don't cut a UTF-8 sequence in half. */
	if (n < len)
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	out[o++] = '"';
	for (i = 0; i < n && o + 8 < outlen; i++) {
		unsigned char ch = s[i];

		if (ch == '"' || ch == '\\')
			o += snprintf(out + o, outlen - o, "\\%c", ch);
		else if (ch == '\n')
			o += snprintf(out + o, outlen - o, "\\n");
		else if (ch < 0x20 || ch == 0x7f)
			o += snprintf(out + o, outlen - o, "\\x%02x", ch);
		else
			out[o++] = ch;
	}
	out[o++] = '"';
	if (i < len)
		o += snprintf(out + o, outlen - o, "...");
	out[o] = '\0';
	return out;
}

#define QUOTE_BUF      256
#define Q(buf, s, len) quote(buf, sizeof(buf), (const char *)(s), (len))
#define QNODE(buf, n)  Q(buf, (n)->data.scalar.value, (n)->data.scalar.length)

static const char *kind_name(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_SCALAR_NODE: return "a scalar";
	case YAML_SEQUENCE_NODE: return "a list";
	case YAML_MAPPING_NODE: return "a mapping";
	default: return "nothing";
	}
}

/* YAML 1.1 core null: an empty or "~"/"null" plain scalar, as in `deployments:` with no value. */
static bool is_null(const yaml_node_t *node)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	size_t i;

	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (i = 0; i < ARRAY_SIZE(nulls); i++)
		if (!strcmp((const char *)node->data.scalar.value, nulls[i]))
			return true;
	return false;
}

/* Scalars are C strings from here on, so one with an embedded "\0" escape is refused. */
static int get_string(struct parse_ctx *c, const yaml_node_t *node, const char *what,
		      const char **out)
{
	if (node->type != YAML_SCALAR_NODE)
		return bad(c, node, "%s must be a string, not %s", what, kind_name(node));
	if (strlen((const char *)node->data.scalar.value) != node->data.scalar.length)
		return bad(c, node, "%s contains a NUL character", what);
	*out = (const char *)node->data.scalar.value;
	return 0;
}

/* true or false, spelled so: YAML 1.1's yes/no/on/off are refused as ambiguous. */
static int parse_bool(struct parse_ctx *c, const yaml_node_t *node, const char *what, bool *out)
{
	char q[QUOTE_BUF];
	const char *s;
	int err = get_string(c, node, what, &s);

	if (err)
		return err;
	if (strcmp(s, "true") && strcmp(s, "false"))
		return bad(c, node, "%s must be true or false, got %s", what, Q(q, s, strlen(s)));
	*out = !strcmp(s, "true");
	return 0;
}

/*
 * Check that @map is a mapping whose keys are all in @keys, each at most once, and put the
 * value for keys[i] in vals[i] (NULL where absent). @name names the mapping in messages, NULL
 * for the top level. A null value counts as an empty mapping.
 */
static int get_fields(struct parse_ctx *c, const yaml_node_t *map, const char *name,
		      const char *const *keys, size_t n_keys, yaml_node_t **vals)
{
	yaml_node_t *seen[16] = { NULL };
	yaml_node_pair_t *pair;
	char q[QUOTE_BUF], where[64];
	size_t i;

	if (name)
		snprintf(where, sizeof(where), "in %s", name);
	else
		snprintf(where, sizeof(where), "at the top level");

	if (n_keys > ARRAY_SIZE(seen))
		return -E2BIG;
	for (i = 0; i < n_keys; i++)
		vals[i] = NULL;
	if (is_null(map))
		return 0;
	if (map->type != YAML_MAPPING_NODE)
		return bad(c, map, "%s must be a mapping, not %s", name ? name : "the top level",
			   kind_name(map));

	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *key = yaml_document_get_node(c->doc, pair->key);
		yaml_node_t *val = yaml_document_get_node(c->doc, pair->value);
		char expected[256] = "";
		size_t off = 0;

		if (!key || !val)
			return bad(c, map, "malformed mapping %s", where);
		if (key->type != YAML_SCALAR_NODE)
			return bad(c, key, "keys %s must be strings, not %s", where,
				   kind_name(key));
		for (i = 0; i < n_keys; i++)
			if (!strcmp((const char *)key->data.scalar.value, keys[i]) &&
			    strlen(keys[i]) == key->data.scalar.length)
				break;
		if (i == n_keys) {
			for (i = 0; i < n_keys && off < sizeof(expected); i++)
				off += snprintf(expected + off, sizeof(expected) - off, "%s%s",
						i ? ", " : "", keys[i]);
			return bad(c, key, "unknown key %s %s (expected one of %s)", QNODE(q, key),
				   where, expected);
		}
		if (seen[i])
			return bad(c, key, "duplicate key \"%s\" %s (first set at line %d)",
				   keys[i], where, node_line(seen[i]));
		seen[i] = key;
		vals[i] = val;
	}
	return 0;
}

static bool all_chars_in(const char *s, size_t len, const char *set)
{
	return strspn(s, set) == len;
}

static bool valid_hostname(const char *s, size_t len)
{
	size_t label = 0, i;

	if (len == 0 || len > 253)
		return false;
	for (i = 0; i <= len; i++) {
		char ch = i < len ? s[i] : '.';

		if (ch == '.') {
			if (label == 0 || label > 63 || s[i - 1] == '-' || s[i - label] == '-')
				return false;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			   (ch >= '0' && ch <= '9') || ch == '-') {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* HOST:PORT where HOST is an IPv4 address, a host name or a bracketed IPv6 address. */
static int check_listen(struct parse_ctx *c, const yaml_node_t *node, const char *s)
{
	const char *colon = strrchr(s, ':');
	char q[QUOTE_BUF], host[256];
	size_t hlen, plen;
	unsigned long port;
	unsigned char addr[16];

	if (!colon)
		return bad(c, node, "listen %s must be HOST:PORT, e.g. \"0.0.0.0:9464\"",
			   Q(q, s, strlen(s)));
	plen = strlen(colon + 1);
	port = strtoul(colon + 1, NULL, 10);
	if (plen == 0 || plen > 5 || !all_chars_in(colon + 1, plen, "0123456789") || port < 1 ||
	    port > 65535)
		return bad(c, node, "listen %s: port must be a number in 1..65535",
			   Q(q, s, strlen(s)));

	hlen = colon - s;
	if (hlen == 0)
		return bad(c, node,
			   "listen %s: missing host (use 0.0.0.0 for every IPv4 address or [::] "
			   "for every IPv6 address)",
			   Q(q, s, strlen(s)));
	if (hlen >= sizeof(host))
		return bad(c, node, "listen %s: host is too long", Q(q, s, strlen(s)));
	memcpy(host, s, hlen);
	host[hlen] = '\0';

	if (host[0] == '[') {
		if (hlen < 3 || host[hlen - 1] != ']')
			return bad(c, node, "listen %s: unterminated '[' in IPv6 address",
				   Q(q, s, strlen(s)));
		host[hlen - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, addr) != 1)
			return bad(c, node, "listen %s: \"%s\" is not an IPv6 address",
				   Q(q, s, strlen(s)), host + 1);
		return 0;
	}
	if (strchr(host, ':'))
		return bad(c, node,
			   "listen %s: put an IPv6 address in brackets, e.g. \"[::]:9464\"",
			   Q(q, s, strlen(s)));
	if (all_chars_in(host, hlen, "0123456789.")) {
		if (inet_pton(AF_INET, host, addr) != 1)
			return bad(c, node, "listen %s: \"%s\" is not an IPv4 address",
				   Q(q, s, strlen(s)), host);
		return 0;
	}
	if (!valid_hostname(host, hlen))
		return bad(c, node, "listen %s: \"%s\" is not a valid host name",
			   Q(q, s, strlen(s)), host);
	return 0;
}

static int parse_listen(struct parse_ctx *c, const yaml_node_t *node)
{
	const char *s;
	char *dup;
	int err;

	err = get_string(c, node, "listen", &s);
	if (err)
		return err;
	err = check_listen(c, node, s);
	if (err)
		return err;
	dup = strdup(s);
	if (!dup)
		return no_mem(c);
	free(c->cfg->listen);
	c->cfg->listen = dup;
	return 0;
}

/*
 * Numbers must be plain scalars in decimal notation: YAML quoting a number, or strtod's hex,
 * "inf" and "nan", are more likely mistakes than intent.
 */
static bool scalar_is_number(const yaml_node_t *node)
{
	const char *s = (const char *)node->data.scalar.value;
	size_t digits = 0;

	if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	if (*s == '+' || *s == '-')
		s++;
	for (; *s >= '0' && *s <= '9'; s++)
		digits++;
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++)
			digits++;
	if (!digits)
		return false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

static int parse_buckets(struct parse_ctx *c, const yaml_node_t *node, const char *what,
			 double **out, size_t *n_out)
{
	yaml_node_item_t *item;
	char q[QUOTE_BUF];
	double *b;
	size_t n = 0;

	if (!is_null(node) && node->type != YAML_SEQUENCE_NODE)
		return bad(c, node, "%s must be a list of numbers, not %s", what, kind_name(node));
	if (is_null(node) || node->data.sequence.items.top == node->data.sequence.items.start)
		return bad(c, node, "%s must not be empty", what);

	b = calloc(node->data.sequence.items.top - node->data.sequence.items.start, sizeof(*b));
	if (!b)
		return no_mem(c);
	for (item = node->data.sequence.items.start; item < node->data.sequence.items.top;
	     item++, n++) {
		yaml_node_t *v = yaml_document_get_node(c->doc, *item);
		int err;

		if (!v) {
			err = bad(c, node, "malformed list in %s", what);
		} else if (v->type != YAML_SCALAR_NODE) {
			err = bad(c, v, "%s[%zu] must be a number, not %s", what, n, kind_name(v));
		} else if (!scalar_is_number(v)) {
			err = bad(c, v, "%s[%zu]: %s is not a number", what, n, QNODE(q, v));
		} else {
			b[n] = strtod((const char *)v->data.scalar.value, NULL);
			if (!isfinite(b[n]))
				err = bad(c, v, "%s[%zu]: %s is out of range", what, n,
					  QNODE(q, v));
			else if (b[n] <= 0)
				err = bad(c, v, "%s[%zu]: bucket bounds must be > 0, got %s", what,
					  n, v->data.scalar.value);
			else if (n > 0 && b[n] <= b[n - 1])
				err = bad(c, v,
					  "%s[%zu]: %s is not greater than the bound before it "
					  "(%g); bounds must be strictly increasing",
					  what, n, v->data.scalar.value, b[n - 1]);
			else
				err = 0;
		}
		if (err) {
			free(b);
			return err;
		}
	}
	*out = b;
	*n_out = n;
	return 0;
}

static int parse_bucket_section(struct parse_ctx *c, const yaml_node_t *node)
{
	static const char *const keys[] = { "latency_seconds", "size_bytes" };
	struct tapir_config *cfg = c->cfg;
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	double *b;
	size_t n;
	int err;

	err = get_fields(c, node, "buckets", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (vals[0]) {
		err = parse_buckets(c, vals[0], keys[0], &b, &n);
		if (err)
			return err;
		free(cfg->latency_buckets);
		cfg->latency_buckets = b;
		cfg->n_latency_buckets = n;
	}
	if (vals[1]) {
		err = parse_buckets(c, vals[1], keys[1], &b, &n);
		if (err)
			return err;
		free(cfg->size_buckets);
		cfg->size_buckets = b;
		cfg->n_size_buckets = n;
	}
	return 0;
}

static int parse_u32(struct parse_ctx *c, const yaml_node_t *node, const char *what,
		     unsigned long long *out)
{
	const char *s;
	char q[QUOTE_BUF];

	if (node->type != YAML_SCALAR_NODE)
		return bad(c, node, "%s must be an integer, not %s", what, kind_name(node));
	s = (const char *)node->data.scalar.value;
	if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || !node->data.scalar.length ||
	    !all_chars_in(s, node->data.scalar.length, "0123456789"))
		return bad(c, node, "%s: %s is not a whole number", what, QNODE(q, node));
	errno = 0;
	*out = strtoull(s, NULL, 10);
	if (errno || *out > UINT32_MAX)
		*out = UINT32_MAX + 1ull; /* let the caller's range check report it */
	return 0;
}

static int parse_limits(struct parse_ctx *c, const yaml_node_t *node)
{
	static const char *const keys[] = {
		"max_connections", "ringbuf_bytes", "gc_interval_ms",
		"series_grace_s",  "max_series",    "aggregated_series"
	};
	struct tapir_config *cfg = c->cfg;
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	unsigned long long v;
	char q[QUOTE_BUF];
	int err;

	err = get_fields(c, node, "limits", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (vals[0]) {
		err = parse_u32(c, vals[0], keys[0], &v);
		if (err)
			return err;
		if (v < 1 || v > MAX_CONNECTIONS_MAX)
			return bad(c, vals[0], "max_connections must be in 1..%u, got %s",
				   MAX_CONNECTIONS_MAX, QNODE(q, vals[0]));
		cfg->max_connections = v;
	}
	if (vals[1]) {
		err = parse_u32(c, vals[1], keys[1], &v);
		if (err)
			return err;
		if (v < RINGBUF_BYTES_MIN || v > RINGBUF_BYTES_MAX || (v & (v - 1)))
			return bad(c, vals[1],
				   "ringbuf_bytes must be a power of two in %u..%u, got %s",
				   RINGBUF_BYTES_MIN, RINGBUF_BYTES_MAX, QNODE(q, vals[1]));
		cfg->ringbuf_bytes = v;
	}
	if (vals[2]) {
		err = parse_u32(c, vals[2], keys[2], &v);
		if (err)
			return err;
		if (v < GC_INTERVAL_MS_MIN || v > GC_INTERVAL_MS_MAX)
			return bad(c, vals[2], "gc_interval_ms must be in %u..%u, got %s",
				   GC_INTERVAL_MS_MIN, GC_INTERVAL_MS_MAX, QNODE(q, vals[2]));
		cfg->gc_interval_ms = v;
	}
	if (vals[3]) {
		err = parse_u32(c, vals[3], keys[3], &v);
		if (err)
			return err;
		if (v > 86400)
			return bad(c, vals[3], "series_grace_s must be in 0..86400, got %s",
				   QNODE(q, vals[3]));
		cfg->series_grace_s = v;
	}
	if (vals[4]) {
		err = parse_u32(c, vals[4], keys[4], &v);
		if (err)
			return err;
		if (v < 1 || v > 10000000)
			return bad(c, vals[4], "max_series must be in 1..10000000, got %s",
				   QNODE(q, vals[4]));
		cfg->max_series = v;
	}
	if (vals[5]) {
		err = parse_u32(c, vals[5], keys[5], &v);
		if (err)
			return err;
		if (v > AGGREGATED_SERIES_MAX)
			return bad(c, vals[5], "aggregated_series must be in 0..%u, got %s",
				   AGGREGATED_SERIES_MAX, QNODE(q, vals[5]));
		cfg->aggregated_series = v;
	}
	return 0;
}

/* Copies of @n strings; NULL on allocation failure, with nothing left allocated. */
static char **strv_dup(const char *const *src, size_t n)
{
	char **v = calloc(n, sizeof(*v));
	size_t i;

	if (!v)
		return NULL;
	for (i = 0; i < n; i++) {
		v[i] = strdup(src[i]);
		if (!v[i]) {
			tapir_strv_free(v, n);
			return NULL;
		}
	}
	return v;
}

/*
 * Probe paths are compared with the path of the request line as sent, so anything that cannot
 * appear there unescaped (whitespace, control characters) could never match.
 */
static int check_probe_path(struct parse_ctx *c, const yaml_node_t *node, size_t idx, const char *s)
{
	size_t len = strlen(s), i;
	char q[QUOTE_BUF];

	if (s[0] != '/')
		return bad(c, node,
			   "probe_paths[%zu]: %s must be a request path starting with '/', "
			   "e.g. \"/health\"",
			   idx, Q(q, s, len));
	if (len > PROBE_PATH_MAX)
		return bad(c, node, "probe_paths[%zu]: %s is %zu bytes long, more than %u", idx,
			   Q(q, s, len), len, PROBE_PATH_MAX);
	for (i = 0; i < len; i++) {
		unsigned char ch = s[i];

		if (ch <= ' ' || ch == 0x7f)
			return bad(c, node,
				   "probe_paths[%zu]: %s contains whitespace or a control "
				   "character",
				   idx, Q(q, s, len));
	}
	return 0;
}

static int parse_probe_paths(struct parse_ctx *c, const yaml_node_t *node, char ***out,
			     size_t *n_out)
{
	yaml_node_item_t *item;
	char what[64];
	char **v;
	size_t n = 0, count;
	int err = 0;

	if (!is_null(node) && node->type != YAML_SEQUENCE_NODE)
		return bad(c, node, "probe_paths must be a list of strings, not %s",
			   kind_name(node));
	if (is_null(node) || node->data.sequence.items.top == node->data.sequence.items.start)
		return bad(c, node, "probe_paths must not be empty");

	count = node->data.sequence.items.top - node->data.sequence.items.start;
	v = calloc(count, sizeof(*v));
	if (!v)
		return no_mem(c);
	for (item = node->data.sequence.items.start; item < node->data.sequence.items.top;
	     item++, n++) {
		yaml_node_t *p = yaml_document_get_node(c->doc, *item);
		const char *s;

		if (!p) {
			err = bad(c, node, "malformed list in probe_paths");
			break;
		}
		snprintf(what, sizeof(what), "probe_paths[%zu]", n);
		err = get_string(c, p, what, &s);
		if (!err)
			err = check_probe_path(c, p, n, s);
		if (err)
			break;
		v[n] = strdup(s);
		if (!v[n]) {
			err = no_mem(c);
			break;
		}
	}
	if (err) {
		tapir_strv_free(v, count);
		return err;
	}
	*out = v;
	*n_out = n;
	return 0;
}

static int parse_readiness(struct parse_ctx *c, const yaml_node_t *node)
{
	static const char *const keys[] = { "probe_paths", "unknown_after_s" };
	struct tapir_config *cfg = c->cfg;
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	unsigned long long v;
	char q[QUOTE_BUF];
	char **paths = NULL;
	size_t n = 0;
	int err;

	err = get_fields(c, node, "readiness", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (vals[0]) {
		err = parse_probe_paths(c, vals[0], &paths, &n);
		if (err)
			return err;
		tapir_strv_free(cfg->probe_paths, cfg->n_probe_paths);
		cfg->probe_paths = paths;
		cfg->n_probe_paths = n;
	}
	if (vals[1]) {
		err = parse_u32(c, vals[1], keys[1], &v);
		if (err)
			return err;
		if (v < UNKNOWN_AFTER_S_MIN || v > UNKNOWN_AFTER_S_MAX)
			return bad(c, vals[1], "unknown_after_s must be in %u..%u, got %s",
				   UNKNOWN_AFTER_S_MIN, UNKNOWN_AFTER_S_MAX, QNODE(q, vals[1]));
		cfg->unknown_after_s = v;
	}
	return 0;
}

static int parse_gpu(struct parse_ctx *c, const yaml_node_t *node)
{
	static const char *const keys[] = { "nvml_library" };
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	const char *s;
	char *dup;
	int err;

	err = get_fields(c, node, "gpu", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (!vals[0])
		return 0;
	/* A null ("~") would otherwise reach dlopen() as a file name. */
	s = "";
	if (!is_null(vals[0])) {
		err = get_string(c, vals[0], keys[0], &s);
		if (err)
			return err;
	}
	if (!*s)
		return bad(c, vals[0],
			   "nvml_library must not be empty (a path or a soname, "
			   "e.g. \"" DEFAULT_NVML_LIBRARY "\")");
	dup = strdup(s);
	if (!dup)
		return no_mem(c);
	free(c->cfg->nvml_library);
	c->cfg->nvml_library = dup;
	return 0;
}

static int parse_labels(struct parse_ctx *c, const yaml_node_t *node, struct tapir_rule *rule)
{
	yaml_node_t *vals[TAPIR_L_COUNT];
	char what[64];
	const char *s;
	int err, i;

	err = get_fields(c, node, "labels", tapir_label_names, TAPIR_L_COUNT, vals);
	if (err)
		return err;
	for (i = 0; i < TAPIR_L_COUNT; i++) {
		if (!vals[i] || is_null(vals[i]))
			continue;
		snprintf(what, sizeof(what), "label %s", tapir_label_names[i]);
		err = get_string(c, vals[i], what, &s);
		if (err)
			return err;
		rule->labels[i] = strdup(s);
		if (!rule->labels[i])
			return no_mem(c);
	}
	return 0;
}

/* env: label -> name of an environment variable of the container's processes. */
static int parse_env(struct parse_ctx *c, const yaml_node_t *node, struct tapir_rule *rule)
{
	yaml_node_t *vals[TAPIR_L_COUNT];
	char what[64], q[QUOTE_BUF];
	const char *s;
	int err, i;

	err = get_fields(c, node, "env", tapir_label_names, TAPIR_L_COUNT, vals);
	if (err)
		return err;
	for (i = 0; i < TAPIR_L_COUNT; i++) {
		if (!vals[i] || is_null(vals[i]))
			continue;
		snprintf(what, sizeof(what), "env %s", tapir_label_names[i]);
		err = get_string(c, vals[i], what, &s);
		if (err)
			return err;
		if (!*s || strchr(s, '=') || strlen(s) > 255)
			return bad(
				c, vals[i],
				"env %s must name an environment variable (1..255 bytes, no '='), "
				"got %s",
				tapir_label_names[i], Q(q, s, strlen(s)));
		rule->env[i] = strdup(s);
		if (!rule->env[i])
			return no_mem(c);
	}
	return 0;
}

static int parse_llm_paths(struct parse_ctx *c, const yaml_node_t *node, const char *what_list,
			   char ***out, size_t *n_out);

static int parse_async(struct parse_ctx *c, const yaml_node_t *node, struct tapir_rule *rule);

static int parse_rule(struct parse_ctx *c, const yaml_node_t *node, struct tapir_rule *rule)
{
	static const char *const keys[] = { "cgroup", "labels", "env", "llm", "async" };
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	char q[QUOTE_BUF];
	const char *s;
	bool llm;
	int err, i;

	rule->line = node_line(node);
	if (node->type != YAML_MAPPING_NODE)
		return bad(c, node,
			   "each deployment must be a mapping with cgroup and labels, not %s",
			   kind_name(node));
	err = get_fields(c, node, "deployment", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (!vals[0])
		return bad(c, node, "deployment is missing the required key \"cgroup\"");
	err = get_string(c, vals[0], "cgroup", &s);
	if (err)
		return err;
	if (s[0] != '/')
		return bad(c, vals[0],
			   "cgroup %s must be a cgroup v2 path or glob starting with '/', "
			   "e.g. \"/system.slice/vllm.service\"",
			   Q(q, s, strlen(s)));
	rule->cgroup = strdup(s);
	if (!rule->cgroup)
		return no_mem(c);

	if (vals[1]) {
		err = parse_labels(c, vals[1], rule);
		if (err)
			return err;
	}
	if (vals[2]) {
		err = parse_env(c, vals[2], rule);
		if (err)
			return err;
	}
	if (vals[3]) {
		/* false: off; a list: on, with paths of its own. */
		rule->llm_line = node_line(vals[3]);
		if (vals[3]->type == YAML_SEQUENCE_NODE)
			err = parse_llm_paths(c, vals[3], "deployments[].llm", &rule->llm_paths,
					      &rule->n_llm_paths);
		else
			err = parse_bool(c, vals[3], "deployments[].llm", &llm);
		if (err)
			return err;
		rule->no_llm = vals[3]->type != YAML_SEQUENCE_NODE && !llm;
	}
	if (vals[4] && !is_null(vals[4])) {
		err = parse_async(c, vals[4], rule);
		if (err)
			return err;
	}
	for (i = 0; i < TAPIR_L_COUNT; i++) {
		if (rule->labels[i])
			continue;
		rule->labels[i] = strdup("");
		if (!rule->labels[i])
			return no_mem(c);
	}
	return 0;
}

/*
 * A list whose items @fn parses, into a new array of @size-byte entries at *@out; @what names it
 * in messages. The count is set before filling, so tapir_config__free() cleans up a half-built
 * list.
 */
static int parse_list(struct parse_ctx *c, const yaml_node_t *node, const char *what, size_t size,
		      void **out, size_t *n_out,
		      int (*fn)(struct parse_ctx *c, const yaml_node_t *node, void *item))
{
	yaml_node_item_t *item;
	size_t n;
	int err;

	if (is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return bad(c, node, "%s must be a list, not %s", what, kind_name(node));
	n = node->data.sequence.items.top - node->data.sequence.items.start;
	if (!n)
		return 0;
	*out = calloc(n, size);
	if (!*out)
		return no_mem(c);
	*n_out = n;
	for (item = node->data.sequence.items.start, n = 0; item < node->data.sequence.items.top;
	     item++, n++) {
		yaml_node_t *one = yaml_document_get_node(c->doc, *item);

		if (!one)
			return bad(c, node, "malformed %s list", what);
		err = fn(c, one, (char *)*out + n * size);
		if (err)
			return err;
	}
	return 0;
}

static int parse_rule_item(struct parse_ctx *c, const yaml_node_t *node, void *rule)
{
	return parse_rule(c, node, rule);
}

static int parse_deployments(struct parse_ctx *c, const yaml_node_t *node)
{
	return parse_list(c, node, "deployments", sizeof(*c->cfg->rules), (void **)&c->cfg->rules,
			  &c->cfg->n_rules, parse_rule_item);
}

static int dup_string(struct parse_ctx *c, const yaml_node_t *node, const char *what, char **out)
{
	const char *s = NULL;
	int err = get_string(c, node, what, &s);

	if (err)
		return err;
	free(*out);
	*out = strdup(s);
	return *out ? 0 : no_mem(c);
}

/* kubernetes.labels: label -> "label:KEY", "annotation:KEY", "pod" or "namespace". */
static int parse_kube_labels(struct parse_ctx *c, const yaml_node_t *node)
{
	yaml_node_t *vals[TAPIR_L_COUNT];
	char what[64], q[QUOTE_BUF];
	int err, i;

	err = get_fields(c, node, "kubernetes.labels", tapir_label_names, TAPIR_L_COUNT, vals);
	if (err)
		return err;
	for (i = 0; i < TAPIR_L_COUNT; i++) {
		char *v = NULL;

		if (!vals[i] || is_null(vals[i]))
			continue;
		snprintf(what, sizeof(what), "kubernetes.labels.%s", tapir_label_names[i]);
		err = dup_string(c, vals[i], what, &v);
		if (err)
			return err;
		c->cfg->kube_labels[i] = v;
		if (strcmp(v, "pod") && strcmp(v, "namespace") &&
		    !(strncmp(v, "label:", 6) == 0 && v[6]) &&
		    !(strncmp(v, "annotation:", 11) == 0 && v[11]))
			return bad(c, vals[i],
				   "%s must be \"label:KEY\", \"annotation:KEY\", \"pod\" or "
				   "\"namespace\", got %s",
				   what, Q(q, v, strlen(v)));
	}
	return 0;
}

static int parse_kubernetes(struct parse_ctx *c, const yaml_node_t *node)
{
	static const char *const keys[] = { "kubelet_url", "token_file", "ca_file",
					    "insecure",	   "refresh_s",	 "labels" };
	struct tapir_config *cfg = c->cfg;
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	unsigned long long v;
	char q[QUOTE_BUF];
	int err;

	err = get_fields(c, node, "kubernetes", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (!vals[0])
		return bad(c, node,
			   "kubernetes needs kubelet_url, e.g. "
			   "\"https://127.0.0.1:10250/pods\"");
	err = dup_string(c, vals[0], "kubelet_url", &cfg->kubelet_url);
	if (err)
		return err;
	if (strncmp(cfg->kubelet_url, "https://", 8) && strncmp(cfg->kubelet_url, "http://", 7))
		return bad(c, vals[0], "kubelet_url must be an http:// or https:// URL, got %s",
			   Q(q, cfg->kubelet_url, strlen(cfg->kubelet_url)));
	if (vals[1] && (err = dup_string(c, vals[1], "token_file", &cfg->kube_token_file)))
		return err;
	if (vals[2] && (err = dup_string(c, vals[2], "ca_file", &cfg->kube_ca_file)))
		return err;
	if (vals[3] && (err = parse_bool(c, vals[3], "insecure", &cfg->kube_insecure)))
		return err;
	if (vals[4]) {
		err = parse_u32(c, vals[4], keys[4], &v);
		if (err)
			return err;
		if (v < 1 || v > 3600)
			return bad(c, vals[4], "refresh_s must be in 1..3600, got %s",
				   QNODE(q, vals[4]));
		cfg->kube_refresh_s = v;
	}
	if (vals[5])
		return parse_kube_labels(c, vals[5]);
	return 0;
}

/* --- web: security and limits of the /metrics endpoint ------------------------------------ */

#define WEB_MAX_REQUESTS_DEFAULT    16
#define WEB_MAX_CONNECTIONS_DEFAULT 64
#define WEB_HEADER_TIMEOUT_DEFAULT  10
#define WEB_IDLE_TIMEOUT_DEFAULT    30
#define WEB_MAX_USERS		    64

void tapir_web__init(struct tapir_web *w)
{
	memset(w, 0, sizeof(*w));
	w->client_auth = TAPIR_CLIENT_AUTH_NONE;
	w->min_tls = 12;
	w->max_requests = WEB_MAX_REQUESTS_DEFAULT;
	w->max_connections = WEB_MAX_CONNECTIONS_DEFAULT;
	w->header_timeout_s = WEB_HEADER_TIMEOUT_DEFAULT;
	w->idle_timeout_s = WEB_IDLE_TIMEOUT_DEFAULT;
}

void tapir_web__clear(struct tapir_web *w)
{
	size_t i;

	for (i = 0; i < w->n_users; i++) {
		free(w->users[i].name);
		free(w->users[i].hash);
	}
	free(w->users);
	free(w->source);
	free(w->cert_file);
	free(w->key_file);
	free(w->client_ca_file);
	tapir_web__init(w);
}

/* The whole bcrypt string ("$2b$" cost "$" 22 characters of salt, 31 of hash), so that a
 * truncated paste fails here rather than as a password that never matches. */
static bool valid_bcrypt(const char *s)
{
	static const char b64[] =
		"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	size_t i;

	if (strlen(s) != 60 || s[0] != '$' || s[1] != '2' || !strchr("aby", s[2]) || s[3] != '$' ||
	    s[6] != '$')
		return false;
	if (s[4] < '0' || s[4] > '3' || s[5] < '0' || s[5] > '9' ||
	    (s[4] - '0') * 10 + s[5] - '0' < 4 || (s[4] - '0') * 10 + s[5] - '0' > 31)
		return false;
	for (i = 7; i < 60; i++)
		if (!s[i] || !strchr(b64, s[i]))
			return false;
	return crypt_checksalt(s) == CRYPT_SALT_OK;
}

static bool all_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static int parse_web_users(struct parse_ctx *c, const yaml_node_t *node, struct tapir_web *w)
{
	yaml_node_pair_t *pair;
	char q[QUOTE_BUF];
	size_t n = 0, i;

	if (is_null(node))
		return 0;
	if (node->type != YAML_MAPPING_NODE)
		return bad(c, node,
			   "basic_auth_users must be a mapping of user: bcrypt hash, not %s",
			   kind_name(node));
	for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++)
		n++;
	if (n > WEB_MAX_USERS)
		return bad(c, node, "basic_auth_users: at most %d users, got %zu", WEB_MAX_USERS,
			   n);
	w->users = calloc(n ? n : 1, sizeof(*w->users));
	if (!w->users)
		return no_mem(c);
	for (pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *key = yaml_document_get_node(c->doc, pair->key);
		yaml_node_t *val = yaml_document_get_node(c->doc, pair->value);
		struct tapir_web_user *u = &w->users[w->n_users];
		const char *name, *hash;
		int err;

		if (!key || !val)
			return bad(c, node, "malformed basic_auth_users");
		err = get_string(c, key, "a basic_auth_users name", &name);
		if (err)
			return err;
		if (!*name || strchr(name, ':') || !all_printable(name))
			return bad(c, key,
				   "basic_auth_users: user %s must be non-empty printable text "
				   "without ':'",
				   QNODE(q, key));
		for (i = 0; i < w->n_users; i++)
			if (!strcmp(w->users[i].name, name))
				return bad(c, key, "basic_auth_users: user %s given twice",
					   QNODE(q, key));
		err = get_string(c, val, "a basic_auth_users hash", &hash);
		if (err)
			return err;
		if (!valid_bcrypt(hash))
			return bad(
				c, val,
				"basic_auth_users: the hash of user %s is not a bcrypt hash "
				"($2y$..., 60 characters, as `htpasswd -nbB USER PASSWORD` prints)",
				QNODE(q, key));
		u->name = strdup(name);
		u->hash = strdup(hash);
		w->n_users++;
		if (!u->name || !u->hash)
			return no_mem(c);
	}
	return 0;
}

static int web_file(struct parse_ctx *c, const yaml_node_t *node, const char *what, char **out,
		    int *line)
{
	int err = dup_string(c, node, what, out);

	if (err)
		return err;
	if (!**out)
		return bad(c, node, "%s must name a file", what);
	*line = node_line(node);
	return 0;
}

static int parse_tls(struct parse_ctx *c, const yaml_node_t *node, struct tapir_web *w)
{
	static const char *const keys[] = { "cert_file", "key_file", "client_ca_file",
					    "client_auth_type", "min_version" };
	static const char *const auth_names[] = {
		[TAPIR_CLIENT_AUTH_NONE] = "NoClientCert",
		[TAPIR_CLIENT_AUTH_IF_GIVEN] = "VerifyClientCertIfGiven",
		[TAPIR_CLIENT_AUTH_REQUIRE] = "RequireAndVerifyClientCert",
	};
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	const char *s;
	char q[QUOTE_BUF];
	size_t i;
	int err;

	err = get_fields(c, node, "tls_server_config", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (!vals[0] != !vals[1])
		return bad(c, node, "tls_server_config needs both cert_file and key_file");
	if (!vals[0] && (vals[2] || vals[3] || vals[4]))
		return bad(c, node,
			   "tls_server_config without cert_file and key_file: "
			   "client certificates and TLS versions need TLS");
	if (!vals[0])
		return 0;
	if ((err = web_file(c, vals[0], "cert_file", &w->cert_file, &w->cert_line)) ||
	    (err = web_file(c, vals[1], "key_file", &w->key_file, &w->key_line)))
		return err;
	if (vals[2]) {
		err = web_file(c, vals[2], "client_ca_file", &w->client_ca_file, &w->ca_line);
		if (err)
			return err;
		w->client_auth = TAPIR_CLIENT_AUTH_REQUIRE;
	}
	if (vals[3]) {
		err = get_string(c, vals[3], "client_auth_type", &s);
		if (err)
			return err;
		for (i = 0; i < ARRAY_SIZE(auth_names); i++)
			if (!strcmp(s, auth_names[i]))
				break;
		if (i == ARRAY_SIZE(auth_names))
			return bad(c, vals[3],
				   "client_auth_type must be NoClientCert, VerifyClientCertIfGiven "
				   "or RequireAndVerifyClientCert, got %s",
				   QNODE(q, vals[3]));
		w->client_auth = i;
		if (i != TAPIR_CLIENT_AUTH_NONE && !w->client_ca_file)
			return bad(c, vals[3], "client_auth_type %s needs client_ca_file", s);
		if (i == TAPIR_CLIENT_AUTH_NONE && w->client_ca_file)
			return bad(c, vals[3],
				   "client_auth_type NoClientCert with a client_ca_file: "
				   "say which client certificates to verify, or drop the CA");
	}
	if (vals[4]) {
		err = get_string(c, vals[4], "min_version", &s);
		if (err)
			return err;
		if (!strcmp(s, "TLS12"))
			w->min_tls = 12;
		else if (!strcmp(s, "TLS13"))
			w->min_tls = 13;
		else
			return bad(c, vals[4], "min_version must be TLS12 or TLS13, got %s",
				   QNODE(q, vals[4]));
	}
	return 0;
}

static int web_u32(struct parse_ctx *c, const yaml_node_t *node, const char *what, unsigned int lo,
		   unsigned int hi, uint32_t *out)
{
	unsigned long long v;
	char q[QUOTE_BUF];
	int err = parse_u32(c, node, what, &v);

	if (err)
		return err;
	if (v < lo || v > hi)
		return bad(c, node, "%s must be in %u..%u, got %s", what, lo, hi, QNODE(q, node));
	*out = v;
	return 0;
}

/* The keys of `web:`, which are also the top level of a --web-config file (@name NULL). */
static int parse_web(struct parse_ctx *c, const yaml_node_t *node, const char *name,
		     struct tapir_web *w)
{
	static const char *const keys[] = { "tls_server_config", "basic_auth_users",
					    "max_requests",	 "max_connections",
					    "header_timeout_s",	 "idle_timeout_s" };
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	int err;

	if (!node)
		return 0;
	err = get_fields(c, node, name, keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	w->line = node_line(node);
	w->source = strdup(c->name);
	if (!w->source)
		return no_mem(c);
	if (vals[0] && (err = parse_tls(c, vals[0], w)))
		return err;
	if (vals[1] && (err = parse_web_users(c, vals[1], w)))
		return err;
	if (vals[2] && (err = web_u32(c, vals[2], "max_requests", 1, 1024, &w->max_requests)))
		return err;
	if (vals[3] && (err = web_u32(c, vals[3], "max_connections", 4, 4096, &w->max_connections)))
		return err;
	if (vals[4] &&
	    (err = web_u32(c, vals[4], "header_timeout_s", 1, 3600, &w->header_timeout_s)))
		return err;
	if (vals[5] && (err = web_u32(c, vals[5], "idle_timeout_s", 1, 3600, &w->idle_timeout_s)))
		return err;
	return 0;
}

/* --- engines: vLLM and SGLang metrics --------------------------------------------------- */

static const char *const engine_kinds[] = { "auto", "vllm", "sglang", "off" };

/* An integer of section @section (engines, llm) in lo..hi; messages name it "SECTION.WHAT". */
static int section_u32(struct parse_ctx *c, const yaml_node_t *node, const char *section,
		       const char *what, unsigned int lo, unsigned int hi, uint32_t *out)
{
	unsigned long long v;
	char q[QUOTE_BUF];
	int err = parse_u32(c, node, what, &v);

	if (err)
		return err;
	if (v < lo || v > hi)
		return bad(c, node, "%s.%s must be in %u..%u, got %s", section, what, lo, hi,
			   QNODE(q, node));
	*out = v;
	return 0;
}

static int engine_u32(struct parse_ctx *c, const yaml_node_t *node, const char *what,
		      unsigned int lo, unsigned int hi, uint32_t *out)
{
	return section_u32(c, node, "engines", what, lo, hi, out);
}

static int parse_engine_rule(struct parse_ctx *c, const yaml_node_t *node, void *item)
{
	struct tapir_engine_rule *rule = item;
	static const char *const keys[] = { "cgroup", "engine", "port", "path" };
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	char q[QUOTE_BUF];
	const char *s;
	size_t i;
	int err;

	rule->line = node_line(node);
	if (node->type != YAML_MAPPING_NODE)
		return bad(c, node, "each engines rule must be a mapping with cgroup, not %s",
			   kind_name(node));
	err = get_fields(c, node, "engines rule", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (!vals[0])
		return bad(c, node, "engines rule is missing the required key \"cgroup\"");
	err = dup_string(c, vals[0], "cgroup", &rule->cgroup);
	if (err)
		return err;
	if (rule->cgroup[0] != '/')
		return bad(c, vals[0],
			   "cgroup %s must be a cgroup v2 path or glob starting with '/'",
			   Q(q, rule->cgroup, strlen(rule->cgroup)));
	if (vals[1]) {
		err = get_string(c, vals[1], "engine", &s);
		if (err)
			return err;
		for (i = 0; i < ARRAY_SIZE(engine_kinds) && strcmp(s, engine_kinds[i]); i++)
			;
		if (i == ARRAY_SIZE(engine_kinds))
			return bad(c, vals[1], "engine must be auto, vllm, sglang or off, got %s",
				   Q(q, s, strlen(s)));
		rule->engine = i == 3 ? TAPIR_ENGINE_RULE_OFF : (int)i;
	}
	if (vals[2] && (err = engine_u32(c, vals[2], "rules.port", 1, 65535, &rule->port)))
		return err;
	s = "/metrics";
	if (vals[3] && (err = get_string(c, vals[3], "path", &s)))
		return err;
	if (s[0] != '/' || strlen(s) > PROBE_PATH_MAX || !all_printable(s) || strchr(s, ' '))
		return bad(c, vals[3],
			   "path must start with '/', be 1..%d bytes, without blanks or "
			   "control characters, got %s",
			   PROBE_PATH_MAX, Q(q, s, strlen(s)));
	rule->path = strdup(s);
	return rule->path ? 0 : no_mem(c);
}

static int parse_engine_rules(struct parse_ctx *c, const yaml_node_t *node)
{
	return parse_list(c, node, "engines.rules", sizeof(*c->cfg->engine_rules),
			  (void **)&c->cfg->engine_rules, &c->cfg->n_engine_rules,
			  parse_engine_rule);
}

static int parse_engines(struct parse_ctx *c, const yaml_node_t *node)
{
	static const char *const keys[] = { "enabled",	  "scrape_interval_s",
					    "timeout_ms", "max_body_bytes",
					    "max_series", "autoscaling_window_s",
					    "rules" };
	struct tapir_config *cfg = c->cfg;
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	int err;

	err = get_fields(c, node, "engines", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (vals[0] && (err = parse_bool(c, vals[0], "engines.enabled", &cfg->engines_enabled)))
		return err;
	if (vals[1] && (err = engine_u32(c, vals[1], keys[1], 1, 3600, &cfg->engine_interval_s)))
		return err;
	if (vals[2] && (err = engine_u32(c, vals[2], keys[2], 100, 60000, &cfg->engine_timeout_ms)))
		return err;
	if (vals[3] &&
	    (err = engine_u32(c, vals[3], keys[3], 4096, 1u << 30, &cfg->engine_max_body)))
		return err;
	if (vals[4] &&
	    (err = engine_u32(c, vals[4], keys[4], 100, 1000000, &cfg->engine_max_samples)))
		return err;
	if (vals[5] &&
	    (err = engine_u32(c, vals[5], keys[5], 1, 86400, &cfg->autoscaling_window_s)))
		return err;
	if (cfg->engine_timeout_ms > cfg->engine_interval_s * 1000)
		return bad(c, vals[2] ? vals[2] : node,
			   "engines.timeout_ms (%u) must not exceed scrape_interval_s (%u s)",
			   cfg->engine_timeout_ms, cfg->engine_interval_s);
	return vals[6] ? parse_engine_rules(c, vals[6]) : 0;
}

/* --- outbound: requests the watched processes send ------------------------------------- */

#define DESTINATION_NAME_MAX 64

static int parse_destination(struct parse_ctx *c, const yaml_node_t *node, void *item)
{
	static const char *const keys[] = { "name", "address", "port", "path" };
	struct tapir_destination *d = item;
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	char q[QUOTE_BUF];
	size_t i, len;
	int err;

	d->line = node_line(node);
	if (node->type != YAML_MAPPING_NODE)
		return bad(c, node, "each outbound destination must be a mapping with name, not %s",
			   kind_name(node));
	err = get_fields(c, node, "outbound destination", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (!vals[0])
		return bad(c, node, "outbound destination is missing the required key \"name\"");
	err = dup_string(c, vals[0], "name", &d->name);
	if (err)
		return err;
	len = strlen(d->name);
	for (i = 0; i < len && (isalnum((unsigned char)d->name[i]) || strchr("_.-", d->name[i]));
	     i++)
		;
	if (!len || len > DESTINATION_NAME_MAX || i < len || !strcmp(d->name, "other"))
		return bad(c, vals[0],
			   "destination name %s must be 1..%d letters, digits, '_', '.' or '-', "
			   "and not \"other\" (what matches no destination)",
			   Q(q, d->name, len), DESTINATION_NAME_MAX);
	if (vals[1] && (err = dup_string(c, vals[1], "address", &d->address)))
		return err;
	if (d->address && (!d->address[0] || !all_printable(d->address) || strchr(d->address, ' ')))
		return bad(c, vals[1],
			   "address must be a glob on the server's address, e.g. \"10.0.*\" or "
			   "\"::1\", got %s",
			   Q(q, d->address, strlen(d->address)));
	if (vals[2] &&
	    (err = section_u32(c, vals[2], "outbound", "destinations.port", 1, 65535, &d->port)))
		return err;
	if (vals[3] && (err = dup_string(c, vals[3], "path", &d->path)))
		return err;
	if (d->path && (d->path[0] != '/' || strlen(d->path) > PROBE_PATH_MAX ||
			!all_printable(d->path) || strchr(d->path, ' ')))
		return bad(
			c, vals[3],
			"path must be a prefix of request paths: start with '/', be 1..%d bytes, "
			"without blanks or control characters, got %s",
			PROBE_PATH_MAX, Q(q, d->path, strlen(d->path)));
	return 0;
}

static int parse_outbound(struct parse_ctx *c, const yaml_node_t *node)
{
	static const char *const keys[] = { "enabled", "destinations" };
	struct tapir_config *cfg = c->cfg;
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	int err;

	err = get_fields(c, node, "outbound", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (vals[0] && (err = parse_bool(c, vals[0], "outbound.enabled", &cfg->outbound_enabled)))
		return err;
	return vals[1] ? parse_list(c, vals[1], "outbound.destinations", sizeof(*cfg->destinations),
				    (void **)&cfg->destinations, &cfg->n_destinations,
				    parse_destination)
		       : 0;
}

/* --- deployments[].async: async jobs, their queue and their webhooks ---------------------- */

#define ASYNC_LIST_MAX	  16 /* entries of each async list */
#define FIELD_NAME_MAX	  64
#define FIELD_VALUE_MAX	  256
#define METHOD_MAX	  16
#define DEFAULT_ENQUEUE_0 "X-Request-Start"
#define DEFAULT_ENQUEUE_1 "X-Queue-Start"

/* An HTTP field name: RFC 9110's token characters. */
static bool is_token(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("!#$%&'*+-.^_`|~", s[i]))
			return false;
	return n && n <= max;
}

static bool is_path_glob(const char *s)
{
	return s[0] == '/' && strlen(s) <= PROBE_PATH_MAX && all_printable(s) && !strchr(s, ' ') &&
	       !strchr(s, '?');
}

/* A list of 1..ASYNC_LIST_MAX strings that @ok accepts (@want says what they must be). */
static int parse_async_list(struct parse_ctx *c, const yaml_node_t *node, const char *what,
			    bool (*ok)(const char *s), const char *want, char ***out, size_t *n_out)
{
	yaml_node_item_t *item;
	char q[QUOTE_BUF], name[64];
	size_t n, i;
	const char *s;
	int err;

	if (node->type != YAML_SEQUENCE_NODE)
		return bad(c, node, "async.%s must be a list of strings, not %s", what,
			   kind_name(node));
	n = node->data.sequence.items.top - node->data.sequence.items.start;
	if (!n || n > ASYNC_LIST_MAX)
		return bad(c, node, "async.%s must name 1..%d entries, got %zu", what,
			   ASYNC_LIST_MAX, n);
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return no_mem(c);
	*n_out = n;
	for (item = node->data.sequence.items.start, i = 0; i < n; item++, i++) {
		yaml_node_t *one = yaml_document_get_node(c->doc, *item);

		if (!one)
			return bad(c, node, "malformed list in async.%s", what);
		snprintf(name, sizeof(name), "async.%s[%zu]", what, i);
		err = get_string(c, one, name, &s);
		if (err)
			return err;
		if (!ok(s))
			return bad(c, one, "%s must be %s, got %s", name, want, Q(q, s, strlen(s)));
		(*out)[i] = strdup(s);
		if (!(*out)[i])
			return no_mem(c);
	}
	return 0;
}

static bool ok_field(const char *s)
{
	return is_token(s, FIELD_NAME_MAX);
}

/* header: "Name" (any value) or "Name: value" (that whole value, case-insensitive). */
static int parse_async_header(struct parse_ctx *c, const yaml_node_t *node,
			      struct tapir_async_rule *a)
{
	const char *s, *colon, *v;
	char q[QUOTE_BUF];
	int err = get_string(c, node, "async.header", &s);

	if (err)
		return err;
	colon = strchr(s, ':');
	a->header = colon ? strndup(s, colon - s) : strdup(s);
	if (!a->header)
		return no_mem(c);
	if (colon) {
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		a->header_value = strdup(v);
		if (!a->header_value)
			return no_mem(c);
	}
	if (!is_token(a->header, FIELD_NAME_MAX) ||
	    (a->header_value && (!*a->header_value || strlen(a->header_value) > FIELD_VALUE_MAX ||
				 !all_printable(a->header_value))))
		return bad(c, node,
			   "async.header must be a field name (1..%d token characters) or "
			   "\"Name: value\" (a value of 1..%d printable bytes), got %s",
			   FIELD_NAME_MAX, FIELD_VALUE_MAX, Q(q, s, strlen(s)));
	return 0;
}

/* webhook: {destination: NAME, method: POST}; the name is checked against outbound's later. */
static int parse_async_webhook(struct parse_ctx *c, const yaml_node_t *node,
			       struct tapir_async_rule *a)
{
	static const char *const keys[] = { "destination", "method" };
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	char q[QUOTE_BUF];
	size_t i;
	int err;

	if (node->type != YAML_MAPPING_NODE)
		return bad(c, node, "async.webhook must be a mapping with destination, not %s",
			   kind_name(node));
	err = get_fields(c, node, "async.webhook", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (!vals[0])
		return bad(c, node, "async.webhook is missing the required key \"destination\"");
	if ((err = dup_string(c, vals[0], "async.webhook.destination", &a->webhook_destination)))
		return err;
	if (vals[1] && (err = dup_string(c, vals[1], "async.webhook.method", &a->webhook_method)))
		return err;
	if (!a->webhook_method && !(a->webhook_method = strdup("POST")))
		return no_mem(c);
	for (i = 0; a->webhook_method[i] >= 'A' && a->webhook_method[i] <= 'Z'; i++)
		;
	if (!i || i > METHOD_MAX || a->webhook_method[i])
		return bad(c, vals[1], "async.webhook.method must be an upper-case method, got %s",
			   Q(q, a->webhook_method, strlen(a->webhook_method)));
	return 0;
}

static int parse_async(struct parse_ctx *c, const yaml_node_t *node, struct tapir_rule *rule)
{
	static const char *const keys[] = { "paths", "header", "enqueue_headers", "submit_paths",
					    "webhook" };
	static const char *const want_path =
		"a glob on request paths: start with '/', at most 200 bytes, no blank, '?' or "
		"control character";
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	struct tapir_async_rule *a;
	int err;

	if (node->type != YAML_MAPPING_NODE)
		return bad(c, node, "deployments[].async must be a mapping, not %s",
			   kind_name(node));
	err = get_fields(c, node, "async", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	a = rule->async = calloc(1, sizeof(*a));
	if (!a)
		return no_mem(c);
	a->line = node_line(node);
	if (!vals[0] && !vals[1] && !vals[3] && !vals[4])
		return bad(c, node,
			   "async needs at least one of paths, header, submit_paths and webhook");
	if (vals[0] && (err = parse_async_list(c, vals[0], "paths", is_path_glob, want_path,
					       &a->paths, &a->n_paths)))
		return err;
	if (vals[1] && (err = parse_async_header(c, vals[1], a)))
		return err;
	if (vals[2] && (err = parse_async_list(c, vals[2], "enqueue_headers", ok_field,
					       "a field name (1..64 token characters)",
					       &a->enqueue_headers, &a->n_enqueue_headers)))
		return err;
	if (vals[3] && (err = parse_async_list(c, vals[3], "submit_paths", is_path_glob, want_path,
					       &a->submit_paths, &a->n_submit_paths)))
		return err;
	if (vals[4] && (err = parse_async_webhook(c, vals[4], a)))
		return err;
	if (!a->enqueue_headers) {
		a->enqueue_headers = calloc(2, sizeof(char *));
		if (!a->enqueue_headers)
			return no_mem(c);
		a->n_enqueue_headers = 2;
		a->enqueue_headers[0] = strdup(DEFAULT_ENQUEUE_0);
		a->enqueue_headers[1] = strdup(DEFAULT_ENQUEUE_1);
		if (!a->enqueue_headers[0] || !a->enqueue_headers[1])
			return no_mem(c);
	}
	return 0;
}

/* Each rule's webhook names a destination of outbound.destinations (parsed after the rules). */
static int check_webhooks(struct parse_ctx *c)
{
	const struct tapir_config *cfg = c->cfg;
	size_t i, j;

	for (i = 0; i < cfg->n_rules; i++) {
		const struct tapir_async_rule *a = cfg->rules[i].async;

		if (!a || !a->webhook_destination)
			continue;
		for (j = 0; j < cfg->n_destinations; j++)
			if (!strcmp(cfg->destinations[j].name, a->webhook_destination))
				break;
		if (j == cfg->n_destinations) {
			set_err(c->err, c->errlen,
				"%s:%d: async.webhook.destination \"%s\" is not the name of an "
				"outbound.destinations entry",
				c->name, a->line, a->webhook_destination);
			return -EINVAL;
		}
	}
	return 0;
}

bool tapir_rule__wants_heads(const struct tapir_rule *r)
{
	return r->async && (r->async->n_paths || r->async->header || r->async->n_submit_paths);
}

bool tapir_config__wants_heads(const struct tapir_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_rules; i++)
		if (tapir_rule__wants_heads(&cfg->rules[i]))
			return true;
	return false;
}

/* --- llm: token metrics from the payload of LLM API requests ----------------------------- */

#define LLM_REQUEST_HEAD_MIN 1024u
#define LLM_REQUEST_HEAD_MAX (1u << 20)
#define LLM_RESPONSE_MIN     4096u
#define LLM_RESPONSE_MAX     (64u << 20)
/* The kernel's path table holds the built-in paths first; llm.paths get the rest. */
#define LLM_PATHS_MAX (TAPIR_LLM_TABLE - TAPIR_LLM_BUILTIN)

/*
 * The kernel compares these with the path of a POST's request line, byte for byte in three
 * 8-byte words (up to its query, a trailing '/' or the space before the version), and the
 * request's API is the one the path ends in (tapir_llm_api_of_suffix).
 */
static int check_llm_path(struct parse_ctx *c, const yaml_node_t *node, const char *what,
			  size_t idx, const char *s)
{
	size_t len = strlen(s), i;
	char q[QUOTE_BUF];

	if (s[0] != '/')
		return bad(c, node,
			   "%s[%zu]: %s must be a request path starting with '/', "
			   "e.g. \"/openai/chat/completions\"",
			   what, idx, Q(q, s, len));
	if (len > TAPIR_LLM_PATH_MAX)
		return bad(c, node, "%s[%zu]: %s is %zu bytes long, more than %d", what, idx,
			   Q(q, s, len), len, TAPIR_LLM_PATH_MAX);
	for (i = 0; i < len; i++) {
		unsigned char ch = s[i];

		if (ch <= ' ' || ch == 0x7f)
			return bad(c, node,
				   "%s[%zu]: %s contains whitespace or a control character", what,
				   idx, Q(q, s, len));
		if (ch == '?' || ch == '#')
			return bad(c, node,
				   "%s[%zu]: %s contains '%c': a path only, without query "
				   "or fragment",
				   what, idx, Q(q, s, len), ch);
	}
	if (tapir_llm_api_of_suffix(s) == TAPIR_LLM_NONE)
		return bad(c, node,
			   "%s[%zu]: %s must end in /chat/completions, /completions, "
			   "/embeddings, /responses, /messages, /generate or /generate_stream",
			   what, idx, Q(q, s, len));
	return 0;
}

/* llm.paths, or a rule's llm list (@what): may be empty (the default); null counts as empty. */
static int parse_llm_paths(struct parse_ctx *c, const yaml_node_t *node, const char *what_list,
			   char ***out, size_t *n_out)
{
	yaml_node_item_t *item;
	char what[64], q[QUOTE_BUF];
	char **v;
	size_t n = 0, count, j;
	int err = 0;

	if (is_null(node))
		return 0;
	if (node->type != YAML_SEQUENCE_NODE)
		return bad(c, node, "%s must be a list of strings, not %s", what_list,
			   kind_name(node));
	count = node->data.sequence.items.top - node->data.sequence.items.start;
	if (!count)
		return 0;
	v = calloc(count, sizeof(*v));
	if (!v)
		return no_mem(c);
	for (item = node->data.sequence.items.start; item < node->data.sequence.items.top;
	     item++, n++) {
		yaml_node_t *p = yaml_document_get_node(c->doc, *item);
		const char *s;

		if (!p) {
			err = bad(c, node, "malformed list in %s", what_list);
			break;
		}
		if (n == LLM_PATHS_MAX) {
			err = bad(c, p, "%s: at most %d paths beyond the %d built-in ones, got %zu",
				  what_list, LLM_PATHS_MAX, TAPIR_LLM_BUILTIN, count);
			break;
		}
		snprintf(what, sizeof(what), "%s[%zu]", what_list, n);
		err = get_string(c, p, what, &s);
		if (!err)
			err = check_llm_path(c, p, what_list, n, s);
		for (j = 0; !err && j < n; j++)
			if (!strcmp(v[j], s))
				err = bad(c, p, "%s[%zu]: %s is given twice (%s[%zu])", what_list,
					  n, Q(q, s, strlen(s)), what_list, j);
		if (err)
			break;
		v[n] = strdup(s);
		if (!v[n]) {
			err = no_mem(c);
			break;
		}
	}
	if (err) {
		tapir_strv_free(v, count);
		return err;
	}
	tapir_strv_free(*out, *n_out);
	*out = v;
	*n_out = n;
	return 0;
}

/*
 * The kernel's table holds llm.paths and every rule's paths once each: they must fit together.
 * Checked when the whole file is read; the message points at the list that overflows it.
 */
static int check_llm_table(struct parse_ctx *c)
{
	const struct tapir_config *cfg = c->cfg;
	const char *const *all[1 + cfg->n_rules];
	size_t n_all[1 + cfg->n_rules], i, k, j, n = 0;
	const char *seen[LLM_PATHS_MAX];
	bool dup;

	all[0] = (const char *const *)cfg->llm_paths;
	n_all[0] = cfg->n_llm_paths;
	for (i = 0; i < cfg->n_rules; i++) {
		all[i + 1] = (const char *const *)cfg->rules[i].llm_paths;
		n_all[i + 1] = cfg->rules[i].n_llm_paths;
	}
	for (i = 0; i <= cfg->n_rules; i++)
		for (k = 0; k < n_all[i]; k++) {
			for (j = 0, dup = false; j < n && !dup; j++)
				dup = !strcmp(seen[j], all[i][k]);
			if (dup)
				continue;
			if (n == LLM_PATHS_MAX) {
				set_err(c->err, c->errlen,
					"%s:%d: llm.paths and the rules' llm lists name more than %d "
					"paths beyond the %d built-in ones",
					c->name, i ? cfg->rules[i - 1].llm_line : c->llm_line,
					LLM_PATHS_MAX, TAPIR_LLM_BUILTIN);
				return -EINVAL;
			}
			seen[n++] = all[i][k];
		}
	return 0;
}

static int parse_llm(struct parse_ctx *c, const yaml_node_t *node)
{
	static const char *const keys[] = { "enabled", "paths", "request_head_bytes",
					    "response_bytes", "ringbuf_bytes" };
	struct tapir_config *cfg = c->cfg;
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	unsigned long long v;
	char q[QUOTE_BUF];
	int err;

	err = get_fields(c, node, "llm", keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (vals[0] && (err = parse_bool(c, vals[0], "llm.enabled", &cfg->llm_enabled)))
		return err;
	if (vals[1]) {
		c->llm_line = node_line(vals[1]);
		err = parse_llm_paths(c, vals[1], "llm.paths", &cfg->llm_paths, &cfg->n_llm_paths);
		if (err)
			return err;
	}
	if (vals[2] && (err = section_u32(c, vals[2], "llm", keys[2], LLM_REQUEST_HEAD_MIN,
					  LLM_REQUEST_HEAD_MAX, &cfg->llm_request_head_bytes)))
		return err;
	if (vals[3] && (err = section_u32(c, vals[3], "llm", keys[3], LLM_RESPONSE_MIN,
					  LLM_RESPONSE_MAX, &cfg->llm_response_bytes)))
		return err;
	if (vals[4]) {
		err = parse_u32(c, vals[4], keys[4], &v);
		if (err)
			return err;
		if (v < RINGBUF_BYTES_MIN || v > RINGBUF_BYTES_MAX || (v & (v - 1)))
			return bad(c, vals[4],
				   "llm.ringbuf_bytes must be a power of two in %u..%u, got %s",
				   RINGBUF_BYTES_MIN, RINGBUF_BYTES_MAX, QNODE(q, vals[4]));
		cfg->llm_ringbuf_bytes = v;
	}
	return 0;
}

static int parse_root(struct parse_ctx *c, const yaml_node_t *root)
{
	static const char *const keys[] = { "listen",	 "deployments", "buckets",    "limits",
					    "readiness", "gpu",		"kubernetes", "web",
					    "engines",	 "llm",		"outbound" };
	yaml_node_t *vals[ARRAY_SIZE(keys)];
	int err;

	if (!root)
		return 0; /* an empty file: all defaults, no rules */
	if (!is_null(root) && root->type != YAML_MAPPING_NODE)
		return bad(c, root, "the top level must be a mapping of settings, not %s",
			   kind_name(root));
	err = get_fields(c, root, NULL, keys, ARRAY_SIZE(keys), vals);
	if (err)
		return err;
	if (vals[0]) {
		err = parse_listen(c, vals[0]);
		if (err)
			return err;
	}
	if (vals[1]) {
		err = parse_deployments(c, vals[1]);
		if (err)
			return err;
	}
	if (vals[2]) {
		err = parse_bucket_section(c, vals[2]);
		if (err)
			return err;
	}
	if (vals[3]) {
		err = parse_limits(c, vals[3]);
		if (err)
			return err;
	}
	if (vals[4]) {
		err = parse_readiness(c, vals[4]);
		if (err)
			return err;
	}
	if (vals[6]) {
		err = parse_kubernetes(c, vals[6]);
		if (err)
			return err;
	}
	if (vals[5]) {
		err = parse_gpu(c, vals[5]);
		if (err)
			return err;
	}
	if (vals[8]) {
		err = parse_engines(c, vals[8]);
		if (err)
			return err;
	}
	if (vals[9]) {
		err = parse_llm(c, vals[9]);
		if (err)
			return err;
	}
	if (vals[10]) {
		err = parse_outbound(c, vals[10]);
		if (err)
			return err;
	}
	err = check_llm_table(c);
	if (!err)
		err = check_webhooks(c);
	if (err)
		return err;
	if (vals[7])
		return parse_web(c, vals[7], "web", &c->cfg->web);
	return 0;
}

/* libyaml's own message, with the line it points at; reader errors carry only an offset. */
static int yaml_error(struct parse_ctx *c, const yaml_parser_t *parser, const char *text,
		      size_t len)
{
	size_t line = parser->problem_mark.line + 1, i;
	const char *problem = parser->problem ? parser->problem : "syntax error";

	if (parser->error == YAML_MEMORY_ERROR)
		return no_mem(c);
	if (parser->error == YAML_READER_ERROR) {
		for (line = 1, i = 0; i < parser->problem_offset && i < len; i++)
			line += text[i] == '\n';
		set_err(c->err, c->errlen, "%s:%zu: invalid YAML: %s", c->name, line, problem);
	} else if (parser->context) {
		set_err(c->err, c->errlen, "%s:%zu: invalid YAML: %s (%s at line %zu)", c->name,
			line, problem, parser->context, parser->context_mark.line + 1);
	} else {
		set_err(c->err, c->errlen, "%s:%zu: invalid YAML: %s", c->name, line, problem);
	}
	return -EINVAL;
}

static void *memdup(const void *p, size_t n)
{
	void *q = malloc(n);

	if (q)
		memcpy(q, p, n);
	return q;
}

struct tapir_config *tapir_config__new_default(void)
{
	struct tapir_config *cfg = calloc(1, sizeof(*cfg));

	if (!cfg)
		return NULL;
	cfg->listen = strdup(DEFAULT_LISTEN);
	cfg->latency_buckets = memdup(default_latency_buckets, sizeof(default_latency_buckets));
	cfg->n_latency_buckets = ARRAY_SIZE(default_latency_buckets);
	cfg->size_buckets = memdup(default_size_buckets, sizeof(default_size_buckets));
	cfg->n_size_buckets = ARRAY_SIZE(default_size_buckets);
	cfg->max_connections = DEFAULT_MAX_CONNECTIONS;
	cfg->ringbuf_bytes = DEFAULT_RINGBUF_BYTES;
	cfg->aggregated_series = DEFAULT_AGGREGATED_SERIES;
	cfg->gc_interval_ms = DEFAULT_GC_INTERVAL_MS;
	cfg->series_grace_s = 300;
	cfg->kube_refresh_s = 30;
	cfg->max_series = 50000;
	cfg->probe_paths = strv_dup(default_probe_paths, ARRAY_SIZE(default_probe_paths));
	/* Counted only once allocated, so tapir_config__free() never walks a NULL list. */
	if (cfg->probe_paths)
		cfg->n_probe_paths = ARRAY_SIZE(default_probe_paths);
	cfg->unknown_after_s = DEFAULT_UNKNOWN_AFTER_S;
	cfg->nvml_library = strdup(DEFAULT_NVML_LIBRARY);
	tapir_web__init(&cfg->web);
	cfg->llm_enabled = true;
	cfg->outbound_enabled = true;
	cfg->llm_request_head_bytes = DEFAULT_LLM_REQUEST_HEAD_BYTES;
	cfg->llm_response_bytes = DEFAULT_LLM_RESPONSE_BYTES;
	cfg->llm_ringbuf_bytes = DEFAULT_LLM_RINGBUF_BYTES;
	cfg->engines_enabled = true;
	cfg->engine_interval_s = DEFAULT_ENGINE_INTERVAL_S;
	cfg->engine_timeout_ms = DEFAULT_ENGINE_TIMEOUT_MS;
	cfg->engine_max_body = DEFAULT_ENGINE_MAX_BODY;
	cfg->engine_max_samples = DEFAULT_ENGINE_MAX_SAMPLES;
	cfg->autoscaling_window_s = DEFAULT_AUTOSCALING_WINDOW_S;
	if (!cfg->listen || !cfg->latency_buckets || !cfg->size_buckets || !cfg->probe_paths ||
	    !cfg->nvml_library) {
		tapir_config__free(cfg);
		errno = ENOMEM;
		return NULL;
	}
	return cfg;
}

/* Load the one YAML document of @text and hand its root to @fn. */
static int parse_yaml(struct parse_ctx *c, const char *text, size_t len,
		      int (*fn)(struct parse_ctx *c, const yaml_node_t *root, void *arg), void *arg)
{
	yaml_document_t doc, extra;
	yaml_parser_t parser;
	int ret;

	if (!yaml_parser_initialize(&parser))
		return no_mem(c);
	/* libyaml asserts on a NULL input, even an empty one. */
	yaml_parser_set_input_string(&parser, (const unsigned char *)(text ? text : ""),
				     text ? len : 0);

	if (!yaml_parser_load(&parser, &doc)) {
		ret = yaml_error(c, &parser, text, len);
		goto out_parser;
	}
	/* A second document would be silently ignored; say so instead. */
	if (!yaml_parser_load(&parser, &extra)) {
		ret = yaml_error(c, &parser, text, len);
		goto out_doc;
	}
	if (yaml_document_get_root_node(&extra))
		ret = bad(c, yaml_document_get_root_node(&extra),
			  "only one YAML document is allowed in a config file");
	else
		ret = 0;
	yaml_document_delete(&extra);
	if (ret)
		goto out_doc;

	c->doc = &doc;
	ret = fn(c, yaml_document_get_root_node(&doc), arg);
	c->doc = NULL;
out_doc:
	yaml_document_delete(&doc);
out_parser:
	yaml_parser_delete(&parser);
	return ret;
}

static int config_root(struct parse_ctx *c, const yaml_node_t *root, void *arg)
{
	return parse_root(c, root);
}

int tapir_config__parse(const char *name, const char *text, size_t len, struct tapir_config **out,
			char *err, size_t errlen)
{
	struct parse_ctx c = { .name = name ? name : "<config>", .err = err, .errlen = errlen };
	int ret;

	*out = NULL;
	set_err(err, errlen, "%s", "");
	c.cfg = tapir_config__new_default();
	if (!c.cfg)
		return no_mem(&c);
	ret = parse_yaml(&c, text, len, config_root, NULL);
	if (ret) {
		tapir_config__free(c.cfg);
		return ret;
	}
	*out = c.cfg;
	return 0;
}

static int web_root(struct parse_ctx *c, const yaml_node_t *root, void *arg)
{
	if (root && !is_null(root) && root->type != YAML_MAPPING_NODE)
		return bad(c, root, "the top level must be a mapping of web settings, not %s",
			   kind_name(root));
	return parse_web(c, root, NULL, arg);
}

int tapir_web__parse(const char *name, const char *text, size_t len, struct tapir_web *w, char *err,
		     size_t errlen)
{
	struct parse_ctx c = { .name = name ? name : "<web config>", .err = err, .errlen = errlen };
	int ret;

	set_err(err, errlen, "%s", "");
	tapir_web__init(w);
	ret = parse_yaml(&c, text, len, web_root, w);
	if (!ret && !w->source) {
		/* An empty file still says where the settings came from. */
		w->source = strdup(c.name);
		ret = w->source ? 0 : no_mem(&c);
	}
	if (ret)
		tapir_web__clear(w);
	return ret;
}

static int read_file(const char *path, char **text, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = NULL, *tmp;
	ssize_t got;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		if (!buf || n == cap) {
			if (buf)
				cap *= 2;
			if (cap > MAX_FILE_BYTES + 1) {
				err = -EFBIG;
				goto err_free;
			}
			tmp = realloc(buf, cap);
			if (!tmp) {
				err = -ENOMEM;
				goto err_free;
			}
			buf = tmp;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err = -errno;
			goto err_free;
		}
		if (got == 0)
			break;
		n += got;
	}
	close(fd);
	*text = buf;
	*len = n;
	return 0;

err_free:
	free(buf);
	close(fd);
	return err;
}

int tapir_web__load(const char *path, struct tapir_web *w, char *err, size_t errlen)
{
	size_t len = 0;
	char *text = NULL;
	int ret;

	tapir_web__init(w);
	ret = read_file(path, &text, &len);
	if (ret) {
		set_err(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	ret = tapir_web__parse(path, text, len, w, err, errlen);
	free(text);
	return ret;
}

int tapir_config__load(const char *path, struct tapir_config **out, char *err, size_t errlen)
{
	size_t len = 0;
	char *text = NULL;
	int ret;

	*out = NULL;
	ret = read_file(path, &text, &len);
	if (ret) {
		set_err(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}
	ret = tapir_config__parse(path, text, len, out, err, errlen);
	free(text);
	if (ret)
		return ret;
	(*out)->path = strdup(path);
	if (!(*out)->path) {
		tapir_config__free(*out);
		*out = NULL;
		set_err(err, errlen, "%s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	return 0;
}

static void async_free(struct tapir_async_rule *a)
{
	if (!a)
		return;
	tapir_strv_free(a->paths, a->n_paths);
	tapir_strv_free(a->enqueue_headers, a->n_enqueue_headers);
	tapir_strv_free(a->submit_paths, a->n_submit_paths);
	free(a->header);
	free(a->header_value);
	free(a->webhook_destination);
	free(a->webhook_method);
	free(a);
}

void tapir_config__free(struct tapir_config *cfg)
{
	size_t i;
	int j;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_rules; i++) {
		free(cfg->rules[i].cgroup);
		tapir_strv_free(cfg->rules[i].llm_paths, cfg->rules[i].n_llm_paths);
		async_free(cfg->rules[i].async);
		for (j = 0; j < TAPIR_L_COUNT; j++) {
			free(cfg->rules[i].labels[j]);
			free(cfg->rules[i].env[j]);
		}
	}
	free(cfg->rules);
	for (i = 0; i < cfg->n_engine_rules; i++) {
		free(cfg->engine_rules[i].cgroup);
		free(cfg->engine_rules[i].path);
	}
	free(cfg->engine_rules);
	for (i = 0; i < cfg->n_destinations; i++) {
		free(cfg->destinations[i].name);
		free(cfg->destinations[i].address);
		free(cfg->destinations[i].path);
	}
	free(cfg->destinations);
	tapir_web__clear(&cfg->web);
	free(cfg->kubelet_url);
	free(cfg->kube_token_file);
	free(cfg->kube_ca_file);
	for (j = 0; j < TAPIR_L_COUNT; j++)
		free(cfg->kube_labels[j]);
	free(cfg->path);
	free(cfg->web_path);
	free(cfg->listen);
	free(cfg->latency_buckets);
	free(cfg->size_buckets);
	tapir_strv_free(cfg->probe_paths, cfg->n_probe_paths);
	tapir_strv_free(cfg->llm_paths, cfg->n_llm_paths);
	free(cfg->nvml_library);
	free(cfg);
}
