// SPDX-License-Identifier: GPL-2.0
/*
 * Fuzz target: the configuration loader (user/base/config.c) on any text, as a config file and
 * as a --web-config file. It must either return settings or fail with an error that names the
 * file and a line; never crash, leak (LeakSanitizer runs at exit of each input's allocations)
 * or leave *out set on failure.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static void web_file(const uint8_t *data, size_t size)
{
	struct tapir_web w;
	char err[512];
	int ret;

	err[0] = '\0';
	ret = tapir_web__parse("web.yml", (const char *)data, size, &w, err, sizeof(err));
	if (ret == 0) {
		if (!w.source || (!w.cert_file != !w.key_file))
			abort();
		tapir_web__clear(&w);
		return;
	}
	if (w.users || w.cert_file || w.source)
		abort(); /* cleared on failure */
	if (ret == -EINVAL && strncmp(err, "web.yml:", 8))
		abort();
	if (!memchr(err, '\0', sizeof(err)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tapir_config *cfg = (struct tapir_config *)1;
	char err[512];
	int ret;

	web_file(data, size);
	err[0] = '\0';
	ret = tapir_config__parse("fuzz.yaml", (const char *)data, size, &cfg, err, sizeof(err));
	if (ret == 0) {
		if (!cfg)
			abort();
		tapir_config__free(cfg);
		return 0;
	}
	if (cfg)
		abort(); /* *out is NULL on failure */
	/* "fuzz.yaml:LINE: reason" for bad input; out of memory may say less. */
	if (ret == -EINVAL && strncmp(err, "fuzz.yaml:", 10))
		abort();
	if (!memchr(err, '\0', sizeof(err)))
		abort();
	return 0;
}
