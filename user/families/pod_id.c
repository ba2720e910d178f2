// SPDX-License-Identifier: GPL-2.0
/* _internal_pod_id, one computation for every family that carries it. */
#include <stdio.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "identity.h"
#include "pod_id.h"

void tapir_pod_id(const char *rel, char *out)
{
	struct tapir_identity id;
	unsigned char digest[32];
	const char *key = rel;
	size_t i;

	if (!tapir_identity_parse(rel, &id) && id.pod_uid[0])
		key = id.pod_uid;
	if (gnutls_hash_fast(GNUTLS_DIG_SHA256, key, strlen(key), digest)) {
		out[0] = '\0';
		return;
	}
	for (i = 0; i < TAPIR_POD_ID_HEX / 2; i++)
		snprintf(out + 2 * i, 3, "%02x", digest[i]);
}
