// SPDX-License-Identifier: GPL-2.0
/*
 * The engine scraper: on a thread of its own, finds the vLLM or SGLang process of each replica
 * (command line, listening sockets), enters its network namespace and GETs its /metrics with
 * libcurl, bounded in time, bytes and samples, and parses the answer there too, so that the main
 * loop only ever copies figures.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <curl/curl.h>

#include "tapir/http.h"
#include "buf.h"
#include "engine_scrape.h"
#include "grow.h"
#include "log.h"
#include "procfs.h"

#define CMDLINE_MAX   (64 << 10)
#define LISTEN_MAX    64
#define PIDS_PER_DIR  4096 /* processes looked at in one cgroup directory */
#define HOST_MAX      (INET6_ADDRSTRLEN + 2)
#define ACCEPT_HEADER "Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1"

static const char *const error_names[TAPIR_EE_COUNT] = {
	[TAPIR_EE_NONE] = "",
	[TAPIR_EE_NETNS] = "netns",
	[TAPIR_EE_CONNECT] = "connect",
	[TAPIR_EE_TIMEOUT] = "timeout",
	[TAPIR_EE_HTTP_STATUS] = "http_status",
	[TAPIR_EE_TOO_LARGE] = "too_large",
	[TAPIR_EE_PROTOCOL] = "protocol",
	[TAPIR_EE_PARSE] = "parse",
	[TAPIR_EE_TOO_MANY_SERIES] = "too_many_series",
	[TAPIR_EE_INIT] = "init",
	[TAPIR_EE_STOPPED] = "stopped",
};

const char *tapir_engine_error_name(enum tapir_engine_error e)
{
	return e < TAPIR_EE_COUNT ? error_names[e] : "";
}

bool tapir_engine_error__relocates(enum tapir_engine_error e)
{
	/* Not a timeout: the engine may be busy. Nor what follows an answer it gave (parse, too
	 * many series), nor failures before anything was sent (init). */
	return e != TAPIR_EE_NONE && e != TAPIR_EE_TIMEOUT && e != TAPIR_EE_PARSE &&
	       e != TAPIR_EE_TOO_MANY_SERIES && e != TAPIR_EE_INIT && e != TAPIR_EE_STOPPED;
}

struct tapir_engine_scraper {
	const struct tapir_config *cfg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under lock: the round handed in, and the outcomes handed back. */
	struct tapir_engine_job *jobs;
	size_t n_jobs;
	struct tapir_engine_outcome *out;
	size_t n_out;
	bool busy, done, stop;
	bool stopped; /* the thread has returned: no round will finish */
	/* The thread's own. */
	CURL *curl;
	struct curl_slist *headers;
	struct tapir_buf body;
	bool too_big;
	int own_netns;	    /* this thread's network namespace, to come back to */
	int own_clients_fd; /* BPF own_clients: where the scrape in progress comes from */
	struct tapir_peer_key own_key; /* in own_clients now, when own_set */
	bool own_set;
	bool curl_ready;  /* libcurl set up: at the first fetch */
	bool init_failed; /* logged: it is tried again at each fetch, said once */
	ino_t own_netns_ino;
	char errbuf[CURL_ERROR_SIZE];
	struct known *known;
	size_t n_known, cap_known;
	uint64_t round;
};

/* A process found in a replica, where its metrics are served. */
struct target {
	int pid;
	enum tapir_engine_kind kind;
	unsigned int port;
	char host[HOST_MAX];
};

/* Where a replica's engine was last reached: its listening sockets are looked up again only
 * when the process changes or a connection is refused (/proc/PID/net/tcp lists every socket of
 * the namespace, thousands on a busy host's). */
struct known {
	uint64_t replica_id;
	struct target t;
	uint64_t round;
};

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

/* --- finding the engine ------------------------------------------------------------------- */

static enum tapir_engine_kind classify_pid(int pid, unsigned int *port)
{
	char path[64], *buf;
	enum tapir_engine_kind k = TAPIR_ENGINE_NONE;
	ssize_t n;
	int fd;

	*port = 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return k;
	buf = malloc(CMDLINE_MAX);
	n = buf ? read(fd, buf, CMDLINE_MAX) : -1;
	if (n > 0)
		k = tapir_engine_classify(buf, n, port);
	free(buf);
	close(fd);
	return k;
}

struct listeners {
	struct tapir_proc_sock s[LISTEN_MAX];
	size_t n;
};

