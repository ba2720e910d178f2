// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the web settings (`web:` and --web-config) and for basic auth with bcrypt. */
#include <crypt.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"
#include "config.h"

#define NAME "web.yml"

/* A real bcrypt hash of @pass at the lowest cost, from libcrypt. */
static char *bcrypt(const char *pass)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	char *out;

	assert_non_null(cd);
	assert_non_null(crypt_gensalt_rn("$2b$", 4, NULL, 0, salt, sizeof(salt)));
	out = strdup(crypt_rn(pass, salt, cd, sizeof(*cd)));
	free(cd);
	assert_int_equal(strlen(out), 60);
	return out;
}

static void parse_ok(const char *text, struct tapir_web *w)
{
	char err[512] = "";

	if (tapir_web__parse(NAME, text, strlen(text), w, err, sizeof(err)))
		fail_msg("unexpected error: %s\n--- input ---\n%s", err, text);
}

static void expect_error(const char *text, int line, const char *reason)
{
	char err[512] = "", prefix[64];
	struct tapir_web w;

	if (tapir_web__parse(NAME, text, strlen(text), &w, err, sizeof(err)) != -EINVAL)
		fail_msg("want -EINVAL for:\n%s", text);
	snprintf(prefix, sizeof(prefix), NAME ":%d: ", line);
	if (strncmp(err, prefix, strlen(prefix)) || !strstr(err, reason))
		fail_msg("want \"%s...%s\", got \"%s\"", prefix, reason, err);
	assert_null(w.users);
	assert_null(w.cert_file);
}

static void test_defaults(void **state)
{
	struct tapir_web w;

	parse_ok("", &w);
	assert_null(w.cert_file);
	assert_int_equal(w.n_users, 0);
	assert_int_equal(w.max_requests, 16);
	assert_int_equal(w.max_connections, 64);
	assert_int_equal(w.header_timeout_s, 10);
	assert_int_equal(w.idle_timeout_s, 30);
	assert_int_equal(w.min_tls, 12);
	assert_string_equal(w.source, NAME);
	tapir_web__clear(&w);
}

static void test_full(void **state)
{
	char *h1 = bcrypt("one"), *h2 = bcrypt("two"), text[1024];
	struct tapir_web w;

	snprintf(text, sizeof(text),
		 "tls_server_config:\n"
		 "  cert_file: /etc/tapir/tls.crt\n"
		 "  key_file: /etc/tapir/tls.key\n"
		 "  client_ca_file: /etc/tapir/ca.crt\n"
		 "  client_auth_type: VerifyClientCertIfGiven\n"
		 "  min_version: TLS13\n"
		 "basic_auth_users:\n"
		 "  prometheus: '%s'\n"
		 "  \"ops team\": %s\n"
		 "max_requests: 4\n"
		 "max_connections: 128\n"
		 "header_timeout_s: 5\n"
		 "idle_timeout_s: 60\n",
		 h1, h2);
	parse_ok(text, &w);
	assert_string_equal(w.cert_file, "/etc/tapir/tls.crt");
	assert_int_equal(w.cert_line, 2);
	assert_string_equal(w.key_file, "/etc/tapir/tls.key");
	assert_int_equal(w.key_line, 3);
	assert_string_equal(w.client_ca_file, "/etc/tapir/ca.crt");
	assert_int_equal(w.ca_line, 4);
	assert_int_equal(w.client_auth, TAPIR_CLIENT_AUTH_IF_GIVEN);
	assert_int_equal(w.min_tls, 13);
	assert_int_equal(w.n_users, 2);
	assert_string_equal(w.users[0].name, "prometheus");
	assert_string_equal(w.users[0].hash, h1);
	assert_string_equal(w.users[1].name, "ops team");
	assert_string_equal(w.users[1].hash, h2);
	assert_int_equal(w.max_requests, 4);
	assert_int_equal(w.max_connections, 128);
	assert_int_equal(w.header_timeout_s, 5);
	assert_int_equal(w.idle_timeout_s, 60);
	tapir_web__clear(&w);
	free(h1);
	free(h2);
}

static void test_client_ca_defaults_to_require(void **state)
{
	struct tapir_web w;

	parse_ok("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n", &w);
	assert_int_equal(w.client_auth, TAPIR_CLIENT_AUTH_REQUIRE);
	tapir_web__clear(&w);
}

