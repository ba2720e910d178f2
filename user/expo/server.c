// SPDX-License-Identifier: GPL-2.0
/*
 * The /metrics endpoint. libmicrohttpd runs in "external" epoll mode on a thread of ours, so that
 * one thread owns every connection: a scrape is suspended until the main loop publishes a fresh
 * exposition (it never blocks the others), and between two turns of libmicrohttpd the thread
 * closes connections that would otherwise hold the endpoint: requests that do not arrive whole
 * in time (slowloris) and the oldest idle ones once max_connections are open.
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "auth.h"
#include "log.h"
#include "server.h"
#include "tls.h"

#define CONTENT_TYPE   "text/plain; version=0.0.4; charset=utf-8"
#define SCRAPE_WAIT_MS 2000	   /* a scrape waits this long for a fresh exposition at most */
#define TICK_MS	       250	   /* timeouts are checked at least this often */
#define CONN_MEMORY    (32 * 1024) /* libmicrohttpd's buffers per connection */
#define MAX_PENDING    1024	   /* web.max_requests can't be more */
#define REALM	       "tapir"

const char *const tapir_web_refusal_names[TAPIR_WEB_REFUSAL_MAX] = {
	[TAPIR_WEB_UNAUTHORIZED] = "unauthorized",
	[TAPIR_WEB_THROTTLED] = "throttled",
	[TAPIR_WEB_CLIENT_CERT] = "client_certificate",
	[TAPIR_WEB_BUSY] = "max_requests",
	[TAPIR_WEB_BODY] = "request_body",
	[TAPIR_WEB_HEADER_TIMEOUT] = "header_timeout",
	[TAPIR_WEB_CONNECTION_LIMIT] = "max_connections",
};

struct tapir_server;

/* What one libmicrohttpd daemon runs with; its callbacks get this as their closure. */
struct settings {
	struct tapir_server *server;
	struct tapir_tls tls;
	struct tapir_auth *auth;
	uint32_t max_requests, max_connections, header_timeout_s, idle_timeout_s;
};

struct request;

/* An open connection, in the order they were accepted. */
struct conn {
	struct conn *prev, *next;
	struct request *req; /* the request being answered, NULL between requests */
	int fd;
	uint64_t since_ms; /* accepted, or its last response finished */
	bool served;	   /* answered a request already: a keep-alive connection */
	bool closing;	   /* shut down by us; libmicrohttpd closes it on its next turn */
};

/* One request, libmicrohttpd's per-request closure. */
struct request {
	struct conn *conn;
	struct MHD_Connection *mhd;
	uint64_t want;	      /* exposition generation this scrape waits for */
	uint64_t deadline_ms; /* then it takes what is published */
	bool waiting;	      /* suspended, in pending[] */
	bool ready;	      /* resumed: answer with what is published */
};