static void add_listener(void *ctx, const struct tapir_proc_sock *s)
{
	struct listeners *l = ctx;

	if (s->state == TAPIR_TCP_LISTEN && l->n < LISTEN_MAX)
		l->s[l->n++] = *s;
}

/* Where to connect for a socket listening on @s: loopback for a wildcard address. */
static void host_of(const struct tapir_proc_sock *s, char *host)
{
	static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const unsigned char any6[16];
	char text[INET6_ADDRSTRLEN];

	if (s->family == AF_INET6 && !memcmp(s->laddr, mapped, 12)) {
		inet_ntop(AF_INET, s->laddr + 12, text, sizeof(text));
		snprintf(host, HOST_MAX, "%s", text);
	} else if (s->family == AF_INET6) {
		if (!memcmp(s->laddr, any6, 16))
			snprintf(host, HOST_MAX, "[::1]");
		else if (inet_ntop(AF_INET6, s->laddr, text, sizeof(text)))
			snprintf(host, HOST_MAX, "[%s]", text);
	} else {
		inet_ntop(AF_INET, s->laddr, text, sizeof(text));
		snprintf(host, HOST_MAX, "%s", strcmp(text, "0.0.0.0") ? text : "127.0.0.1");
	}
}

/*
 * The port of @t: the rule's, else the command line's --port, else the engine's default, each
 * only once the process listens on it; else its only listening socket. The address is the
 * socket's (loopback for a wildcard). false while it listens on nothing that fits (loading).
 */
static bool choose_port(struct target *t, unsigned int want)
{
	struct listeners l = { .n = 0 };
	unsigned int def = tapir_engine_default_port(t->kind), ports[LISTEN_MAX];
	size_t i, n;

	tapir_proc_tcp_fds(t->pid, add_listener, &l);
	for (i = 0; i < l.n; i++) {
		if (l.s[i].lport == (want ? want : def) || (!want && l.n == 1)) {
			t->port = l.s[i].lport;
			host_of(&l.s[i], t->host);
			return true;
		}
	}
	if (!want)
		return false;
	/* Not a socket of this process (a parent or sibling holds it): any listener of the
	 * namespace on that port will do, through loopback. */
	n = tapir_proc_listen_ports(t->pid, ports, LISTEN_MAX);
	for (i = 0; i < n; i++) {
		if (ports[i] == want) {
			t->port = want;
			snprintf(t->host, HOST_MAX, "127.0.0.1");
			return true;
		}
	}
	return false;
}

/* The first engine process of the job's cgroups (lowest in cgroup.procs order), or, with a rule
 * that names the engine, the first process at all. */
static bool find_target(const struct tapir_engine_job *job, struct target *t)
{
	const struct tapir_engine_rule *rule = job->rule;
	int forced = rule && rule->engine > 0 ? rule->engine : 0, first = 0, pid;
	unsigned int arg_port, seen;
	enum tapir_engine_kind k;
	char path[4160];
	size_t d;
	FILE *f;

	memset(t, 0, sizeof(*t));
	for (d = 0; d < job->n_dirs && !t->pid; d++) {
		snprintf(path, sizeof(path), "%s/cgroup.procs", job->dirs[d]);
		f = fopen(path, "re");
		if (!f)
			continue;
		for (seen = 0; seen < PIDS_PER_DIR && fscanf(f, "%d", &pid) == 1; seen++) {
			if (!first)
				first = pid;
			k = classify_pid(pid, &arg_port);
			if (k == TAPIR_ENGINE_NONE || (forced && (int)k != forced))
				continue;
			t->pid = pid;
			t->kind = k;
			t->port = arg_port;
			break;
		}
		fclose(f);
	}
	if (!t->pid && forced && first) {
		t->pid = first;
		t->kind = (enum tapir_engine_kind)forced;
	}
	if (t->pid && rule && rule->port)
		t->port = rule->port;
	return t->pid != 0;
}

static struct known *known_of(struct tapir_engine_scraper *s, uint64_t replica_id)
{
	struct known *k;
	size_t i;

	for (i = 0; i < s->n_known; i++)
		if (s->known[i].replica_id == replica_id)
			return &s->known[i];
	if (tapir_grow_zeroed((void **)&s->known, &s->cap_known, s->n_known, sizeof(*k)))
		return NULL;
	k = &s->known[s->n_known++];
	memset(k, 0, sizeof(*k));
	k->replica_id = replica_id;
	return k;
}