static void test_web_section_of_the_config(void **state)
{
	const char *text = "listen: 127.0.0.1:1\nweb:\n  max_requests: 3\n";
	struct tapir_config *cfg = NULL;
	char err[512];

	assert_int_equal(
		tapir_config__parse("tapir.yaml", text, strlen(text), &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg->web.max_requests, 3);
	assert_int_equal(cfg->web.line, 3);
	assert_string_equal(cfg->web.source, "tapir.yaml");
	tapir_config__free(cfg);
	text = "web:\n  max_requests: many\n";
	assert_int_equal(
		tapir_config__parse("tapir.yaml", text, strlen(text), &cfg, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "tapir.yaml:2: max_requests: \"many\" is not a whole number"));
}

static void test_errors(void **state)
{
	expect_error("- a\n", 1, "the top level must be a mapping");
	expect_error("cipher_suites: [a]\n", 1, "unknown key \"cipher_suites\"");
	expect_error("tls_server_config:\n  cert_file: c\n", 2,
		     "needs both cert_file and key_file");
	expect_error("tls_server_config:\n  key_file: k\n", 2, "needs both cert_file and key_file");
	expect_error("tls_server_config:\n  min_version: TLS13\n", 2, "need TLS");
	expect_error("tls_server_config:\n  cert_file: ''\n  key_file: k\n", 2, "must name a file");
	expect_error("tls_server_config:\n  cert_file: c\n  key_file: k\n"
		     "  client_auth_type: RequireAndVerifyClientCert\n",
		     4, "needs client_ca_file");
	expect_error("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n"
		     "  client_auth_type: NoClientCert\n",
		     5, "NoClientCert with a client_ca_file");
	expect_error("tls_server_config:\n  cert_file: c\n  key_file: k\n"
		     "  client_auth_type: RequestClientCert\n",
		     4, "client_auth_type must be");
	expect_error("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS11\n", 4,
		     "min_version must be TLS12 or TLS13");
	expect_error("basic_auth_users: [a]\n", 1, "must be a mapping");
	expect_error("basic_auth_users:\n  u: plaintext\n", 2, "not a bcrypt hash");
	expect_error("basic_auth_users:\n  u: '$6$salt$abcdefgh'\n", 2, "not a bcrypt hash");
	/* Cut short: libcrypt's own salt check alone would take it. */
	expect_error("basic_auth_users:\n  u: '$2y$10$abcdefghijklmnopqrstuv'\n", 2,
		     "not a bcrypt hash");
	expect_error("basic_auth_users:\n  'a:b': x\n", 2, "without ':'");
	expect_error("basic_auth_users:\n  '': x\n", 2, "non-empty");
	expect_error("max_requests: 0\n", 1, "max_requests must be in 1..1024");
	expect_error("max_connections: 2\n", 1, "max_connections must be in 4..4096");
	expect_error("header_timeout_s: 0\n", 1, "header_timeout_s must be in 1..3600");
	expect_error("idle_timeout_s: -1\n", 1, "is not a whole number");
}

static void test_duplicate_user(void **state)
{
	char *h = bcrypt("x"), text[512];

	snprintf(text, sizeof(text), "basic_auth_users:\n  u: '%s'\n  u: '%s'\n", h, h);
	expect_error(text, 3, "given twice");
	free(h);
}

static void test_load_missing_file(void **state)
{
	struct tapir_web w;
	char err[512];

	assert_int_equal(tapir_web__load("/nonexistent/web.yml", &w, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/web.yml: No such file"));
}

static struct tapir_auth *auth_for(const char *user, const char *pass)
{
	struct tapir_web w;
	struct tapir_web_user u = { (char *)user, bcrypt(pass) };
	struct tapir_auth *a;

	tapir_web__init(&w);
	w.users = &u;
	w.n_users = 1;
	a = tapir_auth__new(&w);
	free(u.hash);
	assert_non_null(a);
	return a;
}

static void test_auth_checks_bcrypt(void **state)
{
	struct tapir_auth *a = auth_for("prom", "s3cret");
	uint64_t t = 1000;

	assert_true(tapir_auth__enabled(a));
	assert_int_equal(tapir_auth__check(a, "prom", "s3cret", t), TAPIR_AUTH_OK);
	assert_int_equal(tapir_auth__check(a, "prom", "s3cret", t), TAPIR_AUTH_OK);
	assert_int_equal(tapir_auth__check(a, "prom", "s3cre", t), TAPIR_AUTH_DENIED);
	assert_int_equal(tapir_auth__check(a, "prom", "s3cret ", t), TAPIR_AUTH_DENIED);
	assert_int_equal(tapir_auth__check(a, "other", "s3cret", t), TAPIR_AUTH_DENIED);
	assert_int_equal(tapir_auth__check(a, "prom", "", t), TAPIR_AUTH_DENIED);
	assert_int_equal(tapir_auth__check(a, NULL, NULL, t), TAPIR_AUTH_DENIED);
	assert_int_equal(tapir_auth__check(a, "prom", NULL, t), TAPIR_AUTH_DENIED);
	tapir_auth__free(a);
}

/* A flood of wrong passwords is throttled; the password that verified before still passes. */
static void test_auth_throttles_unknown_credentials(void **state)
{
	struct tapir_auth *a = auth_for("prom", "good");
	uint64_t t = 5000;
	int i, denied = 0, throttled = 0;

	assert_int_equal(tapir_auth__check(a, "prom", "good", t), TAPIR_AUTH_OK);
	for (i = 0; i < 30; i++) {
		enum tapir_auth_result r = tapir_auth__check(a, "prom", "bad", t);

		denied += r == TAPIR_AUTH_DENIED;
		throttled += r == TAPIR_AUTH_THROTTLED;
	}
	assert_int_equal(denied + throttled, 30);
	assert_int_equal(denied, 9); /* a burst of 10 checks, one spent on the good password */
	assert_int_equal(tapir_auth__check(a, "prom", "good", t), TAPIR_AUTH_OK);
	/* A second later, 10 more checks. */
	assert_int_equal(tapir_auth__check(a, "prom", "bad", t + 1000), TAPIR_AUTH_DENIED);
	tapir_auth__free(a);
}

static void test_auth_without_users_lets_everyone_in(void **state)
{
	struct tapir_web w;
	struct tapir_auth *a;

	tapir_web__init(&w);
	a = tapir_auth__new(&w);
	assert_non_null(a);
	assert_false(tapir_auth__enabled(a));
	assert_int_equal(tapir_auth__check(a, NULL, NULL, 0), TAPIR_AUTH_OK);
	tapir_auth__free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_client_ca_defaults_to_require),
		cmocka_unit_test(test_web_section_of_the_config),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_duplicate_user),
		cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test(test_auth_checks_bcrypt),
		cmocka_unit_test(test_auth_throttles_unknown_credentials),
		cmocka_unit_test(test_auth_without_users_lets_everyone_in),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
