// SPDX-License-Identifier: GPL-2.0
/* Pod metadata as a label source: the fetch thread and the snapshot (the client is kubelet.c). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "podmeta.h"
#include "kubelet.h"
#include "log.h"

struct tapir_podmeta {
	const struct tapir_config *cfg;
	struct tapir_kubelet *client;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct tapir_kube_pods pods; /* the latest good snapshot */
	uint64_t generation, ok, failed;
	bool wake, stop;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static void *run(void *arg)
{
	struct tapir_podmeta *k = arg;
	struct tapir_kube_pods fresh = { 0 }, old;
	struct timespec until, pause;
	uint64_t last = 0, now;
	int err;

	pthread_mutex_lock(&k->lock);
	while (!k->stop) {
		pthread_mutex_unlock(&k->lock);
		/* At most one fetch a second, however often new pods wake us. */
		now = mono_ms();
		if (last && now - last < 1000) {
			pause.tv_sec = 0;
			pause.tv_nsec = (1000 - (now - last)) * 1000000L;
			nanosleep(&pause, NULL);
		}
		last = mono_ms();
		err = tapir_kubelet__fetch(k->client, &fresh); /* logs its own failures */
		pthread_mutex_lock(&k->lock);
		if (!err) {
			old = k->pods;
			k->pods = fresh;
			fresh = old;
			k->generation++;
			k->ok++;
		} else {
			k->failed++;
		}
		tapir_kube_pods__clear(&fresh);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += k->cfg->kube_refresh_s;
		while (!k->stop && !k->wake)
			if (pthread_cond_timedwait(&k->cond, &k->lock, &until) == ETIMEDOUT)
				break;
		k->wake = false;
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

struct tapir_podmeta *tapir_podmeta__new(const struct tapir_config *cfg)
{
	struct tapir_kubelet_opts o = {
		.url = cfg->kubelet_url,
		.token_file = cfg->kube_token_file,
		.ca_file = cfg->kube_ca_file,
		.insecure = cfg->kube_insecure,
		.timeout_ms = 5000,
	};
	struct tapir_podmeta *k;

	errno = 0;
	if (!cfg->kubelet_url)
		return NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	k->cfg = cfg;
	k->client = tapir_kubelet__new(&o);
	if (!k->client) {
		free(k);
		return NULL;
	}
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cond, NULL);
	if (pthread_create(&k->thread, NULL, run, k)) {
		tapir_kubelet__free(k->client);
		free(k);
		errno = EAGAIN;
		return NULL;
	}
	pr_info("pod metadata from %s every %u s", cfg->kubelet_url, cfg->kube_refresh_s);
	return k;
}

void tapir_podmeta__free(struct tapir_podmeta *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->stop = true;
	pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	tapir_kube_pods__clear(&k->pods);
	tapir_kubelet__free(k->client);
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

uint64_t tapir_podmeta__generation(struct tapir_podmeta *k)
{
	uint64_t g;

	pthread_mutex_lock(&k->lock);
	g = k->generation;
	pthread_mutex_unlock(&k->lock);
	return g;
}

void tapir_podmeta__wake(struct tapir_podmeta *k)
{
	pthread_mutex_lock(&k->lock);
	k->wake = true;
	pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(&k->lock);
}

void tapir_podmeta__counts(struct tapir_podmeta *k, uint64_t *ok, uint64_t *failed)
{
	pthread_mutex_lock(&k->lock);
	*ok = k->ok;
	*failed = k->failed;
	pthread_mutex_unlock(&k->lock);
}

static const char *pod_value(const struct tapir_kube_pod *p, const char *how)
{
	if (!strcmp(how, "pod"))
		return p->name;
	if (!strcmp(how, "namespace"))
		return p->namespace_;
	if (!strncmp(how, "label:", 6))
		return tapir_kube_pod__label(p, how + 6);
	if (!strncmp(how, "annotation:", 11))
		return tapir_kube_pod__annotation(p, how + 11);
	return NULL;
}

int tapir_podmeta__labels(struct tapir_podmeta *k, const char *uid,
			  char vals[][TAPIR_KUBE_VALUE_MAX], bool *set)
{
	const struct tapir_kube_pod *p;
	const char *v;
	int i, found = 0;

	pthread_mutex_lock(&k->lock);
	p = tapir_kube_pods__by_uid(&k->pods, uid);
	if (p) {
		found = 1;
		for (i = 0; i < TAPIR_L_COUNT; i++) {
			set[i] = false;
			if (!k->cfg->kube_labels[i])
				continue;
			v = pod_value(p, k->cfg->kube_labels[i]);
			if (!v)
				continue;
			snprintf(vals[i], TAPIR_KUBE_VALUE_MAX, "%s", v);
			set[i] = true;
		}
	}
	pthread_mutex_unlock(&k->lock);
	return found;
}

int tapir_podmeta__pod_name(struct tapir_podmeta *k, const char *uid, char *buf, size_t len)
{
	const struct tapir_kube_pod *p;
	int found = 0;

	pthread_mutex_lock(&k->lock);
	p = tapir_kube_pods__by_uid(&k->pods, uid);
	if (p && p->name) {
		snprintf(buf, len, "%s", p->name);
		found = 1;
	}
	pthread_mutex_unlock(&k->lock);
	return found;
}

int tapir_podmeta__pod_ready(struct tapir_podmeta *k, const char *uid)
{
	const struct tapir_kube_pod *p;
	int ready = -1;

	pthread_mutex_lock(&k->lock);
	p = tapir_kube_pods__by_uid(&k->pods, uid);
	if (p)
		ready = p->ready;
	pthread_mutex_unlock(&k->lock);
	return ready;
}
