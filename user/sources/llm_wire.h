/* SPDX-License-Identifier: GPL-2.0 */
/* The framing of a streamed HTTP response body: chunked transfer coding and server-sent events. */
#ifndef TAPIR_LLM_WIRE_H
#define TAPIR_LLM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Both parsers are fed raw bytes in pieces split anywhere, keep only the state that a split
 * needs, and hand their output on through a callback as soon as it is whole: a callback's
 * non-zero return stops the feed and is returned.
 */
typedef int (*tapir_wire_data_fn)(void *ctx, const char *data, size_t len);
typedef int (*tapir_wire_event_fn)(void *ctx, const char *event, const char *data, size_t len);

/* RFC 9112 section 7.1. Zero-initialised is the start of a body. */
struct tapir_dechunk {
	uint64_t left; /* bytes left in the current chunk, or the size being read */
	uint8_t state;
	bool digits; /* the size line has a hex digit */
};

/*
 * Feed @n wire bytes; the chunks' payload goes to @out as it comes. Returns 0 (more to come),
 * 1 once the last chunk and its trailers are through (bytes after it are ignored), -EBADMSG on
 * broken framing (from then on, every feed), or what @out returned. Chunk extensions and
 * trailer fields are skipped; a bare LF is taken for CRLF, as most servers' parsers do.
 */
int tapir_dechunk__feed(struct tapir_dechunk *d, const char *buf, size_t n, tapir_wire_data_fn out,
			void *ctx);

/*
 * The WHATWG event stream interpretation (HTML, "Server-sent events", 9.2.6): lines end in
 * CRLF, LF or CR (a CR that ends one piece and an LF that starts the next are one line end),
 * ':' starts a comment, a field's value loses one leading space, data lines join with '\n', a
 * blank line dispatches the event, a leading BOM is dropped. id and retry are not needed here
 * and are ignored; an event that no blank line ends is never dispatched.
 */
struct tapir_sse {
	char *data; /* this event's data, NUL-terminated for the callback */
	size_t len, cap, max;
	char event[64]; /* the event type; longer ones are kept cut, they are no type we know */
	size_t event_len;
	char field[8]; /* enough for the longest field we act on */
	size_t field_len;
	uint8_t state, field_kind, bom;
	bool cr;
};

/* An event whose data exceeds @max bytes fails the feed with -E2BIG. */
void tapir_sse__init(struct tapir_sse *s, size_t max);
void tapir_sse__release(struct tapir_sse *s);
/*
 * Feed @n bytes of the event stream; each event goes to @ev with its type ("" when it set
 * none) and data. Returns 0, -E2BIG, -ENOMEM, or what @ev returned.
 */
int tapir_sse__feed(struct tapir_sse *s, const char *buf, size_t n, tapir_wire_event_fn ev,
		    void *ctx);

#endif