struct tapir_server {
	struct MHD_Daemon *mhd;
	struct settings *cur;
	const struct tapir_server_ops *ops;
	void *ctx;
	struct sockaddr_storage addr;
	bool v6;
	pthread_t thread;
	bool running;
	volatile int stop;
	int epfd, wake_fd, mhd_fd;
	struct conn conns; /* list head; conns.next is the oldest */
	size_t n_open;	   /* connections not being closed by us */
	struct request *pending[MAX_PENDING];
	size_t n_pending;
	uint64_t refused[TAPIR_WEB_REFUSAL_MAX]; /* written by the server thread, read by any */
	/* tapir_server__reconfigure() hands settings over to the server thread here. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct settings *next;
	bool next_done;
	int next_ret;
	char next_err[512];
};

static const char landing[] = "<!DOCTYPE html><html><head><title>tapir</title></head><body>"
			      "<h1>tapir</h1><p>eBPF observer for model-serving containers.</p>"
			      "<p><a href=\"/metrics\">/metrics</a></p></body></html>\n";

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count(struct tapir_server *s, enum tapir_web_refusal why)
{
	__atomic_fetch_add(&s->refused[why], 1, __ATOMIC_RELAXED);
}

static void wake(struct tapir_server *s)
{
	uint64_t one = 1;

	if (write(s->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_debug("cannot wake the server thread: %s", strerror(errno));
}

/* --- settings ------------------------------------------------------------------------------ */

static void settings_free(struct settings *st)
{
	if (!st)
		return;
	tapir_tls__clear(&st->tls);
	tapir_auth__free(st->auth);
	free(st);
}

static struct settings *settings_new(struct tapir_server *s, const struct tapir_web *w, char *err,
				     size_t errlen)
{
	struct settings *st = calloc(1, sizeof(*st));
	int ret;

	if (!st) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return NULL;
	}
	st->server = s;
	st->max_requests = w->max_requests < MAX_PENDING ? w->max_requests : MAX_PENDING;
	st->max_connections = w->max_connections;
	st->header_timeout_s = w->header_timeout_s;
	st->idle_timeout_s = w->idle_timeout_s;
	ret = tapir_tls__load(w, &st->tls, err, errlen);
	if (ret) {
		free(st);
		errno = -ret;
		return NULL;
	}
	if (st->tls.on && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		snprintf(err, errlen, "%s:%d: this libmicrohttpd has no TLS support",
			 w->source ? w->source : "web", w->cert_line);
		settings_free(st);
		errno = ENOTSUP;
		return NULL;
	}
	st->auth = tapir_auth__new(w);
	if (!st->auth) {
		ret = errno;
		snprintf(err, errlen, "basic auth: %s", strerror(ret));
		settings_free(st);
		errno = ret;
		return NULL;
	}
	return st;
}

/* --- connections --------------------------------------------------------------------------- */

/* Close @c, counted under @why (TAPIR_WEB_REFUSAL_MAX: not a refusal). */
static void close_conn(struct tapir_server *s, struct conn *c, enum tapir_web_refusal why)
{
	/* libmicrohttpd sees the end of the stream on its next turn and closes the connection. */
	shutdown(c->fd, SHUT_RDWR);
	c->closing = true;
	s->n_open--;
	if (why < TAPIR_WEB_REFUSAL_MAX)
		count(s, why);
}

/* More than max_connections open: close the oldest one not answering a request. */
static void make_room(struct tapir_server *s, struct settings *st, struct conn *newest)
{
	struct conn *c;

	for (c = s->conns.next; c != &s->conns; c = c->next)
		if (!c->closing && !c->req) {
			close_conn(s, c, TAPIR_WEB_CONNECTION_LIMIT);
			return;
		}
	if (!newest->closing)
		close_conn(s, newest, TAPIR_WEB_CONNECTION_LIMIT);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct settings *st = cls;
	struct tapir_server *s = st->server;
	const union MHD_ConnectionInfo *ci;
	struct conn *c;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		c = calloc(1, sizeof(*c));
		*socket_context = c;
		if (!c || !ci) {
			free(c);
			*socket_context = NULL;
			return; /* untracked: libmicrohttpd's own limits still bound it */
		}
		c->fd = ci->connect_fd;
		c->since_ms = now_ms();
		c->prev = s->conns.prev;
		c->next = &s->conns;
		s->conns.prev->next = c;
		s->conns.prev = c;
		s->n_open++;
		if (s->n_open > st->max_connections)
			make_room(s, st, c);
		return;
	}
	c = *socket_context;
	if (!c)
		return;
	if (c->req)
		c->req->conn = NULL;
	if (!c->closing)
		s->n_open--;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	free(c);
	*socket_context = NULL;
}

/* A connection must deliver a whole request within header_timeout_s of opening or of its last
 * response: a client dribbling a header byte at a time cannot hold a slot for long. */