/* The port and address of @t: remembered while it is the same process, else looked up. */
static bool locate(struct tapir_engine_scraper *s, uint64_t replica_id, struct target *t)
{
	struct known *k = known_of(s, replica_id);
	unsigned int want = t->port;

	if (k && k->t.pid == t->pid && k->t.kind == t->kind && (!want || want == k->t.port)) {
		k->round = s->round;
		*t = k->t;
		return true;
	}
	if (!choose_port(t, want))
		return false;
	if (k) {
		k->t = *t;
		k->round = s->round;
	}
	return true;
}

/* Forget the engines of replicas this round did not ask about. */
static void forget_unasked(struct tapir_engine_scraper *s)
{
	size_t i, j;

	for (i = j = 0; i < s->n_known; i++)
		if (s->known[i].round == s->round && s->known[i].t.pid)
			s->known[j++] = s->known[i];
	s->n_known = j;
}

/* --- scraping ----------------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct tapir_engine_scraper *s = arg;
	size_t n = size * nmemb;

	/* Checked here as well as by CURLOPT_MAXFILESIZE: a chunked body announces no size. */
	if (n > s->cfg->engine_max_body - s->body.len) {
		s->too_big = true;
		return 0;
	}
	tapir_buf__append(&s->body, data, n);
	return s->body.oom ? 0 : n;
}

/* Abandon a transfer at once when the daemon stops. */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct tapir_engine_scraper *s = arg;

	return __atomic_load_n(&s->stop, __ATOMIC_RELAXED);
}

static enum tapir_engine_error curl_error(struct tapir_engine_scraper *s, CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT: return TAPIR_EE_CONNECT;
	case CURLE_OPERATION_TIMEDOUT: return TAPIR_EE_TIMEOUT;
	case CURLE_FILESIZE_EXCEEDED: return TAPIR_EE_TOO_LARGE;
	case CURLE_WRITE_ERROR: return s->too_big ? TAPIR_EE_TOO_LARGE : TAPIR_EE_PROTOCOL;
	default: return TAPIR_EE_PROTOCOL;
	}
}

/*
 * libcurl's connection is up and the request not sent yet: its local address and port go in
 * own_clients, as the engine will see its peer, so that the BPF side ignores the connection
 * (tapir_ignored_connections_total{reason="tapir"}) instead of counting tapir's own GET as one
 * of the engine's requests. A failure here only means the GET is counted, as before.
 */
static int on_connected(void *arg, char *primary_ip, char *local_ip, int primary_port,
			int local_port)
{
	struct tapir_engine_scraper *s = arg;
	struct tapir_peer_key k = { .port = (__u16)local_port };
	__u8 one = 1;

	(void)primary_ip;
	(void)primary_port;
	if (s->own_clients_fd < 0)
		return CURL_PREREQFUNC_OK;
	if (inet_pton(AF_INET, local_ip, k.addr) == 1) {
		k.family = AF_INET;
	} else if (inet_pton(AF_INET6, local_ip, k.addr) == 1) {
		k.family = AF_INET6;
		if (IN6_IS_ADDR_V4MAPPED((struct in6_addr *)k.addr)) {
			memmove(k.addr, k.addr + 12, 4);
			memset(k.addr + 4, 0, 12);
			k.family = AF_INET;
		}
	} else {
		return CURL_PREREQFUNC_OK;
	}
	if (!bpf_map_update_elem(s->own_clients_fd, &k, &one, BPF_ANY)) {
		s->own_key = k;
		s->own_set = true;
	}
	return CURL_PREREQFUNC_OK;
}

static int setup_curl(struct tapir_engine_scraper *s)
{
	long timeout = s->cfg->engine_timeout_ms;
	CURL *c = s->curl;
	CURLcode rc;

	s->headers = curl_slist_append(NULL, ACCEPT_HEADER);
	if (!s->headers)
		return -ENOMEM;
#if LIBCURL_VERSION_NUM >= 0x075500
	rc = curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
#else
	rc = curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTP);
#endif
	rc = rc ?: curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_PROXY, "");
	/* A connection belongs to the namespace it was made in: never reuse one. */
	rc = rc ?: curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_USERAGENT, "tapir");
	rc = rc ?: curl_easy_setopt(c, CURLOPT_HTTPHEADER, s->headers);
	rc = rc
		     ?: curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
					 (curl_off_t)s->cfg->engine_max_body);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, on_connected);
	rc = rc ?: curl_easy_setopt(c, CURLOPT_PREREQDATA, s);
	if (rc) {
		pr_err("engines: libcurl refused an option: %s", curl_easy_strerror(rc));
		return rc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
	}
	return 0;
}

