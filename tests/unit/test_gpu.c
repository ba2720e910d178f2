// SPDX-License-Identifier: GPL-2.0
/* Unit tests for the NVML reader, through the real dlopen path into the scripted fake NVML. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gpu.h"
#include "log.h"
#include "../fake_nvml/fake_nvml.h"

static char lib_path[PATH_MAX];
static char script_path[PATH_MAX];
static void *fake_lib; /* our own reference, so the counters outlive each tapir_gpu */
static struct fake_nvml_stats *stats;

struct snap {
	const struct tapir_gpu_proc *procs;
	size_t n_procs;
	const struct tapir_gpu_device *devs;
	size_t n_devs;
};

/* The fake sits next to this binary, wherever the test is run from. */
static int group_setup(void **state)
{
	char exe[PATH_MAX];
	fake_nvml_stats_fn get_stats;
	ssize_t n;
	char *slash;
	int fd;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	if ((size_t)snprintf(lib_path, sizeof(lib_path), "%s/libnvidia-ml.so.1", exe) >=
	    sizeof(lib_path))
		return -1;
	fake_lib = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
	if (!fake_lib) {
		fprintf(stderr, "cannot load %s: %s\n", lib_path, dlerror());
		return -1;
	}
	get_stats = (fake_nvml_stats_fn)dlsym(fake_lib, FAKE_NVML_STATS_SYM);
	if (!get_stats)
		return -1;
	stats = get_stats();
	snprintf(script_path, sizeof(script_path), "%s/tapir-fake-nvml.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(script_path);
	if (fd < 0)
		return -1;
	close(fd);
	tapir_log_set_level(TAPIR_LOG_WARN);
	return 0;
}

static int group_teardown(void **state)
{
	if (script_path[0])
		unlink(script_path);
	if (fake_lib)
		dlclose(fake_lib);
	return 0;
}

static int setup(void **state)
{
	setenv("TAPIR_FAKE_NVML", script_path, 1);
	memset(stats, 0, sizeof(*stats));
	return 0;
}

static void script(const char *text)
{
	FILE *f = fopen(script_path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static struct tapir_gpu *open_fake(void)
{
	struct tapir_gpu *g = tapir_gpu__new(lib_path);

	assert_non_null(g);
	return g;
}

static void collect(struct tapir_gpu *g, struct snap *s)
{
	assert_int_equal(tapir_gpu__collect(g, &s->procs, &s->n_procs, &s->devs, &s->n_devs), 0);
}

static const struct tapir_gpu_proc *find(const struct snap *s, unsigned int gpu, unsigned int pid)
{
	size_t i;

	for (i = 0; i < s->n_procs; i++) {
		if (s->procs[i].gpu_index == gpu && s->procs[i].pid == pid)
			return &s->procs[i];
	}
	return NULL;
}

static void check_proc(const struct snap *s, unsigned int gpu, const char *uuid, unsigned int pid,
		       double mem_mib, double util_pct)
{
	const struct tapir_gpu_proc *p = find(s, gpu, pid);

	if (!p)
		fail_msg("no process %u on GPU %u", pid, gpu);
	assert_string_equal(p->gpu_uuid, uuid);
	assert_true(p->mem_mib == mem_mib);
	assert_true(p->util_pct == util_pct);
}

static void check_dev(const struct snap *s, size_t i, unsigned int index, const char *uuid,
		      double util_pct)
{
	assert_true(i < s->n_devs);
	assert_int_equal(s->devs[i].index, index);
	assert_string_equal(s->devs[i].uuid, uuid);
	assert_true(s->devs[i].util_pct == util_pct);
}

static FILE *capture_file;
static int capture_saved = -1;

/* Send stderr, where the logger writes, to a file until capture_end(). */
static void capture_begin(enum tapir_log_level level)
{
	capture_file = tmpfile();
	assert_non_null(capture_file);
	fflush(stderr);
	capture_saved = dup(2);
	assert_true(capture_saved >= 0);
	assert_true(dup2(fileno(capture_file), 2) >= 0);
	tapir_log_set_level(level);
}

static void capture_end(char *log, size_t len)
{
	size_t n;

	tapir_log_set_level(TAPIR_LOG_WARN);
	fflush(stderr);
	dup2(capture_saved, 2);
	close(capture_saved);
	rewind(capture_file);
	n = fread(log, 1, len - 1, capture_file);
	log[n] = '\0';
	fclose(capture_file);
}

/* Run tapir_gpu__new with everything it logs captured. */
static struct tapir_gpu *new_logged(const char *path, int *err, char *log, size_t len)
{
	struct tapir_gpu *g;

	capture_begin(TAPIR_LOG_DEBUG);
	errno = 0;
	g = tapir_gpu__new(path);
	*err = errno;
	capture_end(log, len);
	return g;
}

static unsigned int count_lines(const char *log, const char *needle)
{
	unsigned int n = 0;
	const char *line = log, *nl;
	char buf[1024];

	for (; *line; line = nl + 1) {
		nl = strchrnul(line, '\n');
		snprintf(buf, sizeof(buf), "%.*s", (int)(nl - line), line);
		n += strstr(buf, needle) != NULL;
		if (!*nl)
			break;
	}
	return n;
}

static void test_two_devices(void **state)
{
	struct tapir_gpu *g;
	struct snap s;

	script("# two GPUs, one pid on both\n"
	       "device 0 GPU-1111-aaaa util=37\n"
	       "device 1 GPU-2222-bbbb util=80\n"
	       "proc 0 pid=1234 mem_mib=2048 sm=55\n"
	       "proc 0 pid=1300 mem=1572864 sm=5\n"
	       "proc 0 pid=1400 mem_mib=100\n"
	       "proc 1 pid=2000 mem_mib=40960 sm=99\n"
	       "proc 1 pid=1234 mem_mib=512 sm=12\n"
	       "proc 1 pid=2100 mem=na sm=0\n"
	       "# one process in two MIG instances of GPU 0\n"
	       "proc 0 pid=1500 mem_mib=256\n"
	       "proc 0 pid=1500 mem_mib=768 sm=9\n");
	g = open_fake();
	collect(g, &s);
	assert_int_equal(s.n_devs, 2);
	check_dev(&s, 0, 0, "GPU-1111-aaaa", 37);
	check_dev(&s, 1, 1, "GPU-2222-bbbb", 80);
	assert_int_equal(s.n_procs, 7);
	check_proc(&s, 0, "GPU-1111-aaaa", 1500, 1024, 9);
	check_proc(&s, 0, "GPU-1111-aaaa", 1234, 2048, 55);
	check_proc(&s, 0, "GPU-1111-aaaa", 1300, 1.5, 5);
	check_proc(&s, 0, "GPU-1111-aaaa", 1400, 100, -1); /* no sample: unknown */
	check_proc(&s, 1, "GPU-2222-bbbb", 2000, 40960, 99);
	check_proc(&s, 1, "GPU-2222-bbbb", 1234, 512, 12);
	check_proc(&s, 1, "GPU-2222-bbbb", 2100, -1, 0);
	/* Figures stay put when nothing changed but time. */
	collect(g, &s);
	assert_int_equal(s.n_procs, 7);
	check_proc(&s, 0, "GPU-1111-aaaa", 1234, 2048, 55);
	check_proc(&s, 1, "GPU-2222-bbbb", 2000, 40960, 99);
	assert_int_equal(stats->live, 1);
	tapir_gpu__free(g);
	assert_int_equal(stats->live, 0);
	assert_int_equal(stats->shutdowns, 1);
}

static void test_newest_sample_since_last_collect(void **state)
{
	char log[4096];
	struct tapir_gpu *g;
	struct snap s;

	script("device 0 GPU-1111-aaaa util=10\n"
	       "proc 0 pid=10 mem_mib=1 sm=20 ts=1000\n"
	       "sample 0 pid=10 sm=70 ts=3000\n"
	       "sample 0 pid=10 sm=40 ts=2000\n"
	       "sample 0 pid=999 sm=50 ts=3500\n"); /* not a listed compute process */
	g = open_fake();
	collect(g, &s);
	assert_int_equal(s.n_procs, 1);
	check_proc(&s, 0, "GPU-1111-aaaa", 10, 1, 70);
	assert_int_equal(stats->last_seen[0], 0);

	/* Nothing newer than what the last collect saw: unknown, not stale, and no error. */
	capture_begin(TAPIR_LOG_DEBUG);
	collect(g, &s);
	capture_end(log, sizeof(log));
	assert_int_equal(stats->last_seen[0], 3500);
	check_proc(&s, 0, "GPU-1111-aaaa", 10, 1, -1);
	assert_string_equal(log, "");

	script("device 0 GPU-1111-aaaa util=10\n"
	       "proc 0 pid=10 mem_mib=1 sm=20 ts=1000\n"
	       "sample 0 pid=10 sm=70 ts=3000\n"
	       "sample 0 pid=10 sm=15 ts=4000\n");
	collect(g, &s);
	check_proc(&s, 0, "GPU-1111-aaaa", 10, 1, 15);
	collect(g, &s);
	assert_int_equal(stats->last_seen[0], 4000);
	tapir_gpu__free(g);
}

static void test_processes_come_and_go(void **state)
{
	struct tapir_gpu *g;
	struct snap s;

	script("device 0 GPU-1111-aaaa util=50\n"
	       "proc 0 pid=100 mem_mib=1000 sm=30\n"
	       "proc 0 pid=200 mem_mib=2000 sm=40\n");
	g = open_fake();
	collect(g, &s);
	assert_int_equal(s.n_procs, 2);
	check_proc(&s, 0, "GPU-1111-aaaa", 100, 1000, 30);
	check_proc(&s, 0, "GPU-1111-aaaa", 200, 2000, 40);

	script("device 0 GPU-1111-aaaa util=65\n"
	       "proc 0 pid=200 mem_mib=2500 sm=45\n"
	       "proc 0 pid=300 mem_mib=300 sm=20\n");
	collect(g, &s);
	check_dev(&s, 0, 0, "GPU-1111-aaaa", 65);
	assert_int_equal(s.n_procs, 2);
	assert_null(find(&s, 0, 100));
	check_proc(&s, 0, "GPU-1111-aaaa", 200, 2500, 45);
	check_proc(&s, 0, "GPU-1111-aaaa", 300, 300, 20);

	script("device 0 GPU-1111-aaaa util=0\n");
	collect(g, &s);
	assert_int_equal(s.n_devs, 1);
	assert_int_equal(s.n_procs, 0);
	check_dev(&s, 0, 0, "GPU-1111-aaaa", 0);
	tapir_gpu__free(g);
}

static void script_many(unsigned int n0, unsigned int undercount)
{
	char *text = NULL;
	size_t len = 0;
	unsigned int i;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	fprintf(f, "device 0 GPU-1111-aaaa util=99\ndevice 1 GPU-2222-bbbb util=1\n");
	fprintf(f, "undercount 0 %u\n", undercount);
	for (i = 0; i < n0; i++)
		fprintf(f, "proc 0 pid=%u mem_mib=%u sm=%u\n", 5000 + i, i + 1, i % 101);
	for (i = 0; i < 3; i++)
		fprintf(f, "proc 1 pid=%u mem_mib=7\n", 9000 + i);
	fclose(f);
	script(text);
	free(text);
}

static void check_many(unsigned int n0, unsigned int proc_calls)
{
	struct tapir_gpu *g = open_fake();
	unsigned int i;
	struct snap s;

	collect(g, &s);
	assert_int_equal(s.n_procs, n0 + 3);
	for (i = 0; i < n0; i++)
		check_proc(&s, 0, "GPU-1111-aaaa", 5000 + i, i + 1, i % 101);
	for (i = 0; i < 3; i++)
		check_proc(&s, 1, "GPU-2222-bbbb", 9000 + i, 7, -1);
	/* Both lists outgrew the first buffers: the retry protocol ran. */
	assert_true(stats->insufficient >= 2);
	assert_int_equal(stats->proc_calls, proc_calls);
	/* The grown buffers serve the next collect in one call per list. */
	stats->insufficient = 0;
	collect(g, &s);
	assert_int_equal(s.n_procs, n0 + 3);
	assert_int_equal(stats->insufficient, 0);
	tapir_gpu__free(g);
}

static void test_more_processes_than_buffer(void **state)
{
	script_many(70, 0);
	check_many(70, 3); /* one retry on GPU 0, none on GPU 1 */
}

/* The list grows between the sizing answer and the retry, more than the headroom covers. */
static void test_list_grows_during_retry(void **state)
{
	script_many(300, 100);
	check_many(300, 4); /* two retries on GPU 0 */
}

static void test_device_lost_and_back(void **state)
{
	const char *both = "device 0 GPU-1111-aaaa util=20\n"
			   "device 1 GPU-2222-bbbb util=30\n"
			   "proc 0 pid=1 mem_mib=10 sm=1\n"
			   "proc 1 pid=2 mem_mib=20 sm=2\n";
	struct tapir_gpu *g;
	struct snap s;

	script(both);
	g = open_fake();
	script("device 0 GPU-1111-aaaa util=20\n"
	       "proc 0 pid=1 mem_mib=10 sm=1\n");
	tapir_log_set_level(TAPIR_LOG_ERROR); /* the warning is expected */
	collect(g, &s);
	tapir_log_set_level(TAPIR_LOG_WARN);
	assert_int_equal(s.n_devs, 2);
	check_dev(&s, 0, 0, "GPU-1111-aaaa", 20);
	check_dev(&s, 1, 1, "GPU-2222-bbbb", -1);
	assert_int_equal(s.n_procs, 1);
	check_proc(&s, 0, "GPU-1111-aaaa", 1, 10, 1);

	script(both);
	tapir_log_set_level(TAPIR_LOG_ERROR);
	collect(g, &s);
	tapir_log_set_level(TAPIR_LOG_WARN);
	check_dev(&s, 1, 1, "GPU-2222-bbbb", 30);
	assert_int_equal(s.n_procs, 2);
	check_proc(&s, 1, "GPU-2222-bbbb", 2, 20, 2);
	tapir_gpu__free(g);
}

static void test_unsupported_queries(void **state)
{
	struct tapir_gpu *g;
	unsigned int calls;
	struct snap s;

	script("device 0 GPU-1111-aaaa util=na procutil=na\n"
	       "proc 0 pid=42 mem_mib=4096 sm=80\n");
	g = open_fake();
	collect(g, &s);
	check_dev(&s, 0, 0, "GPU-1111-aaaa", -1);
	check_proc(&s, 0, "GPU-1111-aaaa", 42, 4096, -1);
	/* NOT_SUPPORTED is a property of the device: not asked again. */
	calls = stats->util_calls;
	collect(g, &s);
	assert_int_equal(stats->util_calls, calls);
	check_proc(&s, 0, "GPU-1111-aaaa", 42, 4096, -1);
	tapir_gpu__free(g);
}

static void check_off(const char *path, const char *why)
{
	char log[4096];
	int err;

	assert_null(new_logged(path, &err, log, sizeof(log)));
	assert_int_equal(err, ENODEV);
	assert_int_equal(count_lines(log, " info: "), 1);
	assert_int_equal(count_lines(log, " info: GPU metrics off: "), 1);
	if (!strstr(log, why))
		fail_msg("log lacks \"%s\": %s", why, log);
	assert_int_equal(count_lines(log, " warn: ") + count_lines(log, " error: "), 0);
	assert_int_equal(stats->live, 0);
}

static void test_no_gpu(void **state)
{
	check_off("/nonexistent/libnvidia-ml.so.1", "cannot load /nonexistent/libnvidia-ml.so.1");

	unsetenv("TAPIR_FAKE_NVML");
	check_off(lib_path, "NVML init failed: Driver Not Loaded");

	setenv("TAPIR_FAKE_NVML", script_path, 1);
	script("# driver loaded, no GPU\n");
	check_off(lib_path, "NVML sees no GPU");
	assert_int_equal(stats->inits, 1);
	assert_int_equal(stats->shutdowns, 1);
}

static void test_api_edges(void **state)
{
	const struct tapir_gpu_device *devs;
	const struct tapir_gpu_proc *procs;
	size_t np, nd;
	char log[4096];
	struct tapir_gpu *g;
	int err;

	tapir_gpu__free(NULL);
	assert_int_equal(tapir_gpu__collect(NULL, &procs, &np, &devs, &nd), -EINVAL);
	script("device 0 GPU-1111-aaaa util=5\n");
	g = new_logged(lib_path, &err, log, sizeof(log));
	assert_non_null(g);
	assert_int_equal(
		count_lines(log, " info: GPU metrics on: 1 GPU(s), NVIDIA driver fake-1.0"), 1);
	assert_int_equal(tapir_gpu__collect(g, NULL, &np, &devs, &nd), -EINVAL);
	tapir_gpu__free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_two_devices, setup),
		cmocka_unit_test_setup(test_newest_sample_since_last_collect, setup),
		cmocka_unit_test_setup(test_processes_come_and_go, setup),
		cmocka_unit_test_setup(test_more_processes_than_buffer, setup),
		cmocka_unit_test_setup(test_list_grows_during_retry, setup),
		cmocka_unit_test_setup(test_device_lost_and_back, setup),
		cmocka_unit_test_setup(test_unsupported_queries, setup),
		cmocka_unit_test_setup(test_no_gpu, setup),
		cmocka_unit_test_setup(test_api_edges, setup),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