static void sweep(struct tapir_server *s, uint64_t now)
{
	uint64_t limit = (uint64_t)s->cur->header_timeout_s * 1000;
	struct conn *c, *next;

	for (c = s->conns.next; c != &s->conns; c = next) {
		next = c->next;
		if (c->closing || c->req || now - c->since_ms < limit)
			continue;
		/* An idle keep-alive connection is not a refusal. */
		close_conn(s, c, c->served ? TAPIR_WEB_REFUSAL_MAX : TAPIR_WEB_HEADER_TIMEOUT);
	}
}

/* --- requests ------------------------------------------------------------------------------ */

static enum MHD_Result reply(struct MHD_Connection *mc, unsigned int code, const char *type,
			     void *body, size_t len, enum MHD_ResponseMemoryMode mode,
			     const char *retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (retry_after)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry_after);
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(mc, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result text(struct MHD_Connection *mc, unsigned int code, const char *msg,
			    const char *retry_after)
{
	return reply(mc, code, "text/plain; charset=utf-8", (void *)msg, strlen(msg),
		     MHD_RESPMEM_PERSISTENT, retry_after);
}

static bool has_body(struct MHD_Connection *mc)
{
	const char *len =
		MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);

	return MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_TRANSFER_ENCODING) ||
	       (len && strspn(len, "0") != strlen(len));
}

static enum MHD_Result unauthorized(struct MHD_Connection *mc)
{
	static const char msg[] = "unauthorized\n";
	struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
								 MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	ret = MHD_queue_basic_auth_fail_response(mc, REALM, r);
	MHD_destroy_response(r);
	return ret;
}

/* TLS client certificate, then basic auth: MHD_YES when the request may go on. */
static bool admitted(struct settings *st, struct MHD_Connection *mc, enum MHD_Result *ret)
{
	struct tapir_server *s = st->server;
	const union MHD_ConnectionInfo *ci;
	enum tapir_auth_result res;
	char why[256], *user, *pass = NULL;

	if (st->tls.on && st->tls.client_auth != TAPIR_CLIENT_AUTH_NONE) {
		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		if (tapir_tls__check_client(&st->tls, ci ? ci->tls_session : NULL, why,
					    sizeof(why))) {
			pr_debug("refused a request: %s", why);
			count(s, TAPIR_WEB_CLIENT_CERT);
			*ret = text(mc, MHD_HTTP_FORBIDDEN,
				    "a trusted client certificate is required\n", NULL);
			return false;
		}
	}
	if (!tapir_auth__enabled(st->auth))
		return true;
	user = MHD_basic_auth_get_username_password(mc, &pass);
	res = tapir_auth__check(st->auth, user, pass, now_ms());
	if (pass) {
		explicit_bzero(pass, strlen(pass));
		MHD_free(pass);
	}
	if (user)
		MHD_free(user);
	if (res == TAPIR_AUTH_OK)
		return true;
	if (res == TAPIR_AUTH_THROTTLED) {
		count(s, TAPIR_WEB_THROTTLED);
		*ret = text(mc, MHD_HTTP_TOO_MANY_REQUESTS, "too many password checks, retry\n",
			    "1");
	} else {
		count(s, TAPIR_WEB_UNAUTHORIZED);
		*ret = unauthorized(mc);
	}
	return false;
}

static enum MHD_Result answer(struct tapir_server *s, struct MHD_Connection *mc)
{
	struct tapir_buf b;
	int err;