/* Enter @pid's network namespace on this thread (setns affects the calling thread only); 1 when
 * entered, 0 when it is already ours, -errno. */
static int enter_netns(struct tapir_engine_scraper *s, int pid)
{
	char path[64];
	struct stat st;
	int fd, ret = 1;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st))
		ret = -errno;
	else if (st.st_ino == s->own_netns_ino)
		ret = 0;
	else if (setns(fd, CLONE_NEWNET))
		ret = -errno;
	close(fd);
	return ret;
}

/* Said once: it fails the same way at every fetch until it works. */
static enum tapir_engine_error init_failed(struct tapir_engine_scraper *s, const char *what)
{
	if (!s->init_failed)
		pr_err("engines: libcurl %s failed; no engine is scraped until it works", what);
	s->init_failed = true;
	return TAPIR_EE_INIT;
}

static enum tapir_engine_error fetch(struct tapir_engine_scraper *s, const struct target *t,
				     const char *path)
{
	char url[HOST_MAX + 256];
	long status = 0;
	CURLcode rc;
	int entered;

	/* libcurl and its TLS library start with the first engine found: a node without one
	 * does not carry them (2.4 MB of RSS here). */
	if (!s->curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT))
			return init_failed(s, "global init");
		s->curl = curl_easy_init();
		if (!s->curl || setup_curl(s)) {
			if (s->curl)
				curl_easy_cleanup(s->curl);
			s->curl = NULL;
			curl_slist_free_all(s->headers);
			s->headers = NULL;
			curl_global_cleanup();
			return init_failed(s, "handle setup");
		}
		s->curl_ready = true;
	}
	snprintf(url, sizeof(url), "http://%s:%u%s", t->host, t->port, path);
	tapir_buf__reset(&s->body);
	s->too_big = false;
	s->errbuf[0] = '\0';
	entered = enter_netns(s, t->pid);
	if (entered < 0) {
		pr_debug("engines: cannot enter the network namespace of %d: %s", t->pid,
			 strerror(-entered));
		return TAPIR_EE_NETNS;
	}
	rc = curl_easy_setopt(s->curl, CURLOPT_URL, url);
	rc = rc ?: curl_easy_perform(s->curl);
	if (s->own_set) {
		bpf_map_delete_elem(s->own_clients_fd, &s->own_key);
		s->own_set = false;
	}
	if (entered && setns(s->own_netns, CLONE_NEWNET)) {
		/* The thread would scrape the wrong namespace from now on: stop scraping. */
		pr_err("engines: cannot return to tapir's network namespace: %s; engine scrapes "
		       "stop",
		       strerror(errno));
		__atomic_store_n(&s->stop, true, __ATOMIC_RELAXED);
	}
	if (rc != CURLE_OK) {
		pr_debug("engines: GET %s (pid %d): %s", url, t->pid,
			 s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
		return curl_error(s, rc);
	}
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		pr_debug("engines: GET %s (pid %d): HTTP %ld", url, t->pid, status);
		return TAPIR_EE_HTTP_STATUS;
	}
	return TAPIR_EE_NONE;
}

static void scrape_one(struct tapir_engine_scraper *s, const struct tapir_engine_job *job,
		       struct tapir_engine_outcome *o)
{
	const char *path = job->rule ? job->rule->path : "/metrics";
	uint64_t t0 = mono_us();
	struct target t;
	struct known *k;
	int err;

	memset(o, 0, sizeof(*o));
	o->replica_id = job->replica_id;
	if (!find_target(job, &t) || !locate(s, job->replica_id, &t))
		goto out;
	o->kind = t.kind;
	o->pid = t.pid;
	o->port = t.port;
	o->error = fetch(s, &t, path);
	/* Look its sockets up again: the port may be a wrong guess (the only listener while the
	 * engine loaded), which answers with anything but a refusal. A slow engine is still
	 * the engine. */
	if (tapir_engine_error__relocates(o->error) && (k = known_of(s, job->replica_id)))
		k->t.pid = 0;
	if (o->error)
		goto out;
	err = tapir_engine_metrics__parse(&o->metrics, t.kind, s->body.data, s->body.len,
					  s->cfg->engine_max_samples);
	if (err)
		o->error = err == -E2BIG ? TAPIR_EE_TOO_MANY_SERIES : TAPIR_EE_PARSE;
out:
	/* The body of a hostile target is not kept between rounds. */
	if (s->body.len > (1 << 20))
		tapir_buf__free(&s->body);
	o->took_us = mono_us() - t0;
}

