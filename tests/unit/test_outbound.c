// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the outbound families: destinations from outbound.destinations, the server of
 * each connection from its begin and end records, and the series a label set leaves. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "config.h"
#include "outbound.h"
#include "registry.h"

/* First match wins: "api" is above "predict", which names no address. */
static const char rules[] = "outbound:\n"
			    "  destinations:\n"
			    "    - name: api\n"
			    "      address: \"10.0.*\"\n"
			    "      port: 8080\n"
			    "    - name: predict\n"
			    "      path: /v1/predict\n"
			    "    - name: models\n"
			    "      path: /v1/models/\n"
			    "    - name: local6\n"
			    "      address: \"::1\"\n"
			    "    - name: lan\n"
			    "      address: \"192.168.1.*\"\n"
			    "    - name: ula-tls\n"
			    "      address: \"fd00:*\"\n"
			    "      port: 443\n";

struct fixture {
	struct tapir_config *cfg;
	struct tapir_registry *reg;
	struct tapir_outbound *o;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	if (!f)
		return -1;
	*state = f;
	if (tapir_config__parse("test.yaml", rules, strlen(rules), &f->cfg, err, sizeof(err))) {
		fprintf(stderr, "config: %s\n", err);
		return -1;
	}
	f->reg = tapir_registry__new();
	f->o = f->reg ? tapir_outbound__new(f->reg, f->cfg) : NULL;
	return f->o ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tapir_outbound__free(f->o);
	tapir_registry__free(f->reg);
	tapir_config__free(f->cfg);
	free(f);
	return 0;
}

/* A peer as the kernel writes it (peer_of() in bpf/http.bpf.c): IPv4-mapped IPv6 as IPv4. */
static struct tapir_peer_key peer(const char *addr, __u16 port)
{
	struct tapir_peer_key k = { .port = port };

	if (inet_pton(AF_INET, addr, k.addr) == 1) {
		k.family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, addr, k.addr), 1);
		k.family = AF_INET6;
	}
	return k;
}

/* The first TAPIR_LINE_BYTES of request line @s, NUL-padded as a record carries them. */
static const __u8 *line(const char *s)
{
	static __u8 l[TAPIR_LINE_BYTES];

	memset(l, 0, sizeof(l));
	memcpy(l, s, strnlen(s, sizeof(l)));
	return l;
}

static const char *dest(struct fixture *f, const char *addr, __u16 port, const char *req)
{
	struct tapir_peer_key k;

	if (!addr)
		return tapir_outbound__destination(f->o, NULL, line(req));
	k = peer(addr, port);
	return tapir_outbound__destination(f->o, &k, line(req));
}

static void test_destination_address_and_port(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(dest(f, "10.0.3.4", 8080, "GET /x HTTP/1.1\r\n"), "api");
	assert_string_equal(dest(f, "10.0.0.1", 8080, "POST / HTTP/1.1\r\n"), "api");
	assert_string_equal(dest(f, "10.0.3.4", 8081, "GET /x HTTP/1.1\r\n"), "other");
	assert_string_equal(dest(f, "10.1.3.4", 8080, "GET /x HTTP/1.1\r\n"), "other");
	/* A glob on text: "10.0.*" is no prefix of 100.0.0.1. */
	assert_string_equal(dest(f, "100.0.0.1", 8080, "GET /x HTTP/1.1\r\n"), "other");
	assert_string_equal(dest(f, "::1", 5000, "GET /x HTTP/1.1\r\n"), "local6");
	assert_string_equal(dest(f, "::2", 5000, "GET /x HTTP/1.1\r\n"), "other");
	assert_string_equal(dest(f, "fd00::5", 443, "GET /x HTTP/1.1\r\n"), "ula-tls");
	assert_string_equal(dest(f, "fd00::5", 80, "GET /x HTTP/1.1\r\n"), "other");
	assert_string_equal(dest(f, "fd01::5", 443, "GET /x HTTP/1.1\r\n"), "other");
	/* An IPv4 client of a dual-stack socket: the kernel side wrote it as IPv4. */
	assert_string_equal(dest(f, "192.168.1.7", 80, "GET /x HTTP/1.1\r\n"), "lan");
	/* Unmapped, the same peer is text of another family, which an IPv4 glob does not
	 * match: the mapping is the kernel side's to do. */
	assert_string_equal(dest(f, "::ffff:192.168.1.7", 80, "GET /x HTTP/1.1\r\n"), "other");
}

