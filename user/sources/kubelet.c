// SPDX-License-Identifier: GPL-2.0
/* Fetches the kubelet's /pods over HTTP(S) with libcurl and turns the PodList into C structs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "strv.h"
#include "buf.h"
#include "kubelet.h"
#include "log.h"

/*
 * A PodList reaches about 14 levels inside managedFields (items, pod, metadata, managedFields,
 * entry, fieldsV1, f:spec, f:containers, k:{...}, f:env, ...); 64 leaves room and still stops
 * a hostile document long before json-c's recursion does any harm.
 */
#define JSON_MAX_DEPTH 64
/* A projected service-account token is about 1 KiB; anything this big is not one. */
#define TOKEN_MAX 65536

/* Where a fetch failed, so that only a change of failure is logged. */
enum fail_stage { FAIL_NONE, FAIL_TOKEN, FAIL_CURL, FAIL_HTTP, FAIL_PARSE };

struct failure {
	enum fail_stage stage;
	int err;     /* -errno */
	long detail; /* the CURLcode for FAIL_CURL, the HTTP status for FAIL_HTTP */
};

struct tapir_kubelet {
	CURL *curl;
	char *url;
	char *token_file;
	char *ca_file;
	struct tapir_buf body;
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
	unsigned long long failures;
	unsigned long long streak; /* failures since the last success */
	struct failure last;	   /* the one last logged, all zero after a success */
};

/* ---- PodList to structs ---- */

static void container_clear(struct tapir_kube_container *c)
{
	free(c->name);
	free(c->container_id);
}

static void pod_clear(struct tapir_kube_pod *p)
{
	size_t i;

	free(p->uid);
	free(p->name);
	free(p->namespace_);
	free(p->phase);
	tapir_strv_free(p->label_keys, p->n_labels);
	tapir_strv_free(p->label_values, p->n_labels);
	tapir_strv_free(p->annotation_keys, p->n_annotations);
	tapir_strv_free(p->annotation_values, p->n_annotations);
	for (i = 0; p->containers && i < p->n_containers; i++)
		container_clear(&p->containers[i]);
	free(p->containers);
	memset(p, 0, sizeof(*p));
}

void tapir_kube_pods__clear(struct tapir_kube_pods *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; p->pods && i < p->n; i++)
		pod_clear(&p->pods[i]);
	free(p->pods);
	p->pods = NULL;
	p->n = 0;
}

/* @key of object @o, or NULL where it is absent or JSON null: both mean "not set" in a PodList. */
static struct json_object *member(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* NULL stands for absent, as member() returns it. */
static bool is_type(struct json_object *v, enum json_type t)
{
	return !v || json_object_is_type(v, t);
}

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, surrogates or code points above U+10FFFF. json-c's
 * own check lets all three through, and Go, which wrote the document, never emits them.
 */
static bool utf8_ok(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	uint32_t cp;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf)
			n = 1;
		else if ((s[i] & 0xf0) == 0xe0)
			n = 2;
		else if (s[i] >= 0xf0 && s[i] <= 0xf4)
			n = 3;
		else
			return false;
		if (n >= len - i)
			return false;
		cp = s[i] & (0x3f >> n);
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* Copy string @v ("" for NULL); -EINVAL for another type, a NUL inside or bad UTF-8. */
static int dup_string(struct json_object *v, char **out)
{
	const char *s = "";
	size_t len = 0;

	if (v) {
		if (!json_object_is_type(v, json_type_string))
			return -EINVAL;
		s = json_object_get_string(v);
		len = json_object_get_string_len(v);
		if (memchr(s, '\0', len) || !utf8_ok((const unsigned char *)s, len))
			return -EINVAL;
	}
	*out = strndup(s, len);
	return *out ? 0 : -ENOMEM;
}

static int take_string(struct json_object *o, const char *key, bool required, char **out)
{
	struct json_object *v = member(o, key);

	if (required && (!v || !json_object_is_type(v, json_type_string)))
		return -EINVAL;
	return dup_string(v, out);
}

static bool has_nul(struct json_object *v)
{
	return memchr(json_object_get_string(v), '\0', json_object_get_string_len(v)) != NULL;
}

/*
 * A map[string]string (labels, annotations) into two parallel arrays, in document order.
 * With @drop_nul, a value holding a NUL is left out instead of failing the whole document.
 */
static int take_map(struct json_object *o, const char *key, bool drop_nul, char ***keys,
		    char ***values, size_t *n)
{
	struct json_object *m = member(o, key);
	struct json_object_iterator it, end;
	struct json_object *v;
	const char *name;
	size_t cap;
	int ret;

	if (!m)
		return 0;
	if (!json_object_is_type(m, json_type_object))
		return -EINVAL;
	cap = json_object_object_length(m);
	if (!cap)
		return 0;
	*keys = calloc(cap, sizeof(**keys));
	*values = calloc(cap, sizeof(**values));
	if (!*keys || !*values)
		return -ENOMEM;
	it = json_object_iter_begin(m);
	end = json_object_iter_end(m);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		v = json_object_iter_peek_value(&it);
		if (!v || !json_object_is_type(v, json_type_string))
			return -EINVAL;
		if (drop_nul && has_nul(v))
			continue;
		if (*n == cap)
			return -EINVAL; /* cannot happen: the iterator walks cap members */
		name = json_object_iter_peek_name(&it);
		if (!utf8_ok((const unsigned char *)name, strlen(name)))
			return -EINVAL;
		(*keys)[*n] = strdup(name);
		if (!(*keys)[*n])
			return -ENOMEM;
		/* Counted now, so that a failure below frees the key and a NULL value. */
		ret = dup_string(v, &(*values)[(*n)++]);
		if (ret)
			return ret;
	}
	return 0;
}

