// SPDX-License-Identifier: GPL-2.0
/* A scripted stand-in for libnvidia-ml.so.1: the NVML calls tapir makes, answered from a text file. */

/*
 * The file named by TAPIR_FAKE_NVML is read again on every nvmlDeviceGet* call, so a test
 * can change the node between two collects. One item per line, '#' starts a comment:
 *
 *   device <index> <uuid> [util=<pct>|util=na] [procutil=na]
 *   proc <device> pid=<pid> (mem_mib=<MiB>|mem=<bytes>|mem=na) [sm=<pct> [ts=<us>]]
 *   sample <device> pid=<pid> sm=<pct> ts=<us>
 *   undercount <device> <n>
 *
 * A proc with sm= has one utilisation sample stamped now (or at ts=); sample lines add more.
 * util=na and procutil=na make those queries answer NOT_SUPPORTED. undercount makes the
 * INSUFFICIENT_SIZE answers of that device report n fewer entries than needed (but still
 * more than offered), as when processes start between the sizing call and the retry.
 * Device indexes must run from 0 without gaps; a handle whose device has left the file
 * answers GPU_IS_LOST. Without TAPIR_FAKE_NVML, nvmlInit_v2 fails as on a node whose driver
 * sees no GPU. Not thread-safe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_nvml.h"
#include "nvml_abi.h"

struct nvmlDevice_st {
	unsigned int index;
};

#define MAX_PROCS   1024
#define MAX_SAMPLES 2048
#define NO_TS	    0ULL /* sample stamped at the time of the call */

struct fake_sample {
	unsigned int dev, pid, sm;
	unsigned long long ts;
};

struct fake_proc {
	unsigned int dev, pid;
	unsigned long long mem;
};

struct fake_dev {
	int present;
	char uuid[96];
	int util; /* -1: NOT_SUPPORTED */
	int procutil_na;
	unsigned int undercount;
};

static struct {
	struct fake_dev dev[FAKE_NVML_MAX_DEVS];
	unsigned int n_devs;
	struct fake_proc proc[MAX_PROCS];
	unsigned int n_procs;
	struct fake_sample sample[MAX_SAMPLES];
	unsigned int n_samples;
} node;

static struct fake_nvml_stats stats;
static struct nvmlDevice_st handles[FAKE_NVML_MAX_DEVS];

struct fake_nvml_stats *fake_nvml_stats(void)
{
	return &stats;
}

static int parse_uint(const char *s, const char *key, unsigned long long *v)
{
	size_t n = strlen(key);
	char *end;

	if (strncmp(s, key, n) || s[n] != '=')
		return 0;
	*v = strtoull(s + n + 1, &end, 10);
	return *end == '\0' && end != s + n + 1;
}

static int parse_proc(char **tok, int ntok, unsigned int dev)
{
	struct fake_proc *p = &node.proc[node.n_procs];
	unsigned long long v, sm = ~0ULL, ts = NO_TS;
	int i, have_pid = 0, have_mem = 0;

	if (node.n_procs == MAX_PROCS)
		return -1;
	p->dev = dev;
	for (i = 2; i < ntok; i++) {
		if (parse_uint(tok[i], "pid", &v))
			p->pid = v, have_pid = 1;
		else if (parse_uint(tok[i], "mem_mib", &v))
			p->mem = v << 20, have_mem = 1;
		else if (parse_uint(tok[i], "mem", &v))
			p->mem = v, have_mem = 1;
		else if (!strcmp(tok[i], "mem=na"))
			p->mem = ~0ULL, have_mem = 1;
		else if (parse_uint(tok[i], "sm", &v))
			sm = v;
		else if (parse_uint(tok[i], "ts", &v))
			ts = v;
		else
			return -1;
	}
	if (!have_pid || !have_mem)
		return -1;
	node.n_procs++;
	if (sm == ~0ULL)
		return 0;
	if (node.n_samples == MAX_SAMPLES)
		return -1;
	node.sample[node.n_samples++] = (struct fake_sample){ dev, p->pid, sm, ts };
	return 0;
}

static int parse_sample(char **tok, int ntok, unsigned int dev)
{
	struct fake_sample s = { .dev = dev };
	unsigned long long v;
	int i, have = 0;

	for (i = 2; i < ntok; i++) {
		if (parse_uint(tok[i], "pid", &v))
			s.pid = v, have |= 1;
		else if (parse_uint(tok[i], "sm", &v))
			s.sm = v, have |= 2;
		else if (parse_uint(tok[i], "ts", &v))
			s.ts = v, have |= 4;
		else
			return -1;
	}
	if (have != 7 || node.n_samples == MAX_SAMPLES)
		return -1;
	node.sample[node.n_samples++] = s;
	return 0;
}