static void test_destination_path_prefix(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(dest(f, "172.16.0.1", 80, "POST /v1/predict HTTP/1.1"), "predict");
	assert_string_equal(dest(f, "172.16.0.1", 80, "POST /v1/predictions HTTP/1.1"), "predict");
	assert_string_equal(dest(f, "172.16.0.1", 80, "GET /v1/predict?x=1 HTTP/1.1"), "predict");
	assert_string_equal(dest(f, "172.16.0.1", 80, "GET /v1/pred HTTP/1.1"), "other");
	assert_string_equal(dest(f, "172.16.0.1", 80, "GET /v2/predict HTTP/1.1"), "other");
	assert_string_equal(dest(f, "172.16.0.1", 80, "GET /?/v1/predict HTTP/1.1"), "other");
	/* The path as far as the first 32 bytes of the line show it. */
	assert_string_equal(dest(f, "172.16.0.1", 80, "POST /v1/models/a-very-long-model/infer"),
			    "models");
	assert_string_equal(dest(f, "172.16.0.1", 80, "GET /v1/models HTTP/1.1"), "other");
	/* First match wins: the address and port rule is above the path rule. */
	assert_string_equal(dest(f, "10.0.3.4", 8080, "POST /v1/predict HTTP/1.1"), "api");
	assert_string_equal(dest(f, "10.0.3.4", 8081, "POST /v1/predict HTTP/1.1"), "predict");
	/* No peer known (its begin was not seen): only rules without address or port match. */
	assert_string_equal(dest(f, NULL, 0, "POST /v1/predict HTTP/1.1"), "predict");
	assert_string_equal(dest(f, NULL, 0, "GET /x HTTP/1.1"), "other");
	assert_string_equal(dest(f, NULL, 0, ""), "other");
}

static void test_no_rules_is_other(void **state)
{
	struct tapir_config *cfg = tapir_config__new_default();
	struct tapir_registry *reg = tapir_registry__new();
	struct tapir_outbound *o = tapir_outbound__new(reg, cfg);
	struct tapir_peer_key k = peer("10.0.3.4", 8080);

	assert_non_null(o);
	assert_string_equal(tapir_outbound__destination(o, &k, line("GET / HTTP/1.1")), "other");
	assert_string_equal(tapir_outbound__destination(o, NULL, line("GET / HTTP/1.1")), "other");
	tapir_outbound__free(o);
	tapir_outbound__free(NULL);
	tapir_registry__free(reg);
	tapir_config__free(cfg);
}

static const char *const set_a[TAPIR_L_COUNT] = { "ma", "model-a", "da", "prod", "stable" };
static const char *const set_b[TAPIR_L_COUNT] = { "mb", "model-b", "db", "", "" };
#define REQ "tapir_outbound_requests_total"
#define DUR "tapir_outbound_request_duration_seconds"
#define A   "model_id=\"ma\",model_name=\"model-a\",deployment_id=\"da\""
#define A_  "environment=\"prod\",rollout_phase=\"stable\""
#define B   "model_id=\"mb\",model_name=\"model-b\",deployment_id=\"db\""
#define B_  "environment=\"\",rollout_phase=\"\""
/* Exposition lines of label set A or B: requests, a duration sample (_count, _sum), a bucket. */
#define REQ_A(code, dest, v) \
	REQ "{" A ",status_code=\"" code "\",destination=\"" dest "\"," A_ "} " v
#define REQ_B(code, dest, v) \
	REQ "{" B ",status_code=\"" code "\",destination=\"" dest "\"," B_ "} " v
#define DUR_A(sfx, dest, v)   DUR sfx "{" A ",destination=\"" dest "\"," A_ "} " v
#define DUR_B(sfx, dest, v)   DUR sfx "{" B ",destination=\"" dest "\"," B_ "} " v
#define BUCKET_A(dest, le, v) DUR "_bucket{" A ",destination=\"" dest "\"," A_ ",le=\"" le "\"} " v

static char *render(struct tapir_registry *reg)
{
	struct tapir_buf b;
	char *text;

	tapir_buf__init(&b);
	assert_int_equal(tapir_registry__render(reg, &b), 0);
	text = strdup(b.data);
	tapir_buf__free(&b);
	return text;
}

