// SPDX-License-Identifier: GPL-2.0
/* The logger: level filter, timestamp, level tag, message. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

static enum tapir_log_level log_level = TAPIR_LOG_INFO;

void tapir_log_set_level(enum tapir_log_level level)
{
	log_level = level;
}

enum tapir_log_level tapir_log_get_level(void)
{
	return log_level;
}

void tapir_log(enum tapir_log_level level, const char *fmt, ...)
{
	static const char *const tags[] = { "error", "warn", "info", "debug" };
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	va_list ap;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s.%03ldZ tapir %s: ", stamp, ts.tv_nsec / 1000000, tags[level]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}