static int parse_device(char **tok, int ntok, unsigned int idx)
{
	struct fake_dev *d = &node.dev[idx];
	unsigned long long v;
	int i;

	if (ntok < 3 || d->present || strlen(tok[2]) >= sizeof(d->uuid))
		return -1;
	d->present = 1;
	strcpy(d->uuid, tok[2]);
	d->util = -1;
	for (i = 3; i < ntok; i++) {
		if (parse_uint(tok[i], "util", &v))
			d->util = v;
		else if (!strcmp(tok[i], "util=na"))
			d->util = -1;
		else if (!strcmp(tok[i], "procutil=na"))
			d->procutil_na = 1;
		else
			return -1;
	}
	if (idx >= node.n_devs)
		node.n_devs = idx + 1;
	return 0;
}

static int parse_line(char *line)
{
	char *tok[16], *save = NULL, *t, *end;
	unsigned long dev, n;
	int ntok = 0;

	line[strcspn(line, "#\n")] = '\0';
	for (t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (ntok == 16)
			return -1;
		tok[ntok++] = t;
	}
	if (!ntok)
		return 0;
	if (ntok < 2)
		return -1;
	dev = strtoul(tok[1], &end, 10);
	if (*end || dev >= FAKE_NVML_MAX_DEVS)
		return -1;
	if (!strcmp(tok[0], "device"))
		return parse_device(tok, ntok, dev);
	if (!strcmp(tok[0], "proc"))
		return parse_proc(tok, ntok, dev);
	if (!strcmp(tok[0], "sample"))
		return parse_sample(tok, ntok, dev);
	if (!strcmp(tok[0], "undercount") && ntok == 3) {
		n = strtoul(tok[2], &end, 10);
		if (*end)
			return -1;
		node.dev[dev].undercount = n;
		return 0;
	}
	return -1;
}

/* Read the script again; NVML_SUCCESS, or an error that says why on stderr. */
static nvmlReturn_t load(void)
{
	const char *path = getenv("TAPIR_FAKE_NVML");
	char line[512];
	unsigned int i;
	FILE *f;
	int lineno = 0;

	if (!path)
		return NVML_ERROR_DRIVER_NOT_LOADED;
	f = fopen(path, "re");
	if (!f) {
		fprintf(stderr, "fake_nvml: cannot open %s\n", path);
		return NVML_ERROR_UNKNOWN;
	}
	memset(&node, 0, sizeof(node));
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (parse_line(line)) {
			fprintf(stderr, "fake_nvml: %s:%d: bad line\n", path, lineno);
			fclose(f);
			return NVML_ERROR_UNKNOWN;
		}
	}
	fclose(f);
	for (i = 0; i < node.n_devs; i++) {
		if (!node.dev[i].present) {
			fprintf(stderr, "fake_nvml: %s: no device %u\n", path, i);
			return NVML_ERROR_UNKNOWN;
		}
	}
	for (i = 0; i < node.n_procs; i++) {
		if (node.proc[i].dev >= node.n_devs)
			return NVML_ERROR_UNKNOWN;
	}
	return NVML_SUCCESS;
}

/* Reload, then check that @dev still names a device; its index in @idx. */
static nvmlReturn_t load_dev(nvmlDevice_t dev, unsigned int *idx)
{
	nvmlReturn_t ret;

	if (stats.live <= 0)
		return NVML_ERROR_UNINITIALIZED;
	if (dev < handles || dev >= handles + FAKE_NVML_MAX_DEVS)
		return NVML_ERROR_INVALID_ARGUMENT;
	ret = load();
	if (ret)
		return ret;
	*idx = dev->index;
	return *idx < node.n_devs ? NVML_SUCCESS : NVML_ERROR_GPU_IS_LOST;
}

/* The count an INSUFFICIENT_SIZE answer reports: short by undercount, never enough. */
static unsigned int needed(unsigned int dev, unsigned int n, unsigned int offered)
{
	unsigned int r = n > node.dev[dev].undercount ? n - node.dev[dev].undercount : 0;

	stats.insufficient++;
	return r > offered ? r : offered + 1;
}

