// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the container figures' file reads: cpu.stat, memory.current and memory.stat
 * of a v2 cgroup, a first process from cgroup.procs or below, and a process's v2 cgroup. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "resources.h"

struct dir {
	char path[256];
};

static void put(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));

	if (!d)
		return -1;
	snprintf(d->path, sizeof(d->path), "/tmp/tapir-test-resources-XXXXXX");
	if (!mkdtemp(d->path)) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct dir *d = *state;
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
	if (system(cmd))
		return -1;
	free(d);
	return 0;
}

static void test_usage_v2(void **state)
{
	struct dir *d = *state;
	struct tapir_usage u;

	put(d->path, "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n");
	put(d->path, "memory.current", "1048576\n");
	/* the key past many others, and a longer key that starts the same way first */
	put(d->path, "memory.stat",
	    "anon 8192\nfile 65536\nactive_file 4096\ninactive_file_x 1\ninactive_file 16384\n");
	assert_int_equal(tapir_usage_read(d->path, 0, &u), 0);
	assert_true(u.has_cpu);
	assert_true(u.cpu_seconds == 2.5);
	assert_true(u.has_mem);
	assert_true(u.working_set == 1048576 - 16384);

	/* working set clamps at 0; cpu.stat with usage_usec not first */
	put(d->path, "cpu.stat", "nr_periods 0\nusage_usec 7\n");
	put(d->path, "memory.current", "100\n");
	assert_int_equal(tapir_usage_read(d->path, 0, &u), 0);
	assert_true(u.cpu_seconds == 7e-6);
	assert_true(u.working_set == 0);
}

static void test_usage_missing(void **state)
{
	struct dir *d = *state;
	struct tapir_usage u;

	/* nothing there: no figures */
	assert_int_equal(tapir_usage_read(d->path, 0, &u), -ENOENT);
	assert_false(u.has_cpu);
	assert_false(u.has_mem);
	/* garbage is no figure; memory without memory.stat has no inactive pages */
	put(d->path, "cpu.stat", "usage_usec x\n");
	put(d->path, "memory.current", "4096\n");
	assert_int_equal(tapir_usage_read(d->path, 0, &u), 0);
	assert_false(u.has_cpu);
	assert_true(u.has_mem);
	assert_true(u.working_set == 4096);
	put(d->path, "memory.current", "");
	assert_int_equal(tapir_usage_read(d->path, 0, &u), -ENOENT);
}

static void test_first_pid(void **state)
{
	struct dir *d = *state;
	char sub[512];

	assert_int_equal(tapir_cgroup_first_pid(d->path), 0);
	put(d->path, "cgroup.procs", "");
	snprintf(sub, sizeof(sub), "%s/child", d->path);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(tapir_cgroup_first_pid(d->path), 0);
	put(sub, "cgroup.procs", "77\n78\n");
	assert_int_equal(tapir_cgroup_first_pid(d->path), 77);
	put(d->path, "cgroup.procs", "1234\n5678\n");
	assert_int_equal(tapir_cgroup_first_pid(d->path), 1234);
}

static void test_pid_cgroup2(void **state)
{
	char want[4096] = "", got[4096], line[4096];
	FILE *f = fopen("/proc/self/cgroup", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::", 3))
			snprintf(want, sizeof(want), "%.*s", (int)strcspn(line + 3, "\n"),
				 line + 3);
	fclose(f);
	if (!want[0]) {
		assert_int_equal(tapir_pid_cgroup2(getpid(), got, sizeof(got)), -ENOENT);
		return;
	}
	assert_int_equal(tapir_pid_cgroup2(getpid(), got, sizeof(got)), 0);
	assert_string_equal(got, want);
	assert_true(tapir_pid_cgroup2(-1, got, sizeof(got)) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_usage_v2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_usage_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_pid, setup, teardown),
		cmocka_unit_test(test_pid_cgroup2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
