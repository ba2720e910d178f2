/* SPDX-License-Identifier: GPL-2.0 */
/* Basic authentication of scrapes: bcrypt hashes from the web settings, verified by libcrypt. */
#ifndef TAPIR_AUTH_H
#define TAPIR_AUTH_H

#include <stdint.h>

#include "config.h"

enum tapir_auth_result {
	TAPIR_AUTH_OK,
	TAPIR_AUTH_DENIED,
	TAPIR_AUTH_THROTTLED, /* too many bcrypt checks of unknown credentials just now */
};

struct tapir_auth;

/* The users of @w (none: every request passes). NULL with errno set on failure. */
struct tapir_auth *tapir_auth__new(const struct tapir_web *w);
/* Is @user/@pass (either may be NULL: no credentials) one of the users? At @now_ms. */
enum tapir_auth_result tapir_auth__check(struct tapir_auth *a, const char *user, const char *pass,
					 uint64_t now_ms);
/* Whether requests need credentials at all. */
int tapir_auth__enabled(const struct tapir_auth *a);
void tapir_auth__free(struct tapir_auth *a);

#endif