nvmlReturn_t nvmlInit_v2(void)
{
	nvmlReturn_t ret = load();

	if (ret)
		return ret;
	stats.inits++;
	stats.live++;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void)
{
	if (stats.live <= 0)
		return NVML_ERROR_UNINITIALIZED;
	stats.shutdowns++;
	stats.live--;
	return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t result)
{
	switch (result) {
	case NVML_SUCCESS: return "Success";
	case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
	case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
	case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
	case NVML_ERROR_NOT_FOUND: return "Not Found";
	case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
	case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
	case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
	default: return "Unknown Error";
	}
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
	if (stats.live <= 0)
		return NVML_ERROR_UNINITIALIZED;
	if (!version)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (length < sizeof("fake-1.0"))
		return NVML_ERROR_INSUFFICIENT_SIZE;
	strcpy(version, "fake-1.0");
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count)
{
	nvmlReturn_t ret;

	if (stats.live <= 0)
		return NVML_ERROR_UNINITIALIZED;
	if (!count)
		return NVML_ERROR_INVALID_ARGUMENT;
	ret = load();
	if (ret)
		return ret;
	*count = node.n_devs;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *dev)
{
	nvmlReturn_t ret;

	if (stats.live <= 0)
		return NVML_ERROR_UNINITIALIZED;
	ret = load();
	if (ret)
		return ret;
	if (!dev || index >= node.n_devs)
		return NVML_ERROR_INVALID_ARGUMENT;
	handles[index].index = index;
	*dev = &handles[index];
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned int length)
{
	unsigned int i;
	nvmlReturn_t ret = load_dev(dev, &i);

	if (ret)
		return ret;
	if (!uuid)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (length < strlen(node.dev[i].uuid) + 1)
		return NVML_ERROR_INSUFFICIENT_SIZE;
	strcpy(uuid, node.dev[i].uuid);
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *util)
{
	unsigned int i;
	nvmlReturn_t ret = load_dev(dev, &i);

	if (ret)
		return ret;
	if (!util)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (node.dev[i].util < 0)
		return NVML_ERROR_NOT_SUPPORTED;
	util->gpu = node.dev[i].util;
	util->memory = 0;
	return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t dev, unsigned int *count,
						     nvmlProcessInfo_t *infos)
{
	unsigned int i, k, n = 0;
	nvmlReturn_t ret = load_dev(dev, &i);

	stats.proc_calls++;
	if (ret)
		return ret;
	if (!count || (*count && !infos))
		return NVML_ERROR_INVALID_ARGUMENT;
	for (k = 0; k < node.n_procs; k++)
		n += node.proc[k].dev == i;
	if (*count < n) {
		*count = needed(i, n, *count);
		return NVML_ERROR_INSUFFICIENT_SIZE;
	}
	n = 0;
	for (k = 0; k < node.n_procs; k++) {
		if (node.proc[k].dev != i)
			continue;
		infos[n++] = (nvmlProcessInfo_t){ .pid = node.proc[k].pid,
						  .usedGpuMemory = node.proc[k].mem,
						  .gpuInstanceId = 0xffffffff,
						  .computeInstanceId = 0xffffffff };
	}
	*count = n;
	return NVML_SUCCESS;
}

static unsigned long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t dev,
					     nvmlProcessUtilizationSample_t *samples,
					     unsigned int *count, unsigned long long last_seen)
{
	unsigned long long now = now_us(), ts;
	unsigned int i, k, n = 0;
	nvmlReturn_t ret = load_dev(dev, &i);

	stats.util_calls++;
	if (ret)
		return ret;
	if (!count)
		return NVML_ERROR_INVALID_ARGUMENT;
	if (node.dev[i].procutil_na)
		return NVML_ERROR_NOT_SUPPORTED;
	stats.last_seen[i] = last_seen;
	for (k = 0; k < node.n_samples; k++) {
		ts = node.sample[k].ts == NO_TS ? now : node.sample[k].ts;
		n += node.sample[k].dev == i && ts > last_seen;
	}
	if (!n) {
		*count = 0;
		return NVML_ERROR_NOT_FOUND;
	}
	if (!samples || *count < n) {
		*count = needed(i, n, samples ? *count : 0);
		return NVML_ERROR_INSUFFICIENT_SIZE;
	}
	n = 0;
	for (k = 0; k < node.n_samples; k++) {
		ts = node.sample[k].ts == NO_TS ? now : node.sample[k].ts;
		if (node.sample[k].dev != i || ts <= last_seen)
			continue;
		samples[n++] = (nvmlProcessUtilizationSample_t){ .pid = node.sample[k].pid,
								 .timeStamp = ts,
								 .smUtil = node.sample[k].sm };
	}
	*count = n;
	return NVML_SUCCESS;
}
