// SPDX-License-Identifier: GPL-2.0
/* De-chunks a response body and splits an event stream into events, byte-split safe. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "llm_wire.h"

/* --- chunked transfer coding -------------------------------------------------------------- */

enum {
	DC_SIZE,    /* hex digits of a chunk size */
	DC_EXT,	    /* a chunk extension, up to the line end */
	DC_SIZE_LF, /* the LF of a size line's CRLF */
	DC_DATA,    /* chunk payload */
	DC_DATA_CR, /* the CRLF after the payload */
	DC_DATA_LF,
	DC_TRAILER, /* the start of a trailer line, or the blank line that ends the body */
	DC_TRAILER_LINE,
	DC_END_LF, /* the LF of the final blank line */
	DC_DONE,
	DC_BAD,
};

/* No server sends a terabyte chunk; a size past it is garbage, not a reason to wait forever. */
#define DC_MAX_CHUNK (1ULL << 40)

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The size line is over: a payload follows, or the trailers after the last chunk. */
static int size_line_end(struct tapir_dechunk *d)
{
	if (!d->digits)
		return DC_BAD;
	d->digits = false;
	return d->left ? DC_DATA : DC_TRAILER;
}

/* One framing byte in state @st; the next state. */
static int dechunk_byte(struct tapir_dechunk *d, int st, char c)
{
	int h;

	switch (st) {
	case DC_SIZE:
		h = hex(c);
		if (h >= 0) {
			if (d->left >= DC_MAX_CHUNK)
				return DC_BAD;
			d->left = d->left * 16 + h;
			d->digits = true;
			return DC_SIZE;
		}
		if (c == ';' || c == ' ' || c == '\t')
			return d->digits ? DC_EXT : DC_BAD;
		if (c == '\r')
			return DC_SIZE_LF;
		return c == '\n' ? size_line_end(d) : DC_BAD;
	case DC_EXT:
		if (c == '\r')
			return DC_SIZE_LF;
		return c == '\n' ? size_line_end(d) : DC_EXT;
	case DC_SIZE_LF: return c == '\n' ? size_line_end(d) : DC_BAD;
	case DC_DATA_CR:
		if (c == '\r')
			return DC_DATA_LF;
		return c == '\n' ? DC_SIZE : DC_BAD;
	case DC_DATA_LF: return c == '\n' ? DC_SIZE : DC_BAD;
	case DC_TRAILER:
		if (c == '\r')
			return DC_END_LF;
		return c == '\n' ? DC_DONE : DC_TRAILER_LINE;
	case DC_TRAILER_LINE: return c == '\n' ? DC_TRAILER : DC_TRAILER_LINE;
	case DC_END_LF: return c == '\n' ? DC_DONE : DC_BAD;
	}
	return DC_BAD;
}

int tapir_dechunk__feed(struct tapir_dechunk *d, const char *buf, size_t n, tapir_wire_data_fn out,
			void *ctx)
{
	size_t i = 0, run;
	int ret;

	while (i < n && d->state != DC_DONE && d->state != DC_BAD) {
		if (d->state != DC_DATA) {
			d->state = dechunk_byte(d, d->state, buf[i++]);
			continue;
		}
		run = n - i < d->left ? n - i : (size_t)d->left;
		d->left -= run;
		if (!d->left)
			d->state = DC_DATA_CR;
		ret = out(ctx, buf + i, run);
		i += run;
		if (ret)
			return ret;
	}
	if (d->state == DC_BAD)
		return -EBADMSG;
	return d->state == DC_DONE;
}

/* --- server-sent events ------------------------------------------------------------------- */

enum {
	SSE_LINE,	 /* at the start of a line */
	SSE_FIELD,	 /* in a field name */
	SSE_VALUE_START, /* after the colon: one space to drop */
	SSE_VALUE,
	SSE_COMMENT,
};

enum { FK_OTHER, FK_DATA, FK_EVENT };

void tapir_sse__init(struct tapir_sse *s, size_t max)
{
	memset(s, 0, sizeof(*s));
	s->max = max;
}

void tapir_sse__release(struct tapir_sse *s)
{
	free(s->data);
	s->data = NULL;
	s->len = s->cap = 0;
}