/* "containerd://<id>", "cri-o://<id>", "docker://<id>": the id alone. */
static int take_container_id(struct json_object *c, char **out)
{
	const char *sep;
	int ret;

	ret = take_string(c, "containerID", false, out);
	if (ret)
		return ret;
	sep = strstr(*out, "://");
	if (sep)
		memmove(*out, sep + 3, strlen(sep + 3) + 1);
	return 0;
}

static int take_containers(struct json_object *status, struct tapir_kube_pod *p)
{
	struct json_object *a = member(status, "containerStatuses");
	struct tapir_kube_container *c;
	struct json_object *e, *ready;
	size_t i, n;
	int ret;

	if (!a)
		return 0;
	if (!json_object_is_type(a, json_type_array))
		return -EINVAL;
	n = json_object_array_length(a);
	if (!n)
		return 0;
	p->containers = calloc(n, sizeof(*p->containers));
	if (!p->containers)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(a, i);
		if (!e || !json_object_is_type(e, json_type_object))
			return -EINVAL;
		c = &p->containers[p->n_containers++];
		ret = take_string(e, "name", true, &c->name);
		if (!ret)
			ret = take_container_id(e, &c->container_id);
		if (ret)
			return ret;
		ready = member(e, "ready");
		if (!is_type(ready, json_type_boolean))
			return -EINVAL;
		c->ready = ready && json_object_get_boolean(ready);
	}
	return 0;
}

/* The Ready condition's status: 1 "True", 0 "False", -1 "Unknown" or no such condition. */
static int take_ready(struct json_object *status, int *ready)
{
	struct json_object *a = member(status, "conditions");
	struct json_object *e, *type, *st;
	size_t i, n;

	*ready = -1;
	if (!a)
		return 0;
	if (!json_object_is_type(a, json_type_array))
		return -EINVAL;
	n = json_object_array_length(a);
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(a, i);
		if (!e || !json_object_is_type(e, json_type_object))
			return -EINVAL;
		type = member(e, "type");
		st = member(e, "status");
		if (!is_type(type, json_type_string) || !is_type(st, json_type_string))
			return -EINVAL;
		if (!type || strcmp(json_object_get_string(type), "Ready"))
			continue;
		if (st && !strcmp(json_object_get_string(st), "True"))
			*ready = 1;
		else if (st && !strcmp(json_object_get_string(st), "False"))
			*ready = 0;
		else
			*ready = -1;
	}
	return 0;
}

