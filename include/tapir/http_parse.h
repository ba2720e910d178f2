/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* HTTP/1.x message framing: one byte-level state machine shared by the BPF side and the tests. */
#ifndef TAPIR_HTTP_PARSE_H
#define TAPIR_HTTP_PARSE_H

/*
 * This header includes nothing: BPF code gets __u8..__u64 from vmlinux.h, user code from
 * <linux/types.h>. Everything is static and always inlined so that it compiles to straight
 * BPF without calls, and to ordinary C for the cmocka tests.
 *
 * The parser frames messages; it never stores payload. A driver feeds it bytes through
 * tapir_http_step() and lets it jump over bodies with tapir_http_bulk_*() without reading them,
 * so a 1 GiB download costs the same as a 1 KiB one.
 */

#ifndef TAPIR_INLINE
#define TAPIR_INLINE static inline __attribute__((always_inline))
#endif

/* Hide a value from the compiler, so that a mask it could prove redundant stays in the code
 * for the verifier to see. */
#define TAPIR_OPAQUE(x) asm volatile("" : "+r"(x))

/* Parser states (struct tapir_http_parser.state). */
#define TP_IDLE		  0  /* between messages; CR/LF tolerated, anything else starts one */
#define TP_START	  1  /* start line: request line or status line */
#define TP_HDR_START	  2  /* at the first byte of a header line */
#define TP_HDR_NAME	  3  /* inside a header name that may still be one we care about */
#define TP_HDR_VALUE	  4  /* inside the value of a header we care about */
#define TP_HDR_SKIP	  5  /* rest of an uninteresting header line */
#define TP_BODY_CL	  6  /* Content-Length body, `remaining` bytes left */
#define TP_CHUNK_SIZE	  7  /* hex digits of a chunk-size line */
#define TP_CHUNK_EXT	  8  /* chunk extension, skipped to end of line */
#define TP_CHUNK_DATA	  9  /* chunk payload, `remaining` bytes left */
#define TP_CHUNK_DATA_END 10 /* CRLF after chunk payload */
#define TP_TRAILER_START  11 /* first byte of a trailer line (or the final empty line) */
#define TP_TRAILER_SKIP	  12 /* rest of a trailer line */
#define TP_BODY_CLOSE	  13 /* body delimited by connection close */
#define TP_DONE		  14 /* message complete */
#define TP_ERROR	  15 /* not HTTP/1.x, or broken framing */

/* Events returned by tapir_http_feed() and tapir_http_step(). */
#define TP_EV_NONE	0
#define TP_EV_START	1 /* first byte of a message */
#define TP_EV_HEADERS	2 /* header block complete */
#define TP_EV_DONE	3 /* message complete */
#define TP_EV_INTERIM	4 /* a 1xx other than 101 complete; a final response follows */
#define TP_EV_ERROR	5
#define TP_EV_AMBIGUOUS 6 /* a request with both Content-Length and Transfer-Encoding: chunked */

/* Message kinds (struct tapir_http_parser.kind). */
#define TP_KIND_REQUEST	 0
#define TP_KIND_RESPONSE 1

/* Request methods (struct tapir_http_parser.method). */
#define TP_M_UNKNOWN 0
#define TP_M_GET     1
#define TP_M_HEAD    2
#define TP_M_POST    3
#define TP_M_PUT     4
#define TP_M_DELETE  5
#define TP_M_OPTIONS 6
#define TP_M_PATCH   7
#define TP_M_CONNECT 8
#define TP_M_TRACE   9
#define TP_M_PRI     10 /* the HTTP/2 connection preface, "PRI * HTTP/2.0" */

/* Flags (struct tapir_http_parser.flags). */
#define TP_F_CHUNKED  0x01 /* Transfer-Encoding: chunked */
#define TP_F_HAS_CL   0x02 /* Content-Length seen */
#define TP_F_CLOSE    0x04 /* Connection: close */
#define TP_F_UPGRADE  0x08 /* Connection: upgrade */
#define TP_F_NO_BODY  0x10 /* response to HEAD: set by the driver before feeding */
#define TP_F_UPGRADED 0x20 /* 101 Switching Protocols: the connection leaves HTTP/1.x */
#define TP_F_HTTP10   0x40 /* message is HTTP/1.0 */
#define TP_F_LINE_OK  0x80 /* the start line was complete and well formed */

/* Headers we look at (struct tapir_http_parser.hdr is a bitmask of candidates). */
#define TP_H_CONTENT_LENGTH    0x01
#define TP_H_TRANSFER_ENCODING 0x02
#define TP_H_CONNECTION	       0x04
#define TP_H_ALL	       0x07

#ifndef TAPIR_FAST_VALUES
#define TAPIR_FAST_VALUES 1 /* whole header values in tapir_http_fast() (0: byte by byte) */
#endif

#define TP_MAX_START_LINE   16384 /* longer request/status lines are not HTTP we understand */
#define TP_MAX_HEADER_BYTES 65536

struct tapir_http_parser {
	__u64 remaining; /* body bytes left; during the start line, the method token */
	__u32 hdr_bytes; /* bytes of start line and headers so far */
	__u16 status;	 /* response status code */
	__u8 state;
	__u8 kind;
	__u8 method;
	__u8 flags;
	__u8 hdr;    /* candidates still matching the current header name */
	__u8 pos;    /* byte index within the current token */
	__u8 match;  /* progress of a substring match inside a header value */
	__u8 match2; /* second substring match (Connection: close / upgrade) */
	__u8 digits; /* digits seen in a number */
	__u8 __pad[9];
};

TAPIR_INLINE void tapir_http_init(struct tapir_http_parser *p, __u8 kind)
{
	p->remaining = 0;
	p->hdr_bytes = 0;
	p->status = 0;
	p->state = TP_IDLE;
	p->kind = kind;
	p->method = 0;
	p->flags = 0;
	p->hdr = 0;
	p->pos = 0;
	p->match = 0;
	p->match2 = 0;
	p->digits = 0;
}