static int data_append(struct tapir_sse *s, const char *p, size_t n)
{
	size_t cap;
	char *d;

	if (s->len + n > s->max)
		return -E2BIG;
	if (s->len + n + 1 > s->cap) {
		for (cap = s->cap ? s->cap : 256; cap < s->len + n + 1; cap *= 2)
			;
		d = realloc(s->data, cap);
		if (!d)
			return -ENOMEM;
		s->data = d;
		s->cap = cap;
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	return 0;
}

static int field_kind(const struct tapir_sse *s)
{
	if (s->field_len == 4 && !memcmp(s->field, "data", 4))
		return FK_DATA;
	if (s->field_len == 5 && !memcmp(s->field, "event", 5))
		return FK_EVENT;
	return FK_OTHER;
}

/* A blank line: the event goes out if it has data; either way the next one starts afresh. */
static int dispatch(struct tapir_sse *s, tapir_wire_event_fn ev, void *ctx)
{
	char type[sizeof(s->event) + 1];
	int ret = 0;

	if (s->len) {
		s->len--; /* the '\n' after the last data line */
		s->data[s->len] = '\0';
		memcpy(type, s->event, s->event_len);
		type[s->event_len] = '\0';
		ret = ev(ctx, type, s->data, s->len);
	}
	s->len = 0;
	s->event_len = 0;
	return ret;
}

/* The end of a non-blank line: a data line adds its '\n'. */
static int line_end(struct tapir_sse *s)
{
	if (s->state == SSE_FIELD) {
		s->field_kind = field_kind(s); /* a field without a colon: an empty value */
		if (s->field_kind == FK_EVENT)
			s->event_len = 0;
	}
	if (s->state != SSE_COMMENT && s->field_kind == FK_DATA)
		return data_append(s, "\n", 1);
	return 0;
}

/* @n bytes of a field's value. */
static int value_bytes(struct tapir_sse *s, const char *p, size_t n)
{
	size_t room;

	if (s->field_kind == FK_DATA)
		return data_append(s, p, n);
	if (s->field_kind == FK_EVENT) {
		room = sizeof(s->event) - s->event_len;
		n = n < room ? n : room;
		memcpy(s->event + s->event_len, p, n);
		s->event_len += n;
	}
	return 0;
}

/* A byte that is not a line end, in the current state. */
static int sse_byte(struct tapir_sse *s, char c)
{
	switch (s->state) {
	case SSE_LINE:
		if (c == ':') {
			s->state = SSE_COMMENT;
			return 0;
		}
		s->field_len = 0;
		s->field_kind = FK_OTHER;
		s->state = SSE_FIELD;
		/* fall through */
	case SSE_FIELD:
		if (c == ':') {
			s->field_kind = field_kind(s);
			if (s->field_kind == FK_EVENT)
				s->event_len = 0; /* the last event line wins */
			s->state = SSE_VALUE_START;
		} else if (s->field_len < sizeof(s->field)) {
			s->field[s->field_len++] = c;
		} else {
			s->field_len = sizeof(s->field) + 1; /* no name we know: never matches */
		}
		return 0;
	case SSE_VALUE_START:
		s->state = SSE_VALUE;
		if (c == ' ')
			return 0;
		return value_bytes(s, &c, 1);
	}
	return 0; /* comments */
}

int tapir_sse__feed(struct tapir_sse *s, const char *buf, size_t n, tapir_wire_event_fn ev,
		    void *ctx)
{
	static const char bom[] = "\xef\xbb\xbf";
	size_t i = 0, j;
	int ret;

	/* A BOM only at the very start, itself possibly split. */
	while (s->bom < 3 && i < n) {
		if (buf[i] != bom[s->bom]) {
			if (s->bom) /* a BOM's start that is none: not a valid stream start */
				s->state = SSE_COMMENT;
			s->bom = 3;
			break;
		}
		s->bom++;
		i++;
	}
	for (; i < n; i++) {
		char c = buf[i];

		if (c == '\n' && s->cr) {
			s->cr = false;
			continue;
		}
		s->cr = c == '\r';
		if (c == '\r' || c == '\n') {
			ret = s->state == SSE_LINE ? dispatch(s, ev, ctx) : line_end(s);
			s->state = SSE_LINE;
			s->field_kind = FK_OTHER;
			if (ret)
				return ret;
			continue;
		}
		if (s->state == SSE_VALUE) {
			/* The rest of the value in one run. */
			for (j = i; j < n && buf[j] != '\r' && buf[j] != '\n'; j++)
				;
			ret = value_bytes(s, buf + i, j - i);
			if (ret)
				return ret;
			i = j - 1;
			continue;
		}
		ret = sse_byte(s, c);
		if (ret)
			return ret;
	}
	return 0;
}