	tapir_buf__init(&b);
	err = s->ops->copy(s->ctx, &b);
	if (err || b.oom) {
		tapir_buf__free(&b);
		return text(mc, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot render metrics\n", NULL);
	}
	/* The response takes the buffer. */
	return reply(mc, MHD_HTTP_OK, CONTENT_TYPE, b.data, b.len, MHD_RESPMEM_MUST_FREE, NULL);
}

static enum MHD_Result first_call(struct settings *st, struct MHD_Connection *mc, struct request *r,
				  const char *url, const char *method)
{
	struct tapir_server *s = st->server;
	enum MHD_Result ret;

	if (has_body(mc)) {
		count(s, TAPIR_WEB_BODY);
		return text(mc, MHD_HTTP_CONTENT_TOO_LARGE, "request bodies are not accepted\n",
			    NULL);
	}
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return text(mc, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only\n", NULL);
	/* For the kubelet's probes, which have neither credentials nor a client certificate:
	 * it says nothing but that the endpoint answers. */
	if (!strcmp(url, "/healthz"))
		return text(mc, MHD_HTTP_OK, "ok\n", NULL);
	if (!admitted(st, mc, &ret))
		return ret;
	if (!strcmp(url, "/"))
		return reply(mc, MHD_HTTP_OK, "text/html; charset=utf-8", (void *)landing,
			     sizeof(landing) - 1, MHD_RESPMEM_PERSISTENT, NULL);
	if (strcmp(url, "/metrics"))
		return text(mc, MHD_HTTP_NOT_FOUND, "not found\n", NULL);
	if (s->n_pending >= st->max_requests) {
		count(s, TAPIR_WEB_BUSY);
		return text(mc, MHD_HTTP_SERVICE_UNAVAILABLE, "too many scrapes at once, retry\n",
			    "1");
	}
	r->want = s->ops->request(s->ctx);
	if (s->ops->published(s->ctx) >= r->want)
		return answer(s, mc);
	r->deadline_ms = now_ms() + SCRAPE_WAIT_MS;
	r->waiting = true;
	r->mhd = mc;
	s->pending[s->n_pending++] = r;
	MHD_suspend_connection(mc);
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	struct settings *st = cls;
	struct request *r = *req_cls;
	const union MHD_ConnectionInfo *ci;

	if (!r) {
		/* The first call: the request line and headers are in. */
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*req_cls = r;
		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		r->conn = ci ? ci->socket_context : NULL;
		if (r->conn)
			r->conn->req = r;
		return first_call(st, mc, r, url, method);
	}
	if (*upload_size) {
		*upload_size = 0; /* refused already; libmicrohttpd drops what it read */
		return MHD_YES;
	}
	if (r->ready) {
		r->ready = false;
		return answer(st->server, mc);
	}
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct settings *st = cls;
	struct tapir_server *s = st->server;
	struct request *r = *req_cls;
	size_t i;

	if (!r)
		return;
	if (r->waiting)
		for (i = 0; i < s->n_pending; i++)
			if (s->pending[i] == r) {
				s->pending[i] = s->pending[--s->n_pending];
				break;
			}
	if (r->conn) {
		r->conn->req = NULL;
		r->conn->served = true;
		r->conn->since_ms = now_ms();
	}
	free(r);
	*req_cls = NULL;
}

/* Scrapes whose exposition is out, or that waited long enough, are answered. */
static void resume_ready(struct tapir_server *s, uint64_t now)
{
	uint64_t published = s->ops->published(s->ctx);
	struct request *r;
	size_t i = 0;

	while (i < s->n_pending) {
		r = s->pending[i];
		if (published < r->want && now < r->deadline_ms) {
			i++;
			continue;
		}
		s->pending[i] = s->pending[--s->n_pending];
		r->waiting = false;
		r->ready = true;
		MHD_resume_connection(r->mhd);
	}
}

/* --- the daemon ---------------------------------------------------------------------------- */

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* Mostly what clients did wrong (bad handshakes, resets): not the operator's problem. */
	pr_debug("libmicrohttpd: %s", msg);
}

static struct MHD_Daemon *start_mhd(struct tapir_server *s, struct settings *st, int listen_fd)
{
	unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem o[16];
	int n = 0;