static int take_pod(struct json_object *item, struct tapir_kube_pod *p)
{
	struct json_object *meta, *status;
	int ret;

	if (!item || !json_object_is_type(item, json_type_object))
		return -EINVAL;
	meta = member(item, "metadata");
	if (!meta || !json_object_is_type(meta, json_type_object))
		return -EINVAL;
	ret = take_string(meta, "uid", true, &p->uid);
	if (!ret)
		ret = take_string(meta, "name", true, &p->name);
	if (!ret)
		ret = take_string(meta, "namespace", true, &p->namespace_);
	if (!ret)
		ret = take_map(meta, "labels", false, &p->label_keys, &p->label_values,
			       &p->n_labels);
	if (!ret)
		ret = take_map(meta, "annotations", true, &p->annotation_keys,
			       &p->annotation_values, &p->n_annotations);
	if (ret)
		return ret;

	status = member(item, "status");
	if (!is_type(status, json_type_object))
		return -EINVAL;
	p->ready = -1;
	if (!status)
		return dup_string(NULL, &p->phase);
	ret = take_string(status, "phase", false, &p->phase);
	if (!ret)
		ret = take_ready(status, &p->ready);
	if (!ret)
		ret = take_containers(status, p);
	return ret;
}

static int take_pod_list(struct json_object *root, struct tapir_kube_pods *out)
{
	struct json_object *kind, *items;
	size_t i, n;
	int ret;

	if (!json_object_is_type(root, json_type_object))
		return -EINVAL;
	kind = member(root, "kind");
	if (kind && (!json_object_is_type(kind, json_type_string) ||
		     strcmp(json_object_get_string(kind), "PodList")))
		return -EINVAL;
	/* Always there, null for no pods (Go's nil slice), so that /healthz or {} is no PodList. */
	if (!json_object_object_get_ex(root, "items", &items))
		return -EINVAL;
	if (!items)
		return 0;
	if (!json_object_is_type(items, json_type_array))
		return -EINVAL;
	n = json_object_array_length(items);
	if (!n)
		return 0;
	out->pods = calloc(n, sizeof(*out->pods));
	if (!out->pods)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		ret = take_pod(json_object_array_get_idx(items, i), &out->pods[out->n++]);
		if (ret)
			return ret;
	}
	return 0;
}

static bool only_space(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	return true;
}

int tapir_kube_pods__parse(const char *json, size_t len, struct tapir_kube_pods *out)
{
	struct json_tokener *tok;
	struct json_object *root;
	int ret = -EINVAL;

	out->pods = NULL;
	out->n = 0;
	if (!json)
		return -EINVAL;
	if (len > INT_MAX)
		return -EFBIG;
	tok = json_tokener_new_ex(JSON_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	/* Go never writes invalid UTF-8 (it substitutes U+FFFD), so such bytes mean corruption. */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, json, (int)len);
	/* json-c stops at a NUL byte and calls it the end: what follows must be nothing. */
	if (root && only_space(json + json_tokener_get_parse_end(tok),
			       len - json_tokener_get_parse_end(tok)))
		ret = take_pod_list(root, out);
	json_object_put(root);
	json_tokener_free(tok);
	if (ret)
		tapir_kube_pods__clear(out);
	return ret;
}

const struct tapir_kube_pod *tapir_kube_pods__by_uid(const struct tapir_kube_pods *p,
						     const char *uid)
{
	size_t i;

	for (i = 0; p && uid && i < p->n; i++)
		if (!strcmp(p->pods[i].uid, uid))
			return &p->pods[i];
	return NULL;
}

static const char *lookup(char *const *keys, char *const *values, size_t n, const char *key)
{
	size_t i;

	for (i = 0; key && i < n; i++)
		if (!strcmp(keys[i], key))
			return values[i];
	return NULL;
}

const char *tapir_kube_pod__label(const struct tapir_kube_pod *p, const char *key)
{
	return p ? lookup(p->label_keys, p->label_values, p->n_labels, key) : NULL;
}

const char *tapir_kube_pod__annotation(const struct tapir_kube_pod *p, const char *key)
{
	return p ? lookup(p->annotation_keys, p->annotation_values, p->n_annotations, key) : NULL;
}

/* ---- HTTP ---- */

/*
 * The token, trimmed of surrounding white space, into @buf. Control characters and spaces
 * inside are refused: they could split the header or smuggle another one.
 */
