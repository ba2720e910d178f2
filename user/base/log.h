/* SPDX-License-Identifier: GPL-2.0 */
/* One printf-checked logger for the whole daemon: stderr, one line per message. */
#ifndef TAPIR_LOG_H
#define TAPIR_LOG_H

enum tapir_log_level { TAPIR_LOG_ERROR, TAPIR_LOG_WARN, TAPIR_LOG_INFO, TAPIR_LOG_DEBUG };

void tapir_log_set_level(enum tapir_log_level level);
enum tapir_log_level tapir_log_get_level(void);
void tapir_log(enum tapir_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_err(...)   tapir_log(TAPIR_LOG_ERROR, __VA_ARGS__)
#define pr_warn(...)  tapir_log(TAPIR_LOG_WARN, __VA_ARGS__)
#define pr_info(...)  tapir_log(TAPIR_LOG_INFO, __VA_ARGS__)
#define pr_debug(...) tapir_log(TAPIR_LOG_DEBUG, __VA_ARGS__)

#endif