	/* First, so that libmicrohttpd's messages about the others come here too. */
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL };
	if (listen_fd >= 0)
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, listen_fd, NULL };
	else
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, &s->addr };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, st->idle_timeout_s, NULL };
	/* A hard cap above ours, so that the one over the limit is accepted and we pick whom to
	 * close; connections accepted within one turn can pass ours until the next. */
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, 2 * st->max_connections + 8,
					  NULL };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONN_MEMORY, NULL };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection,
					  st };
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, st };
	if (st->tls.on) {
		flags |= MHD_USE_TLS;
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, st->tls.cert };
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, st->tls.key };
		o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
						  (void *)st->tls.priorities };
		if (st->tls.ca)
			o[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0,
							  st->tls.ca };
	}
	o[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	if (s->v6)
		flags |= MHD_USE_IPv6;
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, st, MHD_OPTION_ARRAY, o,
				MHD_OPTION_END);
}

static int watch_mhd(struct tapir_server *s)
{
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	struct epoll_event ev = { .events = EPOLLIN };

	if (s->mhd_fd >= 0)
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->mhd_fd, NULL);
	s->mhd_fd = -1;
	if (!di)
		return -EIO;
	ev.data.fd = di->epoll_fd;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, di->epoll_fd, &ev))
		return -errno;
	s->mhd_fd = di->epoll_fd;
	return 0;
}

/* On the server thread: move the listening socket to a daemon with the new settings. */
static int swap_settings(struct tapir_server *s, struct settings *st, char *err, size_t errlen)
{
	struct MHD_Daemon *old = s->mhd, *fresh;
	struct settings *old_st = s->cur;
	MHD_socket fd;
	int ret = 0;

	fd = MHD_quiesce_daemon(old);
	if (fd == MHD_INVALID_SOCKET) {
		snprintf(err, errlen, "cannot take over the listening socket");
		settings_free(st);
		return -EIO;
	}
	fresh = start_mhd(s, st, fd);
	if (!fresh) {
		snprintf(err, errlen, "libmicrohttpd refused the new settings");
		settings_free(st);
		ret = -EINVAL;
		/* Back to the settings in force, on the same socket. */
		st = old_st;
		old_st = NULL;
		fresh = start_mhd(s, st, fd);
		if (!fresh) {
			pr_err("cannot listen again with the previous web settings: scrapes fail "
			       "until tapir restarts");
			close(fd);
			return -EIO;
		}
	}
	/* The old daemon's connections, under the old TLS and users, are closed; scrapes it
	 * suspended are let go first, so none is left behind pointing at it. */
	while (s->n_pending) {
		struct request *r = s->pending[--s->n_pending];

		r->waiting = false;
		MHD_resume_connection(r->mhd);
	}
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->mhd_fd, NULL);
	s->mhd_fd = -1;
	MHD_stop_daemon(old);
	s->mhd = fresh;
	s->cur = st;
	settings_free(old_st);
	if (watch_mhd(s))
		pr_err("cannot watch the new libmicrohttpd daemon");
	return ret;
}

