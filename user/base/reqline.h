/* SPDX-License-Identifier: GPL-2.0 */
/* The path of an HTTP/1.x request line: what destinations, async rules and LLM paths match. */
#ifndef TAPIR_REQLINE_H
#define TAPIR_REQLINE_H

#include <stddef.h>
#include <string.h>
#include <strings.h>

/*
 * The path of request line @line (@len bytes at most, up to its end or a NUL: the kernel's
 * NUL-padded 32-byte line, or a head's first line) into @path (@size bytes, NUL-terminated, cut
 * to fit): the target up to its query, fragment or the blank before the version. A proxy's
 * absolute-form target ("http://host:port/p") gives the path after its authority. "" for a line
 * without a target.
 */
static inline void tapir_request_path(const char *line, size_t len, char *path, size_t size)
{
	const char *end = line + strnlen(line, len), *p = memchr(line, ' ', end - line), *q;
	size_t n, skip;

	path[0] = '\0';
	if (!p)
		return;
	p++;
	skip = (size_t)(end - p) > 7 && !strncasecmp(p, "http://", 7)	 ? 7
	       : (size_t)(end - p) > 8 && !strncasecmp(p, "https://", 8) ? 8
									 : 0;
	if (skip) {
		q = memchr(p + skip, '/', end - p - skip);
		p = q ? q : end;
	}
	for (n = 0; p + n < end && !strchr(" ?#\r\n", p[n]); n++)
		;
	if (n >= size)
		n = size - 1;
	memcpy(path, p, n);
	path[n] = '\0';
}

#endif