static int read_token(const char *path, char *buf, size_t size)
{
	size_t len = 0, start = 0;
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	while (len < size) {
		n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (!n)
			break;
		len += n;
	}
	close(fd);
	if (!ret && len == size)
		ret = -EFBIG;
	if (ret)
		return ret;
	while (len && (unsigned char)buf[len - 1] <= ' ')
		len--;
	while (start < len && (unsigned char)buf[start] <= ' ')
		start++;
	if (start == len)
		return -EINVAL;
	memmove(buf, buf + start, len - start);
	len -= start;
	buf[len] = '\0';
	for (start = 0; start < len; start++)
		if ((unsigned char)buf[start] <= ' ' || buf[start] == 0x7f)
			return -EINVAL;
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct tapir_kubelet *k = arg;
	size_t n = size * nmemb;

	if (n > TAPIR_KUBELET_MAX_BODY - k->body.len) {
		k->too_big = true;
		return 0;
	}
	tapir_buf__append(&k->body, data, n);
	return k->body.oom ? 0 : n;
}

static int curl_errno(struct tapir_kubelet *k, CURLcode rc)
{
	long os_errno = 0;

	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		/* Refused, unreachable or timed out: the connect(2) error says which. */
		curl_easy_getinfo(k->curl, CURLINFO_OS_ERRNO, &os_errno);
		return os_errno > 0 ? -(int)os_errno : -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_COULDNT_RESOLVE_HOST: return -EHOSTUNREACH;
	case CURLE_WRITE_ERROR: return k->too_big ? -EFBIG : k->body.oom ? -ENOMEM : -EIO;
	case CURLE_FILESIZE_EXCEEDED: return -EFBIG;
	case CURLE_OUT_OF_MEMORY: return -ENOMEM;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE: return -ECONNRESET;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM: return -EPROTO;
	default: return -EIO;
	}
}

static int http_errno(long status)
{
	switch (status) {
	case 200: return 0;
	case 401:
	case 403: return -EACCES;
	case 404: return -ENOENT;
	default: return -EPROTO;
	}
}

static int add_token(struct tapir_kubelet *k, struct curl_slist **hdrs)
{
	static const char prefix[] = "Authorization: Bearer ";
	struct curl_slist *more;
	char *auth;
	int ret;

	auth = malloc(sizeof(prefix) + TOKEN_MAX);
	if (!auth)
		return -ENOMEM;
	memcpy(auth, prefix, sizeof(prefix));
	ret = read_token(k->token_file, auth + sizeof(prefix) - 1, TOKEN_MAX);
	more = ret ? NULL : curl_slist_append(*hdrs, auth);
	explicit_bzero(auth, sizeof(prefix) + TOKEN_MAX);
	free(auth);
	if (ret)
		return ret;
	if (!more)
		return -ENOMEM;
	*hdrs = more;
	return 0;
}

/* GET the URL into k->body, saying in @f what went wrong. */
static int get(struct tapir_kubelet *k, struct failure *f)
{
	struct curl_slist *hdrs;
	long status = 0;
	CURLcode rc;
	int ret;

	hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (!hdrs)
		return -ENOMEM;
	if (k->token_file) {
		ret = add_token(k, &hdrs);
		if (ret) {
			f->stage = FAIL_TOKEN;
			curl_slist_free_all(hdrs);
			return ret;
		}
	}

	tapir_buf__free(&k->body);
	k->too_big = false;
	k->errbuf[0] = '\0';
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(k->curl);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		f->stage = FAIL_CURL;
		f->detail = rc;
		return curl_errno(k, rc);
	}
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &status);
	f->stage = FAIL_HTTP;
	f->detail = status;
	return http_errno(status);
}