static void take_settings(struct tapir_server *s)
{
	struct settings *st;
	char err[512] = "";
	int ret;

	pthread_mutex_lock(&s->lock);
	st = s->next;
	s->next = NULL;
	pthread_mutex_unlock(&s->lock);
	if (!st)
		return;
	ret = swap_settings(s, st, err, sizeof(err));
	pthread_mutex_lock(&s->lock);
	s->next_ret = ret;
	snprintf(s->next_err, sizeof(s->next_err), "%s", err);
	s->next_done = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void *serve(void *arg)
{
	struct tapir_server *s = arg;
	struct epoll_event ev[4];
	MHD_UNSIGNED_LONG_LONG mhd_ms;
	uint64_t v;
	int timeout, n, i;

	while (!s->stop) {
		timeout = TICK_MS;
		if (MHD_get_timeout(s->mhd, &mhd_ms) == MHD_YES && mhd_ms < (unsigned)timeout)
			timeout = (int)mhd_ms;
		n = epoll_wait(s->epfd, ev, 4, timeout);
		for (i = 0; i < n; i++)
			if (ev[i].data.fd == s->wake_fd && read(s->wake_fd, &v, sizeof(v)) < 0)
				break;
		take_settings(s);
		resume_ready(s, now_ms());
		MHD_run(s->mhd);
		sweep(s, now_ms());
	}
	return NULL;
}

/* Split "host:port" or "[v6]:port" and resolve it; the reason in @err on failure. */
static int resolve(const char *listen, struct sockaddr_storage *ss, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res;
	char host[256];
	const char *port;
	int gai;

	snprintf(err, errlen, "listen address %s is not HOST:PORT or [V6]:PORT", listen);
	if (listen[0] == '[') {
		const char *end = strchr(listen, ']');

		if (!end || end[1] != ':' || (size_t)(end - listen - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, listen + 1, end - listen - 1);
		host[end - listen - 1] = '\0';
		port = end + 2;
	} else {
		const char *colon = strrchr(listen, ':');

		if (!colon || (size_t)(colon - listen) >= sizeof(host))
			return -EINVAL;
		memcpy(host, listen, colon - listen);
		host[colon - listen] = '\0';
		port = colon + 1;
	}
	gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (gai) {
		snprintf(err, errlen, "cannot resolve listen address %s: %s", listen,
			 gai_strerror(gai));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

struct tapir_server *tapir_server__new(const char *listen, const struct tapir_web *web,
				       const struct tapir_server_ops *ops, void *ctx, char *err,
				       size_t errlen)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct tapir_server *s = calloc(1, sizeof(*s));
	int ret;

	if (!s) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return NULL;
	}
	s->ops = ops;
	s->ctx = ctx;
	s->conns.next = s->conns.prev = &s->conns;
	s->epfd = s->wake_fd = s->mhd_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	ret = resolve(listen, &s->addr, err, errlen);
	if (ret)
		goto fail;
	s->v6 = s->addr.ss_family == AF_INET6;
	s->cur = settings_new(s, web, err, errlen);
	if (!s->cur) {
		ret = -errno;
		goto fail;
	}
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->epfd < 0 || s->wake_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s", strerror(-ret));
		goto fail;
	}
	ev.data.fd = s->wake_fd;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake_fd, &ev);
	s->mhd = start_mhd(s, s->cur, -1);
	if (!s->mhd) {
		ret = -EADDRINUSE;
		snprintf(err, errlen, "cannot listen on %s (address in use, or not permitted)",
			 listen);
		goto fail;
	}
	ret = watch_mhd(s);
	if (!ret)
		ret = -pthread_create(&s->thread, NULL, serve, s);
	if (ret) {
		snprintf(err, errlen, "cannot start the server thread: %s", strerror(-ret));
		goto fail;
	}
	s->running = true;
	return s;
fail:
	tapir_server__free(s);
	errno = -ret;
	return NULL;
}

int tapir_server__reconfigure(struct tapir_server *s, const struct tapir_web *web, char *err,
			      size_t errlen)
{
	struct settings *st = settings_new(s, web, err, errlen);
	int ret;

	if (!st)
		return -errno;
	pthread_mutex_lock(&s->lock);
	s->next = st;
	s->next_done = false;
	wake(s);
	while (!s->next_done)
		pthread_cond_wait(&s->cond, &s->lock);
	ret = s->next_ret;
	if (ret)
		snprintf(err, errlen, "%s", s->next_err);
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void tapir_server__published(struct tapir_server *s)
{
	if (s)
		wake(s);
}

void tapir_server__refusals(const struct tapir_server *s, uint64_t out[TAPIR_WEB_REFUSAL_MAX])
{
	int i;

	for (i = 0; i < TAPIR_WEB_REFUSAL_MAX; i++)
		out[i] = s ? __atomic_load_n(&s->refused[i], __ATOMIC_RELAXED) : 0;
}

void tapir_server__free(struct tapir_server *s)
{
	if (!s)
		return;
	if (s->running) {
		s->stop = 1;
		wake(s);
		pthread_join(s->thread, NULL);
	}
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	settings_free(s->cur);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
