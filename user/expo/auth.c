// SPDX-License-Identifier: GPL-2.0
/*
 * Basic authentication of scrapes. bcrypt costs tens of milliseconds by design and runs on the
 * server's only thread, so a credential that verified once is remembered (as a keyed digest,
 * never as text) and checks of other credentials are rate-limited: a flood of wrong passwords
 * costs the flood a 429, not Prometheus its scrape.
 */
#include <crypt.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "auth.h"

#define DIGEST_BYTES 32 /* HMAC-SHA-256 */
/* bcrypt checks of credentials not seen before: this many at once, refilled per second. */
#define CHECKS_BURST	  10
#define CHECKS_PER_SECOND 10

struct user {
	char *name;
	char *hash;
	bool known_good;
	unsigned char good[DIGEST_BYTES]; /* HMAC of the password that last verified */
};

struct tapir_auth {
	struct user *users;
	size_t n_users;
	unsigned char key[DIGEST_BYTES]; /* per process, so the digests mean nothing elsewhere */
	double tokens;
	uint64_t refilled_ms;
	struct crypt_data cd; /* 32 KiB of crypt_rn() scratch, kept off the stack */
};

/* Compares every byte whatever the first difference, so timing says nothing about where. */
static bool equal_ct(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

struct tapir_auth *tapir_auth__new(const struct tapir_web *w)
{
	struct tapir_auth *a = calloc(1, sizeof(*a));
	size_t i;

	if (!a)
		return NULL;
	a->users = calloc(w->n_users ? w->n_users : 1, sizeof(*a->users));
	if (!a->users)
		goto fail;
	for (i = 0; i < w->n_users; i++) {
		a->users[i].name = strdup(w->users[i].name);
		a->users[i].hash = strdup(w->users[i].hash);
		a->n_users++;
		if (!a->users[i].name || !a->users[i].hash)
			goto fail;
	}
	if (gnutls_rnd(GNUTLS_RND_KEY, a->key, sizeof(a->key))) {
		errno = EIO;
		goto fail;
	}
	a->tokens = CHECKS_BURST;
	return a;
fail:
	tapir_auth__free(a);
	return NULL;
}

int tapir_auth__enabled(const struct tapir_auth *a)
{
	return a && a->n_users > 0;
}

static bool take_token(struct tapir_auth *a, uint64_t now_ms)
{
	if (now_ms > a->refilled_ms) {
		a->tokens += (double)(now_ms - a->refilled_ms) * CHECKS_PER_SECOND / 1000.0;
		if (a->tokens > CHECKS_BURST)
			a->tokens = CHECKS_BURST;
		a->refilled_ms = now_ms;
	}
	if (a->tokens < 1.0)
		return false;
	a->tokens -= 1.0;
	return true;
}

static bool bcrypt_ok(struct tapir_auth *a, const char *pass, const char *hash)
{
	const char *out;
	size_t n = strlen(hash);

	memset(&a->cd, 0, sizeof(a->cd));
	out = crypt_rn(pass, hash, &a->cd, sizeof(a->cd));
	return out && strlen(out) == n && equal_ct(out, hash, n);
}

enum tapir_auth_result tapir_auth__check(struct tapir_auth *a, const char *user, const char *pass,
					 uint64_t now_ms)
{
	unsigned char digest[DIGEST_BYTES];
	struct user *u = NULL;
	bool ok;
	size_t i;

	if (!tapir_auth__enabled(a))
		return TAPIR_AUTH_OK;
	if (!user || !pass)
		return TAPIR_AUTH_DENIED;
	for (i = 0; i < a->n_users; i++)
		if (!strcmp(a->users[i].name, user))
			u = &a->users[i];
	if (gnutls_hmac_fast(GNUTLS_MAC_SHA256, a->key, sizeof(a->key), pass, strlen(pass), digest))
		return TAPIR_AUTH_DENIED;
	if (u && u->known_good && equal_ct(digest, u->good, sizeof(digest)))
		return TAPIR_AUTH_OK;
	if (!take_token(a, now_ms))
		return TAPIR_AUTH_THROTTLED;
	/* An unknown user costs a bcrypt check too, so timing does not tell which names exist. */
	ok = bcrypt_ok(a, pass, u ? u->hash : a->users[0].hash) && u;
	if (!ok)
		return TAPIR_AUTH_DENIED;
	memcpy(u->good, digest, sizeof(digest));
	u->known_good = true;
	return TAPIR_AUTH_OK;
}

void tapir_auth__free(struct tapir_auth *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < a->n_users; i++) {
		free(a->users[i].name);
		free(a->users[i].hash);
	}
	free(a->users);
	explicit_bzero(a, sizeof(*a));
	free(a);
}
