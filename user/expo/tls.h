/* SPDX-License-Identifier: GPL-2.0 */
/* TLS material of the /metrics endpoint: read and checked before use, client certs verified. */
#ifndef TAPIR_TLS_H
#define TAPIR_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct tapir_tls {
	bool on;
	char *cert, *key, *ca;	/* PEM text; ca NULL without client certificates */
	int client_auth;	/* enum tapir_client_auth */
	const char *priorities; /* GnuTLS priority string for min_tls */
};

/*
 * Read the files @w names and check them with GnuTLS: the certificate and key parse and belong
 * together, the client CA file holds at least one certificate. 0, or -errno with
 * "FILE:LINE: what: why" (the config line that named the file) in @err.
 */
int tapir_tls__load(const struct tapir_web *w, struct tapir_tls *t, char *err, size_t errlen);
void tapir_tls__clear(struct tapir_tls *t);

/*
 * Whether the client of @session (a gnutls_session_t) may go on under @t's client_auth: 0, or
 * -EACCES with the reason in @why.
 */
int tapir_tls__check_client(const struct tapir_tls *t, void *session, char *why, size_t whylen);

#endif