TAPIR_INLINE __u8 tapir_lower(__u8 c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/*
 * Lower-case spellings of the header names and value words we look for, indexed by a
 * variable. Tables (rather than switch ladders) keep the verifier from following one path per
 * letter; on BPF they live in .rodata, a frozen array map, available since 5.2.
 */
#define TP_NAME_MAX 32 /* a power of two: indices are masked as well as checked (below) */
static const char tapir_hdr_names[3][TP_NAME_MAX] = {
	"content-length",
	"transfer-encoding",
	"connection",
};

#define TP_WORD_CHUNKED 0
#define TP_WORD_CLOSE	1
#define TP_WORD_UPGRADE 2
static const char tapir_words[3][8] = { "chunked", "close", "upgrade" };

/*
 * Byte i of header name `which` (a TP_H_* bit), lower case; 0 past its end. The masks repeat
 * the bounds checks for older verifiers (5.10), which can lose a bound checked on one copy of a
 * register when the compiler indexes with another.
 */
TAPIR_INLINE __u8 tapir_hdr_char(__u8 which, __u8 i)
{
	__u32 n = which == TP_H_CONTENT_LENGTH ? 0 : which == TP_H_TRANSFER_ENCODING ? 1 : 2;

	if (i >= TP_NAME_MAX)
		return 0;
	TAPIR_OPAQUE(i);
	return tapir_hdr_names[n][i & (TP_NAME_MAX - 1)];
}

TAPIR_INLINE __u8 tapir_word_char(__u8 word, __u8 i)
{
	if (word > TP_WORD_UPGRADE || i >= 8)
		return 0;
	TAPIR_OPAQUE(i);
	return tapir_words[word][i & 7];
}

#define TP_MATCHED 0x80 /* set in a match counter once the whole word was seen */

/* Advance a case-insensitive substring match of a value word by one (lower-cased) byte. */
TAPIR_INLINE __u8 tapir_word_step(__u8 word, __u8 m, __u8 c)
{
	if (m & TP_MATCHED)
		return m;
	if (tapir_word_char(word, m) == c) {
		m++;
		if (tapir_word_char(word, m) == 0)
			m |= TP_MATCHED;
		return m;
	}
	return tapir_word_char(word, 0) == c ? 1 : 0;
}

/* Method from the token packed big-endian into a u64 (at most 7 letters). */
TAPIR_INLINE __u8 tapir_method_id(__u64 tok)
{
	switch (tok) {
	case 0x474554ULL: return TP_M_GET;
	case 0x48454144ULL: return TP_M_HEAD;
	case 0x504f5354ULL: return TP_M_POST;
	case 0x505554ULL: return TP_M_PUT;
	case 0x44454c455445ULL: return TP_M_DELETE;
	case 0x4f5054494f4e53ULL: return TP_M_OPTIONS;
	case 0x5041544348ULL: return TP_M_PATCH;
	case 0x434f4e4e454354ULL: return TP_M_CONNECT;
	case 0x5452414345ULL: return TP_M_TRACE;
	case 0x505249ULL: return TP_M_PRI;
	}
	return TP_M_UNKNOWN;
}

#define TP_VERSION_PREFIX 0x485454502f312eULL /* "HTTP/1." packed big-endian */

TAPIR_INLINE int tapir_http_fail(struct tapir_http_parser *p)
{
	p->state = TP_ERROR;
	return TP_EV_ERROR;
}

/* Decide how the body is framed once the header block is complete. */
TAPIR_INLINE int tapir_http_headers_done(struct tapir_http_parser *p)
{
	if (p->kind == TP_KIND_RESPONSE) {
		if (p->status == 101) {
			p->flags |= TP_F_UPGRADED;
			p->state = TP_DONE;
			return TP_EV_DONE;
		}
		if (p->status < 200) {
			/* 100 Continue, 102, 103: the final response follows on the same
			 * connection; keep HEAD knowledge, forget the rest. */
			__u8 keep = p->flags & TP_F_NO_BODY;

			tapir_http_init(p, TP_KIND_RESPONSE);
			p->flags = keep;
			return TP_EV_INTERIM;
		}
		if ((p->flags & TP_F_NO_BODY) || p->status == 204 || p->status == 304) {
			p->state = TP_DONE;
			return TP_EV_DONE;
		}
	}
	if ((p->flags & (TP_F_CHUNKED | TP_F_HAS_CL)) == (TP_F_CHUNKED | TP_F_HAS_CL) &&
	    p->kind == TP_KIND_REQUEST) {
		/* RFC 9112 6.3: the framing is ambiguous (the shape of request smuggling);
		 * servers answer 400 and close, or disagree with each other. */
		p->state = TP_ERROR;
		return TP_EV_AMBIGUOUS;
	}
	if (p->flags & TP_F_CHUNKED) {
		p->state = TP_CHUNK_SIZE;
		p->remaining = 0;
		p->digits = 0;
		return TP_EV_HEADERS;
	}
	if (p->flags & TP_F_HAS_CL) {
		if (p->remaining == 0) {
			p->state = TP_DONE;
			return TP_EV_DONE;
		}
		p->state = TP_BODY_CL;
		return TP_EV_HEADERS;
	}
	if (p->kind == TP_KIND_RESPONSE) {
		p->state = TP_BODY_CLOSE;
		return TP_EV_HEADERS;
	}
	p->state = TP_DONE; /* a request without framing headers has no body */
	return TP_EV_DONE;
}

TAPIR_INLINE int tapir_http_start_line(struct tapir_http_parser *p, __u8 c)
{
	__u8 i = p->pos;

	if (c == '\n') {
		if (p->kind == TP_KIND_REQUEST ? p->method == TP_M_UNKNOWN : i < 12)
			return tapir_http_fail(p);
		/* The rolling tail of a request line must read "HTTP/1.x". */
		if (p->kind == TP_KIND_REQUEST) {
			__u64 t = p->remaining;

			if ((t >> 8) != TP_VERSION_PREFIX)
				return tapir_http_fail(p);
			if ((t & 0xff) == '0')
				p->flags |= TP_F_HTTP10;
			p->remaining = 0;
		}
		p->flags |= TP_F_LINE_OK;
		p->state = TP_HDR_START;
		p->pos = 0;
		return TP_EV_NONE;
	}
	if (p->kind == TP_KIND_REQUEST) {
		if (p->method == TP_M_UNKNOWN) {
			if (c == ' ') {
				p->method = tapir_method_id(p->remaining);
				if (p->method == TP_M_UNKNOWN || p->method == TP_M_PRI)
					return tapir_http_fail(p);
				p->remaining = 0;
				return TP_EV_NONE;
			}
			if (c < 'A' || c > 'Z' || i >= 7)
				return tapir_http_fail(p);
			p->remaining = (p->remaining << 8) | c;
			p->pos = i + 1;
			return TP_EV_NONE;
		}
		if (c != '\r')
			p->remaining = ((p->remaining << 8) | c) & 0xffffffffffffffffULL;
		return TP_EV_NONE;
	}
	/* Status line: "HTTP/1.x NNN reason" */
	if (i < 7) {
		if (c != ((TP_VERSION_PREFIX >> ((6 - i) * 8)) & 0xff))
			return tapir_http_fail(p);
	} else if (i == 7) {
		if (c != '0' && c != '1')
			return tapir_http_fail(p);
		if (c == '0')
			p->flags |= TP_F_HTTP10;
	} else if (i == 8) {
		if (c != ' ')
			return tapir_http_fail(p);
	} else if (i < 12) {
		if (c < '0' || c > '9')
			return tapir_http_fail(p);
		p->status = p->status * 10 + (c - '0');
		if (i == 9 && c == '0')
			return tapir_http_fail(p);
	} else if (i == 12) {
		if (c != ' ' && c != '\r')
			return tapir_http_fail(p);
	}
	if (i < 13)
		p->pos = i + 1;
	return TP_EV_NONE;
}

TAPIR_INLINE int tapir_http_header_value(struct tapir_http_parser *p, __u8 c)
{
	if (c == '\n') {
		if (p->hdr == TP_H_CONTENT_LENGTH) {
			if (p->digits == 0)
				return tapir_http_fail(p);
			p->flags |= TP_F_HAS_CL;
		} else if (p->hdr == TP_H_TRANSFER_ENCODING) {
			if (p->match & TP_MATCHED)
				p->flags |= TP_F_CHUNKED;
		} else if (p->hdr == TP_H_CONNECTION) {
			if (p->match & TP_MATCHED)
				p->flags |= TP_F_CLOSE;
			if (p->match2 & TP_MATCHED)
				p->flags |= TP_F_UPGRADE;
		}
		p->state = TP_HDR_START;
		p->pos = 0;
		return TP_EV_NONE;
	}
	if (c == '\r' || c == ' ' || c == '\t')
		return TP_EV_NONE;
	c = tapir_lower(c);
	if (p->hdr == TP_H_CONTENT_LENGTH) {
		/* Two Content-Length headers or a non-digit: refuse, as RFC 9112 6.3 asks. */
		if (c < '0' || c > '9' || (p->flags & TP_F_HAS_CL) || p->digits >= 18)
			return tapir_http_fail(p);
		p->remaining = p->remaining * 10 + (c - '0');
		p->digits++;
	} else if (p->hdr == TP_H_TRANSFER_ENCODING) {
		p->match = tapir_word_step(TP_WORD_CHUNKED, p->match, c);
	} else if (p->hdr == TP_H_CONNECTION) {
		p->match = tapir_word_step(TP_WORD_CLOSE, p->match, c);
		p->match2 = tapir_word_step(TP_WORD_UPGRADE, p->match2, c);
	}
	return TP_EV_NONE;
}

/* The rest of this header line does not matter. Scratch fields are cleared so that every way
 * into this state (byte by byte, or 8 bytes at once) leaves the same parser behind. */
TAPIR_INLINE int tapir_http_skip_line(struct tapir_http_parser *p)
{
	p->state = TP_HDR_SKIP;
	p->hdr = 0;
	p->pos = 0;
	return TP_EV_NONE;
}

TAPIR_INLINE int tapir_http_header_name(struct tapir_http_parser *p, __u8 c)
{
	__u8 i = p->pos, keep = 0, h;

	if (c == ':') {
		/* A candidate is matched when its name ends exactly here. */
		for (h = 1; h <= TP_H_CONNECTION; h <<= 1)
			if ((p->hdr & h) && tapir_hdr_char(h, i) == 0)
				keep = h;
		if (!keep)
			return tapir_http_skip_line(p);
		p->hdr = keep;
		p->match = 0;
		p->match2 = 0;
		p->digits = 0;
		if (keep == TP_H_CONTENT_LENGTH)
			p->remaining = 0;
		p->state = TP_HDR_VALUE;
		return TP_EV_NONE;
	}
	if (c == '\n') /* a line without a colon: tolerated, ignored */
		return p->state = TP_HDR_START, TP_EV_NONE;
	c = tapir_lower(c);
	for (h = 1; h <= TP_H_CONNECTION; h <<= 1)
		if ((p->hdr & h) && tapir_hdr_char(h, i) == c)
			keep |= h;
	if (!keep)
		return tapir_http_skip_line(p);
	p->hdr = keep;
	p->pos = i + 1;
	return TP_EV_NONE;
}

TAPIR_INLINE int tapir_hex(__u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tapir_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

TAPIR_INLINE int tapir_http_chunk_size(struct tapir_http_parser *p, __u8 c)
{
	int v;

	if (c == '\n') {
		if (p->digits == 0)
			return tapir_http_fail(p);
		p->state = p->remaining ? TP_CHUNK_DATA : TP_TRAILER_START;
		return TP_EV_NONE;
	}
	if (c == '\r' || c == ' ' || c == '\t')
		return TP_EV_NONE;
	if (c == ';') {
		p->state = TP_CHUNK_EXT;
		return TP_EV_NONE;
	}
	v = tapir_hex(c);
	if (v < 0 || p->digits >= 15)
		return tapir_http_fail(p);
	p->remaining = (p->remaining << 4) | (__u64)v;
	p->digits++;
	return TP_EV_NONE;
}

/*
 * A message's first byte where it is the usual one (a method's first letter, a status line's
 * H): the state tapir_http_feed() leaves, without its switch, and TP_EV_START; TP_EV_NONE for
 * any other byte or state, the parser untouched (then feed it).
 */
TAPIR_INLINE int tapir_http_first(struct tapir_http_parser *p, __u8 c)
{
	if (p->state != TP_IDLE || p->hdr_bytes >= TP_MAX_HEADER_BYTES)
		return TP_EV_NONE;
	if (p->kind == TP_KIND_REQUEST) {
		if (p->method != TP_M_UNKNOWN || c < 'A' || c > 'Z')
			return TP_EV_NONE;
		p->remaining = c;
	} else {
		if (c != ((TP_VERSION_PREFIX >> 48) & 0xff))
			return TP_EV_NONE;
		p->remaining = 0;
	}
	p->state = TP_START;
	p->pos = 1;
	p->hdr_bytes = 1;
	return TP_EV_START;
}

/**
 * tapir_http_feed - advance the parser by one byte
 * Returns a TP_EV_* event. Bulk states (bodies) also accept bytes here one at a time.
 */
TAPIR_INLINE int tapir_http_feed(struct tapir_http_parser *p, __u8 c)
{
	__u8 st = p->state;

	if (st < TP_BODY_CL && ++p->hdr_bytes > TP_MAX_HEADER_BYTES)
		return tapir_http_fail(p);

	switch (st) {
	case TP_IDLE:
		if (c == '\r' || c == '\n')
			return TP_EV_NONE;
		p->state = TP_START;
		p->pos = 0;
		p->remaining = 0;
		p->hdr_bytes = 1;
		if (tapir_http_start_line(p, c) == TP_EV_ERROR)
			return TP_EV_ERROR;
		return TP_EV_START;
	case TP_START:
		if (p->hdr_bytes > TP_MAX_START_LINE)
			return tapir_http_fail(p);
		return tapir_http_start_line(p, c);
	case TP_HDR_START:
		if (c == '\r')
			return TP_EV_NONE;
		if (c == '\n')
			return tapir_http_headers_done(p);
		p->state = TP_HDR_NAME;
		p->hdr = TP_H_ALL;
		p->pos = 0;
		return tapir_http_header_name(p, c);
	case TP_HDR_NAME: return tapir_http_header_name(p, c);
	case TP_HDR_VALUE: return tapir_http_header_value(p, c);
	case TP_HDR_SKIP:
		if (c == '\n') {
			p->state = TP_HDR_START;
			p->pos = 0;
		}
		return TP_EV_NONE;
	case TP_BODY_CL:
		if (--p->remaining == 0) {
			p->state = TP_DONE;
			return TP_EV_DONE;
		}
		return TP_EV_NONE;
	case TP_CHUNK_SIZE: return tapir_http_chunk_size(p, c);
	case TP_CHUNK_EXT:
		if (c == '\n') {
			p->state = p->remaining ? TP_CHUNK_DATA : TP_TRAILER_START;
		}
		return TP_EV_NONE;
	case TP_CHUNK_DATA:
		if (--p->remaining == 0)
			p->state = TP_CHUNK_DATA_END;
		return TP_EV_NONE;
	case TP_CHUNK_DATA_END:
		if (c == '\r')
			return TP_EV_NONE;
		if (c != '\n')
			return tapir_http_fail(p);
		p->state = TP_CHUNK_SIZE;
		p->digits = 0;
		return TP_EV_NONE;
	case TP_TRAILER_START:
		if (c == '\r')
			return TP_EV_NONE;
		if (c == '\n') {
			p->state = TP_DONE;
			return TP_EV_DONE;
		}
		p->state = TP_TRAILER_SKIP;
		return TP_EV_NONE;
	case TP_TRAILER_SKIP:
		if (c == '\n')
			p->state = TP_TRAILER_START;
		return TP_EV_NONE;
	case TP_BODY_CLOSE: return TP_EV_NONE;
	}
	return tapir_http_fail(p); /* DONE or ERROR: the driver must reset first */
}

/* Non-zero when some byte of the 8 in x equals b (the classic SWAR zero-byte test). */
#define TP_ONES	 0x0101010101010101ULL
#define TP_HIGHS 0x8080808080808080ULL
TAPIR_INLINE __u64 tapir_has_byte(__u64 x, __u8 b)
{
	__u64 y = x ^ (TP_ONES * b);

	return (y - TP_ONES) & ~y & TP_HIGHS;
}

/* First 8 bytes of the candidate header names, lower case, as little-endian words. */
#define TP_W_CONTENT_ 0x2d746e65746e6f63ULL /* "content-" */
#define TP_W_TRANSFER 0x726566736e617274ULL /* "transfer" */
#define TP_W_CONNECTI 0x697463656e6e6f63ULL /* "connecti" */

TAPIR_INLINE __u64 tapir_bswap64(__u64 x)
{
	return __builtin_bswap64(x);
}

/* Index of the first byte equal to b in x (little-endian), 8 if none. */
TAPIR_INLINE __u32 tapir_byte_index(__u64 x, __u8 b)
{
	__u64 m = tapir_has_byte(x, b);

	if (!m)
		return 8;
	/* The lowest flag is exact (borrows only travel upwards): bit 8i+7 for byte i. Shifted
	 * down it is 1 << 8i, and the product puts byte 7-i of the constant, i, on top. No ctz:
	 * the BPF backend has no such instruction and expands it into a long sequence. */
	m &= ~m + 1;
	return (__u32)(((m >> 7) * 0x0001020304050607ULL) >> 56);
}

#define TP_W_LENGTH_ 0x203a6874676e656cULL /* "length: " */
#define TP_W_ON_     0x00000000203a6e6fULL /* "on: " in the low 4 bytes */
/* Case folding for the letters of those words only: OR-ing 0x20 into other bytes would let
 * e.g. NUL pass for a space. */
#define TP_FOLD_CONTENT_ 0x0020202020202020ULL /* "content" folded, '-' exact */
#define TP_FOLD_ALL	 0x2020202020202020ULL
#define TP_FOLD_LENGTH_	 0x0000202020202020ULL /* "length" folded, ": " exact */
#define TP_FOLD_ON_	 0x0000000000002020ULL

/* Enter a header value after its name, colon and one space were taken in bulk. */
TAPIR_INLINE __u32 tapir_http_value_at(struct tapir_http_parser *p, __u8 which, __u32 n,
				       __u8 name_len)
{
	if (p->hdr_bytes + n > TP_MAX_HEADER_BYTES)
		return 0;
	p->state = TP_HDR_VALUE;
	p->hdr = which;
	p->pos = name_len; /* as tapir_http_header_name() leaves it at the colon */
	p->match = 0;
	p->match2 = 0;
	p->digits = 0;
	if (which == TP_H_CONTENT_LENGTH)
		p->remaining = 0;
	p->hdr_bytes += n;
	return n;
}

/* States in which tapir_http_fast() may take bytes: a cheap test before calling it. */
TAPIR_INLINE int tapir_http_fast_state(__u8 st)
{
	return st == TP_HDR_START || st == TP_HDR_SKIP || st == TP_START || st == TP_CHUNK_EXT ||
	       st == TP_TRAILER_SKIP || (TAPIR_FAST_VALUES && st == TP_HDR_VALUE);
}

/* "TTP/1.1 " and "TTP/1.0 ": a status line after its first byte, little-endian. */
#define TP_W_TTP11 0x20312e312f505454ULL
#define TP_W_TTP10 0x20302e312f505454ULL

/*
 * A status line from its second byte (the first one went through tapir_http_feed(), which
 * reported the message start): "TTP/1.x NNN" and the byte after the code in one go.
 */
TAPIR_INLINE __u32 tapir_http_fast_status(struct tapir_http_parser *p, __u64 x0, __u64 x1)
{
	__u8 d1 = x1 & 0xff, d2 = (x1 >> 8) & 0xff, d3 = (x1 >> 16) & 0xff,
	     after = (x1 >> 24) & 0xff;

	if ((x0 != TP_W_TTP11 && x0 != TP_W_TTP10) || d1 < '1' || d1 > '9' || d2 < '0' ||
	    d2 > '9' || d3 < '0' || d3 > '9' || (after != ' ' && after != '\r') ||
	    p->hdr_bytes + 12 > TP_MAX_START_LINE)
		return 0;
	if (x0 == TP_W_TTP10)
		p->flags |= TP_F_HTTP10;
	p->status = (d1 - '0') * 100 + (d2 - '0') * 10 + (d3 - '0');
	p->pos = 13;
	p->hdr_bytes += 12;
	return 12;
}

/*
 * The end of a request line ("...HTTP/1.1\r\n") when the CR is among the next 8 bytes and the
 * LF right after it: the bytes before the CR join the rolling tail, then the tail is checked as the LF
 * handler would. Anything unusual (a bad tail, a lone CR or LF) goes byte by byte.
 */
TAPIR_INLINE __u32 tapir_http_fast_line_end(struct tapir_http_parser *p, __u64 x0, __u64 x1)
{
	__u32 cr = tapir_byte_index(x0, '\r'), lf = tapir_byte_index(x0, '\n');
	__u64 t = p->remaining;

	if (cr == 7 && lf == 8 && (x1 & 0xff) == '\n')
		lf = 8; /* the LF opens the next word */
	else if (cr > 6 || lf != cr + 1)
		return 0;
	if (p->hdr_bytes + lf + 1 > TP_MAX_START_LINE)
		return 0;
	if (cr)
		t = (t << (8 * cr)) | (tapir_bswap64(x0) >> (8 * (8 - cr)));
	if ((t >> 8) != TP_VERSION_PREFIX)
		return 0;
	if ((t & 0xff) == '0')
		p->flags |= TP_F_HTTP10;
	p->flags |= TP_F_LINE_OK;
	p->remaining = 0;
	p->state = TP_HDR_START;
	p->pos = 0;
	p->hdr_bytes += lf + 1;
	return lf + 1;
}

/* "keep-ali" / "ve\r\n" and "close\r\n", case folded where they are letters. */
#define TP_W_KEEP_ALI	 0x696c612d7065656bULL
#define TP_FOLD_KEEP_ALI 0x2020200020202020ULL /* '-' exact */
#define TP_W_VE_CRLF	 0x0a0d6576ULL
#define TP_FOLD_VE	 0x00002020ULL
#define TP_W_CLOSE_CRLF	 0x0a0d65736f6c63ULL /* 7 bytes */
#define TP_FOLD_CLOSE	 0x00002020202020ULL
#define TP_W_CHUNKED_CR	 0x0d64656b6e756863ULL /* "chunked\r" */
#define TP_FOLD_CHUNKED	 0x0020202020202020ULL
#define TP_MASK(n)	 (~0ULL >> (64 - 8 * (n)))

/* Leave a header value at its LF: what tapir_http_header_value() does with the '\n'. */
TAPIR_INLINE __u32 tapir_http_value_end(struct tapir_http_parser *p, __u32 n)
{
	if (p->hdr_bytes + n > TP_MAX_HEADER_BYTES)
		return 0;
	p->hdr_bytes += n;
	p->state = TP_HDR_START;
	p->pos = 0;
	return n;
}

/*
 * A whole header value of the usual shapes, at its first byte: "keep-alive\r\n" and
 * "close\r\n" for Connection, "chunked\r\n" for Transfer-Encoding, up to 7 digits and "\r\n"
 * for Content-Length. Anything else goes byte by byte.
 */
TAPIR_INLINE __u32 tapir_http_fast_value(struct tapir_http_parser *p, __u64 x0, __u64 x1)
{
	__u32 k, i;
	__u64 v = 0;

	if (p->match || p->match2 || p->digits)
		return 0; /* not at the first byte of the value */
	if (p->hdr == TP_H_CONNECTION) {
		if ((x0 | TP_FOLD_KEEP_ALI) == TP_W_KEEP_ALI &&
		    ((x1 | TP_FOLD_VE) & TP_MASK(4)) == TP_W_VE_CRLF)
			return tapir_http_value_end(p, 12);
		if (((x0 | TP_FOLD_CLOSE) & TP_MASK(7)) == TP_W_CLOSE_CRLF) {
			k = tapir_http_value_end(p, 7);
			if (k) {
				p->match = 5 | TP_MATCHED;
				p->flags |= TP_F_CLOSE;
			}
			return k;
		}
		return 0;
	}
	if (p->hdr == TP_H_TRANSFER_ENCODING) {
		if ((x0 | TP_FOLD_CHUNKED) != TP_W_CHUNKED_CR || (x1 & 0xff) != '\n')
			return 0;
		k = tapir_http_value_end(p, 9);
		if (k) {
			p->match = 7 | TP_MATCHED;
			p->flags |= TP_F_CHUNKED;
		}
		return k;
	}
	if (p->hdr != TP_H_CONTENT_LENGTH || (p->flags & TP_F_HAS_CL))
		return 0;
	k = tapir_byte_index(x0, '\r');
	if (k == 0 || k == 8 || ((k == 7 ? x1 : x0 >> (8 * (k + 1))) & 0xff) != '\n')
		return 0;
	for (i = 0; i < 7; i++) {
		__u8 c = (x0 >> (8 * i)) & 0xff;

		if (i >= k)
			break;
		if (c < '0' || c > '9')
			return 0;
		v = v * 10 + (c - '0');
	}
	if (!tapir_http_value_end(p, k + 2))
		return 0;
	p->remaining = v;
	p->digits = k;
	p->flags |= TP_F_HAS_CL;
	return k + 2;
}

/* A request method and its space, after the first letter went through tapir_http_feed(). */
TAPIR_INLINE __u32 tapir_http_fast_method(struct tapir_http_parser *p, __u64 x0)
{
	__u32 k = tapir_byte_index(x0, ' '), i;
	__u64 tok = p->remaining;
	__u8 m;

	if (k == 0 || k == 8 || p->pos + k > 7 || p->hdr_bytes + k + 1 > TP_MAX_START_LINE)
		return 0;
	for (i = 0; i < 7; i++) {
		__u8 c = (x0 >> (8 * i)) & 0xff;

		if (i >= k)
			break;
		if (c < 'A' || c > 'Z')
			return 0;
		tok = (tok << 8) | c;
	}
	m = tapir_method_id(tok);
	if (m == TP_M_UNKNOWN || m == TP_M_PRI)
		return 0; /* the byte path fails it */
	p->method = m;
	p->remaining = 0;
	p->pos += k;
	p->hdr_bytes += k + 1;
	return k + 1;
}

#define TP_NAME_UNSURE	       0 /* byte by byte */
#define TP_NAME_SKIP	       1 /* a header we do not read: its line is skipped */
#define TP_NAME_CONTENT_LENGTH 2 /* "Content-Length: " whole */
#define TP_NAME_CONNECTION     3 /* "Connection: " whole */

/*
 * What the 16 bytes at the first byte of a header line (@x0, @x1; not the blank line) tell of
 * its name, as far as tapir_http_fast() goes on them.
 */
TAPIR_INLINE __u32 tapir_http_name_class(__u64 x0, __u64 x1)
{
	__u64 l;

	if (tapir_has_byte(x0, '\n') || tapir_has_byte(x0, '\r'))
		return TP_NAME_UNSURE;
	if ((x0 | TP_FOLD_CONTENT_) == TP_W_CONTENT_) {
		if ((x1 | TP_FOLD_LENGTH_) == TP_W_LENGTH_)
			return TP_NAME_CONTENT_LENGTH;
		if (tapir_has_byte(x1, '\n') || tapir_has_byte(x1, '\r') ||
		    ((x1 | TP_FOLD_LENGTH_) & 0xffffffffffffULL) ==
			    (TP_W_LENGTH_ & 0xffffffffffffULL))
			return TP_NAME_UNSURE;
		return TP_NAME_SKIP; /* "content-" then not "length": e.g. Content-Type */
	}
	if ((x0 | TP_FOLD_ALL) == TP_W_CONNECTI) {
		if (((x1 | TP_FOLD_ON_) & 0xffffffffULL) == TP_W_ON_)
			return TP_NAME_CONNECTION;
		return TP_NAME_UNSURE;
	}
	/* Every candidate name is longer than 8 bytes; OR-ing 0x20 into all 8 bytes can only add
	 * false matches, which take the slow path. */
	l = x0 | TP_FOLD_ALL;
	if (l == (TP_W_CONTENT_ | TP_FOLD_ALL) || l == TP_W_TRANSFER || l == TP_W_CONNECTI)
		return TP_NAME_UNSURE;
	return TP_NAME_SKIP;
}

/* The first 8 bytes of a header line tapir_http_name_class() found TP_NAME_SKIP: the rest of
 * the line goes to the next LF. */
TAPIR_INLINE __u32 tapir_http_skip_name(struct tapir_http_parser *p)
{
	if (p->hdr_bytes + 8 > TP_MAX_HEADER_BYTES)
		return 0;
	tapir_http_skip_line(p);
	p->hdr_bytes += 8;
	return 8;
}

/**
 * tapir_http_fast - consume up to 16 bytes at once where byte-level parsing would learn nothing
 * @x0: the next 8 bytes, loaded little-endian; @x1: the 8 after them
 *
 * Returns how many bytes the parser took (0 to 16); the parser is then exactly where feeding
 * them one by one would have left it, for every input (the unit tests check this on every split
 * of every sample and on random input). 0 means: feed the next byte. Covers uninteresting header
 * lines, line tails, the reason phrase, the request target and the names of the headers we read.
 */
TAPIR_INLINE __u32 tapir_http_fast(struct tapir_http_parser *p, __u64 x0, __u64 x1)
{
	__u32 k;

	switch (p->state) {
	case TP_HDR_START:
		if ((x0 & 0xffff) == 0x0a0d) {
			/* The CR of the empty line: the LF that ends the header block is fed. */
			if (p->hdr_bytes + 1 > TP_MAX_HEADER_BYTES)
				return 0;
			p->hdr_bytes++;
			return 1;
		}
		k = tapir_http_name_class(x0, x1);
		if (k == TP_NAME_CONTENT_LENGTH)
			return tapir_http_value_at(p, TP_H_CONTENT_LENGTH, 16, 14);
		if (k == TP_NAME_CONNECTION)
			return tapir_http_value_at(p, TP_H_CONNECTION, 12, 10);
		if (k == TP_NAME_UNSURE)
			return 0;
		break;
	case TP_HDR_SKIP:
		k = tapir_byte_index(x0, '\n');
		if (k < 8) {
			/* The line ends here: same as the '\n' fed in TP_HDR_SKIP. */
			if (p->hdr_bytes + k + 1 > TP_MAX_HEADER_BYTES)
				return 0;
			p->hdr_bytes += k + 1;
			p->state = TP_HDR_START;
			p->pos = 0;
			return k + 1;
		}
		if (p->hdr_bytes + 8 > TP_MAX_HEADER_BYTES)
			return 0;
		p->hdr_bytes += 8;
		return 8;
	case TP_START:
		if (p->kind == TP_KIND_RESPONSE) {
			/* The reason phrase: nothing to learn until the end of the line. */
			if (p->pos == 1)
				return tapir_http_fast_status(p, x0, x1);
			if (p->pos < 13)
				return 0;
			k = tapir_byte_index(x0, '\n');
			if (k == 0 || p->hdr_bytes + k > TP_MAX_START_LINE)
				return 0;
			p->hdr_bytes += k;
			return k;
		}
		if (p->method == TP_M_UNKNOWN)
			return tapir_http_fast_method(p, x0);
		/* The request target: only the rolling tail of the line matters. */
		if (p->hdr_bytes + 8 > TP_MAX_START_LINE)
			return 0;
		if (tapir_has_byte(x0, '\n') || tapir_has_byte(x0, '\r'))
			return tapir_http_fast_line_end(p, x0, x1);
		p->remaining = tapir_bswap64(x0);
		p->hdr_bytes += 8;
		return 8;
	case TP_HDR_VALUE: return TAPIR_FAST_VALUES ? tapir_http_fast_value(p, x0, x1) : 0;
	case TP_CHUNK_EXT:
	case TP_TRAILER_SKIP: return tapir_has_byte(x0, '\n') ? 0 : 8;
	default: return 0;
	}
	/* TP_HDR_START, a name we do not read: the 8 bytes and the rest of the line are skipped. */
	return tapir_http_skip_name(p);
}

/* Bytes the driver may hand over without reading them: body bytes of known length. */
TAPIR_INLINE __u64 tapir_http_bulk_max(const struct tapir_http_parser *p)
{
	if (p->state == TP_BODY_CL || p->state == TP_CHUNK_DATA)
		return p->remaining;
	if (p->state == TP_BODY_CLOSE)
		return ~0ULL;
	return 0;
}

/* Consume n <= tapir_http_bulk_max() body bytes; returns an event. */
TAPIR_INLINE int tapir_http_bulk(struct tapir_http_parser *p, __u64 n)
{
	if (p->state == TP_BODY_CLOSE)
		return TP_EV_NONE;
	p->remaining -= n;
	if (p->remaining)
		return TP_EV_NONE;
	if (p->state == TP_BODY_CL) {
		p->state = TP_DONE;
		return TP_EV_DONE;
	}
	p->state = TP_CHUNK_DATA_END;
	return TP_EV_NONE;
}

/*
 * States where every byte up to the next LF is skipped: an uninteresting header or trailer
 * line, a chunk extension, a reason phrase. The driver then finds the LF itself, as far as
 * it can see, and hands over the whole run with tapir_http_skip().
 */
TAPIR_INLINE int tapir_http_skip_state(const struct tapir_http_parser *p)
{
	return p->state == TP_HDR_SKIP || p->state == TP_TRAILER_SKIP || p->state == TP_CHUNK_EXT ||
	       (p->state == TP_START && p->kind == TP_KIND_RESPONSE && p->pos >= 13);
}

/**
 * tapir_http_skip - take @n bytes without an LF, then the LF too when @lf
 *
 * Only in a tapir_http_skip_state(). Returns the bytes taken (@n + @lf), leaving the parser
 * exactly where feeding them one by one would have, or 0 when a limit is near (then feed).
 */
TAPIR_INLINE __u32 tapir_http_skip(struct tapir_http_parser *p, __u32 n, int lf)
{
	__u32 all = n + (lf ? 1 : 0);

	switch (p->state) {
	case TP_HDR_SKIP:
		if (p->hdr_bytes + all > TP_MAX_HEADER_BYTES)
			return 0;
		p->hdr_bytes += all;
		if (lf) {
			p->state = TP_HDR_START;
			p->pos = 0;
		}
		return all;
	case TP_START:
		if (p->hdr_bytes + all > TP_MAX_START_LINE)
			return 0;
		p->hdr_bytes += all;
		if (lf) { /* as tapir_http_start_line() ends a status line */
			p->flags |= TP_F_LINE_OK;
			p->state = TP_HDR_START;
			p->pos = 0;
		}
		return all;
	case TP_TRAILER_SKIP:
		if (lf)
			p->state = TP_TRAILER_START;
		return all;
	case TP_CHUNK_EXT:
		if (lf)
			p->state = p->remaining ? TP_CHUNK_DATA : TP_TRAILER_START;
		return all;
	}
	return 0;
}

#define TAPIR_WIN 256 /* bytes of payload looked at per window; a power of two */

/*
 * Eight bytes at any offset of the window: one unaligned load on BPF (the verifier allows it on
 * map values), memcpy in C. The pointer goes through an empty asm first: clang otherwise keeps
 * the alignment of a byte array's element for the load and splits it into eight byte loads,
 * shifts and ors (45 instructions instead of 1 for a 16-byte shortcut).
 */
#ifndef TAPIR_LOAD_BARRIER
/* 0: plain loads, split into bytes: the compat build, whose walk_more goes past the 1M
 * instructions of 6.18's verifier with the barrier (its 32 inlined steps multiply the cost) */
#define TAPIR_LOAD_BARRIER 1
#endif
#if defined(__bpf__) && !TAPIR_LOAD_BARRIER
#define TAPIR_UNALIGNED(p) ((__u64 *)(p))
#elif defined(__bpf__)
#define TAPIR_UNALIGNED(p)                    \
	({                                    \
		const void *__p = (p);        \
		asm volatile("" : "+r"(__p)); \
		(__u64 *)__p;                 \
	})
#endif
#ifdef __bpf__
#define TAPIR_LOAD64(p)	    (*(const __u64 *)TAPIR_UNALIGNED(p))
#define TAPIR_STORE64(p, x) (*TAPIR_UNALIGNED(p) = (x))
#else
TAPIR_INLINE __u64 tapir_load64(const void *p)
{
	__u64 x;

	__builtin_memcpy(&x, p, 8);
	return x;
}
#define TAPIR_LOAD64(p)	    tapir_load64(p)
#define TAPIR_STORE64(p, x) __builtin_memcpy((p), &(__u64){ (x) }, 8)
#endif

/**
 * tapir_http_skip_window - in a tapir_http_skip_state(), take lines nothing is learnt from
 * @win: a window of @wlen <= TAPIR_WIN bytes of the stream; @at: the parser's place in it
 *
 * Finds the next LF a word at a time and hands the parser every byte up to it and the LF; then,
 * while the next line is a header that tapir_http_name_class() finds one we do not read, that
 * whole line too: a run of such lines in one go, up to the next line that matters. Without an
 * LF, every byte the window still has. Returns the bytes taken, the parser then exactly where
 * feeding them one by one would have left it; 0 when fewer than 8 bytes are left (then feed).
 */
TAPIR_INLINE __u32 tapir_http_skip_window(struct tapir_http_parser *p, const __u8 *win, __u32 wlen,
					  __u32 at)
{
	__u32 k = 0, took = 0, i, o, j, n;
	__u64 x, x1;

	for (i = 0; i < TAPIR_WIN / 8; i++) {
		/* No-ops (both stay under 2 * TAPIR_WIN) that make every path into an iteration
		 * look alike to the verifier, which then checks each iteration once, not once per
		 * path into it. */
		TAPIR_OPAQUE(k);
		TAPIR_OPAQUE(took);
		k &= TAPIR_WIN * 2 - 1;
		took &= TAPIR_WIN * 2 - 1;
		o = at + k;
		if (o + 8 > wlen)
			break;
		/* A no-op after that test (wlen <= TAPIR_WIN), kept for the verifier. */
		TAPIR_OPAQUE(o);
		o &= TAPIR_WIN - 1;
		if (o > TAPIR_WIN - 8)
			break;
		x = TAPIR_LOAD64(&win[o]);
		if (!tapir_has_byte(x, '\n')) {
			k += 8;
			continue;
		}
		j = tapir_byte_index(x, '\n');
		n = tapir_http_skip(p, k + j - took, 1);
		if (!n)
			return took;
		took += n;
		/* The next line: a header we do not read, if its first 16 bytes show it. */
		o = at + took;
		if (p->state != TP_HDR_START || o + 16 > wlen)
			return took;
		TAPIR_OPAQUE(o);
		o &= TAPIR_WIN - 1;
		if (o > TAPIR_WIN - 16)
			return took;
		x = TAPIR_LOAD64(&win[o]);
		x1 = TAPIR_LOAD64(&win[o + 8]);
		if ((x & 0xffff) == 0x0a0d || tapir_http_name_class(x, x1) != TP_NAME_SKIP ||
		    !tapir_http_skip_name(p))
			return took;
		took += 8;
		k = took;
	}
	if (k > took)
		took += tapir_http_skip(p, k - took, 0);
	return took;
}

/* "transfer-encoding: chunked\r\n" after "transfer", case folded where they are letters. */
#define TP_W_ENCODIN	0x6e69646f636e652dULL /* "-encodin" */
#define TP_FOLD_ENCODIN 0x2020202020202000ULL /* '-' exact */
#define TP_W_G_CHUNK	0x6b6e756863203a67ULL /* "g: chunk" */
#define TP_FOLD_G_CHUNK 0x2020202020000020ULL /* ": " exact */
#define TP_W_ED_CRLF	0x0a0d6465ULL	      /* "ed\r\n" */
#define TP_FOLD_ED	0x00002020ULL
#define TP_W_HTTP1_	0x002e312f50545448ULL /* "HTTP/1." in the low 7 bytes */

/* A window as a type of its own: the size a BPF global function's verifier sees. */
struct tapir_http_win {
	__u8 b[TAPIR_WIN];
};

/*
 * One header line of a head tapir_http_head() takes whole, of at least 11 bytes, whose name
 * tapir_http_name_class() put in class @cls (not TP_NAME_SKIP): @n bytes from @o in @win (the
 * CR before its LF included, the LF not). Leaves @q as feeding the line and its LF byte by byte
 * would; 0 when the line is not of a shape taken here. Its loads may reach past the LF (at most
 * 32 bytes from @o, within the window); what decides is never past the LF.
 */
TAPIR_INLINE int tapir_http_head_line(struct tapir_http_parser *q, const struct tapir_http_win *w,
				      __u32 o, __u32 n, __u32 cls)
{
	const __u8 *win = w->b;
	__u64 x0, x1, x2, x3, v = 0;
	__u32 i;
	__u8 c;

	TAPIR_OPAQUE(o); /* checked by the caller: masks for the verifier */
	o &= TAPIR_WIN - 1;
	if (o > TAPIR_WIN - 32)
		return 0;
	switch (cls) {
	case TP_NAME_CONTENT_LENGTH:
		/* "content-length: " and 1 to 8 digits before the CR. */
		n -= 17;
		if (n < 1 || n > 8 || (q->flags & TP_F_HAS_CL))
			return 0;
		x2 = TAPIR_LOAD64(&win[o + 16]);
		for (i = 0; i < 8; i++) {
			if (i >= n)
				break;
			c = (x2 >> (8 * i)) & 0xff;
			if (c < '0' || c > '9')
				return 0;
			v = v * 10 + (c - '0');
		}
		q->remaining = v;
		q->digits = n;
		q->flags |= TP_F_HAS_CL;
		q->hdr = TP_H_CONTENT_LENGTH;
		q->match = 0;
		q->match2 = 0;
		q->pos = 0;
		return 1;
	case TP_NAME_CONNECTION:
		x2 = TAPIR_LOAD64(&win[o + 12]);
		x3 = TAPIR_LOAD64(&win[o + 20]);
		if (n == 23 && (x2 | TP_FOLD_KEEP_ALI) == TP_W_KEEP_ALI &&
		    ((x3 | TP_FOLD_VE) & TP_MASK(4)) == TP_W_VE_CRLF) {
			q->match = 0;
		} else if (n == 18 && ((x2 | TP_FOLD_CLOSE) & TP_MASK(7)) == TP_W_CLOSE_CRLF) {
			q->match = 5 | TP_MATCHED;
			q->flags |= TP_F_CLOSE;
		} else {
			return 0;
		}
		q->hdr = TP_H_CONNECTION;
		q->match2 = 0;
		q->digits = 0;
		q->pos = 0;
		return 1;
	}
	/* Transfer-Encoding: chunked, exactly; any other line tapir_http_name_class() is unsure
	 * of goes byte by byte. */
	x0 = TAPIR_LOAD64(&win[o]);
	x1 = TAPIR_LOAD64(&win[o + 8]);
	x2 = TAPIR_LOAD64(&win[o + 16]);
	x3 = TAPIR_LOAD64(&win[o + 24]);
	if (n != 27 || (x0 | TP_FOLD_ALL) != TP_W_TRANSFER ||
	    (x1 | TP_FOLD_ENCODIN) != TP_W_ENCODIN || (x2 | TP_FOLD_G_CHUNK) != TP_W_G_CHUNK ||
	    ((x3 | TP_FOLD_ED) & TP_MASK(4)) != TP_W_ED_CRLF)
		return 0;
	q->flags |= TP_F_CHUNKED;
	q->hdr = TP_H_TRANSFER_ENCODING;
	q->match = 7 | TP_MATCHED;
	q->match2 = 0;
	q->digits = 0;
	q->pos = 0;
	return 1;
}

#define TP_HEAD_STEPS (TAPIR_WIN / 8 + 32) /* words of a window, and line ends in it */

#ifdef TAPIR_HEAD_LINE_FN
/* BPF: tapir_http_head_line() through a global function of the includer's, which the verifier
 * checks once rather than in every iteration of the head's loop. */
__attribute__((noinline)) int TAPIR_HEAD_LINE_FN(struct tapir_http_parser *q,
						 const struct tapir_http_win *w, __u32 o, __u32 n,
						 __u32 cls);
#define TAPIR_HEAD_LINE(q, w, o, n, cls) TAPIR_HEAD_LINE_FN(q, w, o, n, cls)
#else
#define TAPIR_HEAD_LINE(q, w, o, n, cls) tapir_http_head_line(q, w, o, n, cls)
#endif

/* The 16 bytes of @win at @o into @x0 and @x1; 0 when they would pass the window's end (a check
 * the verifier keeps: the offset is masked after it). */
TAPIR_INLINE int tapir_http_load16(const __u8 *win, __u32 o, __u64 *x0, __u64 *x1)
{
	TAPIR_OPAQUE(o);
	o &= TAPIR_WIN - 1;
	if (o > TAPIR_WIN - 16)
		return 0;
	*x0 = TAPIR_LOAD64(&win[o]);
	*x1 = TAPIR_LOAD64(&win[o + 8]);
	return 1;
}

/*
 * The 8 bytes of @win from @k, of the first @wlen (the last word of them, shifted, when fewer
 * than 8 are left); 0 with *@ok clear when @k is past them.
 */
TAPIR_INLINE __u64 tapir_http_word(const __u8 *win, __u32 wlen, __u32 k, int *ok)
{
	__u32 o;

	*ok = 0;
	if (k >= wlen || wlen < 8)
		return 0;
	o = k + 8 <= wlen ? k : wlen - 8;
	TAPIR_OPAQUE(o);
	o &= TAPIR_WIN - 1;
	if (o > TAPIR_WIN - 8)
		return 0;
	*ok = 1;
	/* Past the window's end, the bytes before @k are dropped. */
	return TAPIR_LOAD64(&win[o]) >> (8 * ((k - o) & 7));
}

/**
 * tapir_http_head - a whole message head of the usual shape, in one go
 * @q: where the work is done (a copy of @p, copied back when the head is taken): memory, not
 * the stack, so that the BPF verifier does not follow each of its fields through every line
 * @win: a window, TAPIR_WIN bytes, of which the first @wlen are the stream's (the others are
 * read past a line's end, never used); @at: the parser's place in it, right after the
 * message's first byte (TP_START, pos 1); @ev: the event of its end
 *
 * A request line "METHOD target HTTP/1.x" or a status line "HTTP/1.x NNN reason" with NNN of
 * 200 or more, then header lines, each ending in CRLF, of which those tapir reads have their
 * usual values (Content-Length of up to 8 digits, Connection keep-alive or close,
 * Transfer-Encoding chunked), then the empty line, all within the window. Returns the bytes
 * taken up to the empty line's LF, the parser then exactly where feeding them one by one would
 * have left it, and @ev what that LF raised; 0 for any other shape, the parser untouched
 * (then take it in smaller pieces).
 */
TAPIR_INLINE __u32 tapir_http_head(struct tapir_http_parser *p, struct tapir_http_parser *q,
				   const __u8 *win, __u32 wlen, __u32 at, int *ev)
{
	__u32 i, k, ls, lf, o, n, cls;
	__u64 x, x1;
	int ok;

	if (p->state != TP_START || p->pos != 1 || wlen > TAPIR_WIN || at + 16 > wlen)
		return 0;
	if (!tapir_http_load16(win, at, &x, &x1))
		return 0;
	*q = *p;
	if (q->kind == TP_KIND_REQUEST) {
		n = q->method == TP_M_UNKNOWN ? tapir_http_fast_method(q, x) : 0;
	} else {
		n = tapir_http_fast_status(q, x, x1);
		if (q->status < 200) /* interim answers and 101 go byte by byte */
			n = 0;
	}
	if (!n)
		return 0;

	/* The rest of the start line, to its LF. */
	k = at + n;
	lf = TAPIR_WIN;
	for (i = 0; i < TAPIR_WIN / 8 + 1; i++) {
		TAPIR_OPAQUE(k);
		k &= TAPIR_WIN * 2 - 1;
		x = tapir_http_word(win, wlen, k, &ok);
		if (!ok)
			return 0;
		if (tapir_has_byte(x, '\n')) {
			lf = k + tapir_byte_index(x, '\n');
			break;
		}
		k += 8;
	}
	if (lf >= wlen || win[(lf - 1) & (TAPIR_WIN - 1)] != '\r')
		return 0;
	if (q->kind == TP_KIND_REQUEST) {
		/* The last 8 bytes before the CR, all after the method's space (the target starts
		 * at at - 1 + pos), as tapir_http_start_line() checks its rolling tail. */
		if (lf < at + q->pos + 9)
			return 0;
		o = lf - 9;
		TAPIR_OPAQUE(o);
		o &= TAPIR_WIN - 1;
		if (o > TAPIR_WIN - 8)
			return 0;
		x = TAPIR_LOAD64(&win[o]);
		if ((x & TP_MASK(7)) != TP_W_HTTP1_ || (x >> 56) == '\r')
			return 0;
		if ((x >> 56) == '0')
			q->flags |= TP_F_HTTP10;
		q->remaining = 0;
	}
	q->flags |= TP_F_LINE_OK;
	q->state = TP_HDR_START;
	q->pos = 0;

	/* Each header line, a word at a time to its LF, to the empty line. */
	ls = lf + 1;
	k = ls;
	for (i = 0; i < TP_HEAD_STEPS; i++) {
		/* No-ops (both stay under 2 * TAPIR_WIN) that make every path into an iteration
		 * look alike to the verifier, as in tapir_http_skip_window(). */
		TAPIR_OPAQUE(k);
		TAPIR_OPAQUE(ls);
		k &= TAPIR_WIN * 2 - 1;
		ls &= TAPIR_WIN * 2 - 1;
		x = tapir_http_word(win, wlen, k, &ok);
		if (!ok || ls > k)
			return 0;
		if (!tapir_has_byte(x, '\n')) {
			k += 8;
			continue;
		}
		lf = k + tapir_byte_index(x, '\n');
		if (lf >= wlen || lf < ls + 1 || win[(lf - 1) & (TAPIR_WIN - 1)] != '\r')
			return 0; /* a bare LF, or past the window */
		n = lf - ls;
		if (n == 1) {
			/* The empty line: the head is whole. */
			q->hdr_bytes = p->hdr_bytes + (lf + 1 - at);
			*ev = tapir_http_headers_done(q);
			*p = *q;
			return lf + 1 - at;
		}
		if (win[ls & (TAPIR_WIN - 1)] == '\r')
			return 0; /* CRs before the LF: byte by byte */
		/* A line too short to name a header read here and a colon, or one naming a header
		 * tapir does not read, is skipped (hdr and pos clear, as feeding it would leave
		 * them); any other goes to tapir_http_head_line(). */
		cls = TP_NAME_SKIP;
		if (n >= 11) {
			if (!tapir_http_load16(win, ls, &x, &x1))
				return 0;
			cls = tapir_http_name_class(x, x1);
		}
		if (cls == TP_NAME_SKIP) {
			q->hdr = 0;
			q->pos = 0;
		} else if (!TAPIR_HEAD_LINE(q, (const struct tapir_http_win *)win, ls, n, cls)) {
			return 0;
		}
		ls = lf + 1;
		k = ls;
	}
	return 0;
}

#endif /* TAPIR_HTTP_PARSE_H */