static void *run(void *arg)
{
	struct tapir_engine_scraper *s = arg;
	struct tapir_engine_outcome *out;
	struct tapir_engine_job *jobs;
	size_t n, i;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->stop && !s->jobs)
			pthread_cond_wait(&s->cond, &s->lock);
		if (s->stop)
			break;
		jobs = s->jobs;
		n = s->n_jobs;
		s->jobs = NULL;
		pthread_mutex_unlock(&s->lock);

		out = calloc(n ? n : 1, sizeof(*out));
		s->round++;
		for (i = 0; out && i < n && !__atomic_load_n(&s->stop, __ATOMIC_RELAXED); i++)
			scrape_one(s, &jobs[i], &out[i]);
		forget_unasked(s);
		tapir_engine_jobs__free(jobs, n);

		pthread_mutex_lock(&s->lock);
		s->out = out;
		s->n_out = out ? i : 0;
		s->done = true;
	}
	s->stopped = true;
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* --- the main loop's side ----------------------------------------------------------------- */

struct tapir_engine_scraper *tapir_engine_scraper__new(const struct tapir_config *cfg,
						       int own_clients_fd)
{
	struct tapir_engine_scraper *s = calloc(1, sizeof(*s));
	struct stat st;
	int err;

	if (!s)
		return NULL;
	s->cfg = cfg;
	s->own_clients_fd = own_clients_fd;
	tapir_buf__init(&s->body);
	s->own_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (s->own_netns < 0 || fstat(s->own_netns, &st)) {
		err = errno;
		goto fail;
	}
	s->own_netns_ino = st.st_ino;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	err = pthread_create(&s->thread, NULL, run, s);
	if (err) {
		pthread_cond_destroy(&s->cond);
		pthread_mutex_destroy(&s->lock);
		goto fail;
	}
	/* Named, so that its CPU time can be read apart (/proc/PID/task/TID/schedstat). */
	pthread_setname_np(s->thread, "engine-scrape");
	return s;

fail:
	if (s->own_netns >= 0)
		close(s->own_netns);
	free(s);
	errno = err;
	return NULL;
}

void tapir_engine_scraper__free(struct tapir_engine_scraper *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	__atomic_store_n(&s->stop, true, __ATOMIC_RELAXED);
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	tapir_engine_jobs__free(s->jobs, s->n_jobs);
	tapir_engine_outcomes__free(s->out, s->n_out);
	if (s->curl_ready) {
		curl_easy_cleanup(s->curl);
		curl_global_cleanup();
	}
	curl_slist_free_all(s->headers);
	tapir_buf__free(&s->body);
	free(s->known);
	close(s->own_netns);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int tapir_engine_scraper__submit(struct tapir_engine_scraper *s, struct tapir_engine_job *jobs,
				 size_t n)
{
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	if (s->stopped) {
		ret = -ESRCH;
	} else if (s->busy) {
		ret = -EBUSY;
	} else {
		s->jobs = jobs;
		s->n_jobs = n;
		s->busy = true;
		pthread_cond_signal(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	if (ret)
		tapir_engine_jobs__free(jobs, n);
	return ret;
}

int tapir_engine_scraper__collect(struct tapir_engine_scraper *s, struct tapir_engine_outcome **out,
				  size_t *n)
{
	int ret = -EAGAIN;

	*out = NULL;
	*n = 0;
	/* The thread holds the lock only to swap pointers: this never waits on a scrape. */
	pthread_mutex_lock(&s->lock);
	if (s->done) {
		*out = s->out;
		*n = s->n_out;
		s->out = NULL;
		s->n_out = 0;
		s->busy = s->done = false;
		ret = 0;
	} else if (s->stopped) {
		ret = -ESRCH;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

void tapir_engine_outcomes__free(struct tapir_engine_outcome *o, size_t n)
{
	size_t i;

	for (i = 0; o && i < n; i++)
		tapir_engine_metrics__clear(&o[i].metrics);
	free(o);
}

void tapir_engine_jobs__free(struct tapir_engine_job *jobs, size_t n)
{
	size_t i, d;

	for (i = 0; jobs && i < n; i++) {
		for (d = 0; d < jobs[i].n_dirs; d++)
			free(jobs[i].dirs[d]);
		free(jobs[i].dirs);
	}
	free(jobs);
}