/* The exposition's lines that start with @prefix are exactly @want (NULL-terminated), in order. */
static void assert_lines(struct tapir_registry *reg, const char *prefix, const char *const *want)
{
	char *text = render(reg), *save, *p;
	size_t n = strlen(prefix), i = 0;

	for (p = strtok_r(text, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
		if (strncmp(p, prefix, n))
			continue;
		if (!want[i])
			fail_msg("unexpected: %s", p);
		assert_string_equal(p, want[i]);
		i++;
	}
	if (want[i])
		fail_msg("missing: %s", want[i]);
	free(text);
}

#define LINES(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NO_LINES   ((const char *const[]){ NULL })

/* @want is a whole line of the exposition. */
static void assert_has(struct tapir_registry *reg, const char *want)
{
	char *text = render(reg);

	char *at = strstr(text, want);

	if (!at || at[strlen(want)] != '\n' || (at != text && at[-1] != '\n'))
		fail_msg("missing: %s", want);
	free(text);
}

static void conn(struct tapir_outbound *o, __u64 sock, int begin, const char *addr, __u16 port)
{
	struct tapir_conn_out_event e = { .type = TAPIR_REC_CONN_OUT,
					  .begin = begin,
					  .sock = sock };

	if (addr)
		e.peer = peer(addr, port);
	tapir_outbound__conn(o, &e);
}

/* A request of label set @id sent on @sock, answered @status (@outcome) after @ms. */
static void request(struct tapir_outbound *o, uint32_t id, const char *const *labels, __u64 sock,
		    const char *req, __u8 outcome, __u16 status, __u64 ms)
{
	struct tapir_http_event e = {
		.type = TAPIR_REC_HTTP_OUT,
		.labels_id = id,
		.start_ns = 5000000000ULL,
		.end_ns = 5000000000ULL + ms * 1000000,
		.status = status,
		.outcome = outcome,
		.sock = sock,
	};

	memcpy(e.line, line(req), TAPIR_LINE_BYTES);
	tapir_outbound__record(o, &e, id, labels);
}

static void test_record_by_the_connections_server(void **state)
{
	struct fixture *f = *state;
	struct tapir_outbound *o = f->o;

	conn(o, 0x1000, 1, "10.0.0.9", 8080);
	conn(o, 0x2000, 1, "172.16.0.1", 80);
	request(o, 0, set_a, 0x1000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 200);
	request(o, 0, set_a, 0x1000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 300);
	request(o, 0, set_a, 0x1000, "GET /y HTTP/1.1", TAPIR_OUT_COMPLETE, 404, 2);
	request(o, 0, set_a, 0x2000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 500, 20);
	request(o, 0, set_a, 0x2000, "POST /v1/predict HTTP/1.1", TAPIR_OUT_SERVER_ABORT, 200, 40);
	request(o, 0, set_a, 0x2000, "POST /v1/predict HTTP/1.1", TAPIR_OUT_CLIENT_ABORT, 0, 3000);
	assert_lines(f->reg, REQ "{",
		     LINES(REQ_A("200", "api", "2"), REQ_A("404", "api", "1"),
			   REQ_A("500", "other", "1"), REQ_A("502", "predict", "1"),
			   REQ_A("499", "predict", "1")));
	/* One duration series per destination, whatever the status. */
	assert_lines(f->reg, DUR "_count{",
		     LINES(DUR_A("_count", "api", "3"), DUR_A("_count", "other", "1"),
			   DUR_A("_count", "predict", "2")));
	assert_lines(f->reg, DUR "_sum{",
		     LINES(DUR_A("_sum", "api", "0.502"), DUR_A("_sum", "other", "0.02"),
			   DUR_A("_sum", "predict", "3.04")));
	/* 2 ms, 200 ms and 300 ms; 40 ms and 3 s: le is inclusive. */
	assert_has(f->reg, BUCKET_A("api", "0.1", "1"));
	assert_has(f->reg, BUCKET_A("api", "0.25", "2"));
	assert_has(f->reg, BUCKET_A("api", "0.5", "3"));
	assert_has(f->reg, BUCKET_A("api", "+Inf", "3"));
	assert_has(f->reg, BUCKET_A("predict", "0.025", "0"));
	assert_has(f->reg, BUCKET_A("predict", "0.05", "1"));
	assert_has(f->reg, BUCKET_A("predict", "2.5", "1"));
	assert_has(f->reg, BUCKET_A("predict", "5", "2"));
}

static void test_socket_reuse_and_end(void **state)
{
	struct fixture *f = *state;
	struct tapir_outbound *o = f->o;

	/* A socket never seen to begin: no address, so no address rule. */
	request(o, 0, set_a, 0x3000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 1);
	/* The socket's memory serves another connection: the latest begin is its server. */
	conn(o, 0x3000, 1, "172.16.0.1", 80);
	conn(o, 0x3000, 1, "10.0.0.9", 8080);
	request(o, 0, set_a, 0x3000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 1);
	request(o, 0, set_a, 0x3000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 1);
	conn(o, 0x3000, 0, NULL, 0);
	/* Ended: its server is forgotten; a path rule still matches. */
	request(o, 0, set_a, 0x3000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 1);
	request(o, 0, set_a, 0x3000, "GET /v1/predict HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 1);
	/* An end of a socket never begun, and a second end, change nothing. */
	conn(o, 0x4000, 0, NULL, 0);
	conn(o, 0x3000, 0, NULL, 0);
	/* Begun again after its end, on IPv6. */
	conn(o, 0x3000, 1, "::1", 9000);
	request(o, 0, set_a, 0x3000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 1);
	assert_lines(f->reg, REQ "{",
		     LINES(REQ_A("200", "other", "2"), REQ_A("200", "api", "2"),
			   REQ_A("200", "predict", "1"), REQ_A("200", "local6", "1")));
}

static void test_forget_takes_every_series_of_a_label_set(void **state)
{
	struct fixture *f = *state;
	struct tapir_outbound *o = f->o;

	conn(o, 0x1000, 1, "10.0.0.9", 8080);
	conn(o, 0x2000, 1, "172.16.0.1", 80);
	request(o, 0, set_a, 0x1000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 100);
	request(o, 1, set_b, 0x1000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 100);
	request(o, 0, set_a, 0x1000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 404, 100);
	request(o, 0, set_a, 0x2000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 500, 100);
	request(o, 1, set_b, 0x2000, "GET /v1/predict HTTP/1.1", TAPIR_OUT_SERVER_ABORT, 0, 100);
	request(o, 0, set_a, 0x2000, "GET /v1/predict HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 100);
	assert_int_equal(tapir_registry__n_series(f->reg), 6 + 5);

	tapir_outbound__forget(o, 0, set_a);
	assert_lines(f->reg, REQ "{",
		     LINES(REQ_B("200", "api", "1"), REQ_B("502", "predict", "1")));
	assert_lines(f->reg, DUR "_count{",
		     LINES(DUR_B("_count", "api", "1"), DUR_B("_count", "predict", "1")));
	assert_lines(f->reg, DUR "_bucket{" A, NO_LINES);
	assert_lines(f->reg, DUR "_sum{" A, NO_LINES);
	assert_int_equal(tapir_registry__n_series(f->reg), 2 + 2);

	/* Forgetting again, or a set without series, changes nothing. */
	tapir_outbound__forget(o, 0, set_a);
	tapir_outbound__forget(o, 7, set_a);
	tapir_outbound__forget(NULL, 0, set_a);
	assert_int_equal(tapir_registry__n_series(f->reg), 2 + 2);

	/* The set comes back from zero; the other's series go on. */
	request(o, 0, set_a, 0x1000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 100);
	request(o, 1, set_b, 0x1000, "GET /x HTTP/1.1", TAPIR_OUT_COMPLETE, 200, 100);
	assert_lines(f->reg, REQ "{",
		     LINES(REQ_B("200", "api", "2"), REQ_B("502", "predict", "1"),
			   REQ_A("200", "api", "1")));
	assert_lines(f->reg, DUR "_count{",
		     LINES(DUR_B("_count", "api", "2"), DUR_B("_count", "predict", "1"),
			   DUR_A("_count", "api", "1")));

	tapir_outbound__forget(o, 1, set_b);
	tapir_outbound__forget(o, 0, set_a);
	assert_lines(f->reg, "tapir_outbound_", NO_LINES);
	assert_int_equal(tapir_registry__n_series(f->reg), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_destination_address_and_port, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destination_path_prefix, setup, teardown),
		cmocka_unit_test(test_no_rules_is_other),
		cmocka_unit_test_setup_teardown(test_record_by_the_connections_server, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_socket_reuse_and_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_takes_every_series_of_a_label_set,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