static void report(struct tapir_kubelet *k, const struct failure *f)
{
	k->failures++;
	k->streak++;
	if (f->stage == k->last.stage && f->err == k->last.err && f->detail == k->last.detail) {
		pr_debug("kubelet: GET %s failed again (%llu in a row)", k->url, k->streak);
		return;
	}
	k->last = *f;
	switch (f->stage) {
	case FAIL_TOKEN: pr_warn("kubelet: token %s: %s", k->token_file, strerror(-f->err)); break;
	case FAIL_CURL:
		if (f->err == -EFBIG)
			pr_warn("kubelet: GET %s: answer over %lu MiB, refused", k->url,
				TAPIR_KUBELET_MAX_BODY >> 20);
		else
			pr_warn("kubelet: GET %s: %s", k->url,
				k->errbuf[0] ? k->errbuf : curl_easy_strerror((CURLcode)f->detail));
		break;
	case FAIL_HTTP: pr_warn("kubelet: GET %s: HTTP %ld", k->url, f->detail); break;
	case FAIL_PARSE:
		pr_warn("kubelet: GET %s: %s", k->url,
			f->err == -EINVAL ? "the answer is no PodList" : strerror(-f->err));
		break;
	default: pr_warn("kubelet: GET %s: %s", k->url, strerror(-f->err)); break;
	}
}

int tapir_kubelet__fetch(struct tapir_kubelet *k, struct tapir_kube_pods *out)
{
	struct failure f = { 0 };
	int ret;

	out->pods = NULL;
	out->n = 0;
	ret = get(k, &f);
	if (!ret) {
		f.stage = FAIL_PARSE;
		ret = tapir_kube_pods__parse(k->body.data, k->body.len, out);
	}
	tapir_buf__free(&k->body);
	if (ret) {
		f.err = ret;
		report(k, &f);
		return ret;
	}
	if (k->streak)
		pr_info("kubelet: GET %s works again after %llu failure(s)", k->url, k->streak);
	k->streak = 0;
	k->last = (struct failure){ 0 };
	return 0;
}

unsigned long long tapir_kubelet__failures(const struct tapir_kubelet *k)
{
	return k->failures;
}

static int setup(struct tapir_kubelet *k, const struct tapir_kubelet_opts *o)
{
	long timeout = o->timeout_ms > 0 ? o->timeout_ms : TAPIR_KUBELET_TIMEOUT_MS;
	CURL *c = k->curl;
	CURLcode rc;

	rc = curl_easy_setopt(c, CURLOPT_URL, k->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	rc = rc ?: curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	rc = rc ?: curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	/* The kubelet is local; an http(s)_proxy in the environment must not see the token. */
	rc = rc ?: curl_easy_setopt(c, CURLOPT_PROXY, "");
	rc = rc ?: curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_USERAGENT, "tapir");
	rc = rc
		     ?: curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
					 (curl_off_t)TAPIR_KUBELET_MAX_BODY);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_WRITEDATA, k);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_ERRORBUFFER, k->errbuf);
	if (o->insecure) {
		rc = rc ?: curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		rc = rc ?: curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (k->ca_file)
		rc = rc ?: curl_easy_setopt(c, CURLOPT_CAINFO, k->ca_file);
	if (rc) {
		pr_err("kubelet: libcurl refused an option: %s", curl_easy_strerror(rc));
		return rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
	}
	return 0;
}

static bool http_url(const char *url)
{
	return !strncasecmp(url, "http://", 7) || !strncasecmp(url, "https://", 8);
}

static char *dup_opt(const char *s, int *ret)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*ret = -ENOMEM;
	return d;
}

struct tapir_kubelet *tapir_kubelet__new(const struct tapir_kubelet_opts *o)
{
	struct tapir_kubelet *k;
	int ret = 0;

	if (!o || !o->url || !http_url(o->url)) {
		errno = EINVAL;
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		errno = ENOMEM;
		return NULL;
	}
	tapir_buf__init(&k->body);
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		free(k);
		errno = EIO;
		return NULL;
	}
	k->url = dup_opt(o->url, &ret);
	k->token_file = dup_opt(o->token_file, &ret);
	k->ca_file = dup_opt(o->ca_file, &ret);
	if (!ret) {
		k->curl = curl_easy_init();
		ret = k->curl ? setup(k, o) : -ENOMEM;
	}
	if (ret) {
		tapir_kubelet__free(k);
		errno = -ret;
		return NULL;
	}
	return k;
}

void tapir_kubelet__free(struct tapir_kubelet *k)
{
	if (!k)
		return;
	if (k->curl)
		curl_easy_cleanup(k->curl);
	tapir_buf__free(&k->body);
	free(k->url);
	free(k->token_file);
	free(k->ca_file);
	free(k);
	curl_global_cleanup();
}
