// SPDX-License-Identifier: GPL-2.0
/* NVML through dlopen: device and per-process GPU figures without a build-time NVIDIA dependency. */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "nvml_abi.h"
#include "log.h"

/* NVML_VALUE_NOT_AVAILABLE, (-1), as it lands in an unsigned long long field. */
#define NVML_MEM_NOT_AVAILABLE (~0ULL)

typedef nvmlReturn_t (*nvmlInit_v2_fn)(void);
typedef nvmlReturn_t (*nvmlShutdown_fn)(void);
typedef const char *(*nvmlErrorString_fn)(nvmlReturn_t result);
typedef nvmlReturn_t (*nvmlSystemGetDriverVersion_fn)(char *version, unsigned int length);
typedef nvmlReturn_t (*nvmlDeviceGetCount_v2_fn)(unsigned int *count);
typedef nvmlReturn_t (*nvmlDeviceGetHandleByIndex_v2_fn)(unsigned int index, nvmlDevice_t *dev);
typedef nvmlReturn_t (*nvmlDeviceGetUUID_fn)(nvmlDevice_t dev, char *uuid, unsigned int length);
typedef nvmlReturn_t (*nvmlDeviceGetComputeRunningProcesses_fn)(nvmlDevice_t dev,
								unsigned int *count,
								nvmlProcessInfo_t *infos);
typedef nvmlReturn_t (*nvmlDeviceGetProcessUtilization_fn)(nvmlDevice_t dev,
							   nvmlProcessUtilizationSample_t *samples,
							   unsigned int *count,
							   unsigned long long last_seen);
typedef nvmlReturn_t (*nvmlDeviceGetUtilizationRates_fn)(nvmlDevice_t dev, nvmlUtilization_t *util);

struct nvml {
	nvmlInit_v2_fn init;
	nvmlShutdown_fn shutdown;
	nvmlDeviceGetCount_v2_fn get_count;
	nvmlDeviceGetHandleByIndex_v2_fn get_handle;
	nvmlErrorString_fn error_string;
	nvmlSystemGetDriverVersion_fn driver_version;
	nvmlDeviceGetUUID_fn get_uuid;
	nvmlDeviceGetComputeRunningProcesses_fn get_procs;
	nvmlDeviceGetProcessUtilization_fn get_proc_util;
	nvmlDeviceGetUtilizationRates_fn get_util;
};

static const struct nvml_sym {
	const char *name;
	size_t off;
	bool required;
} nvml_syms[] = {
	{ "nvmlInit_v2", offsetof(struct nvml, init), true },
	{ "nvmlShutdown", offsetof(struct nvml, shutdown), true },
	{ "nvmlDeviceGetCount_v2", offsetof(struct nvml, get_count), true },
	{ "nvmlDeviceGetHandleByIndex_v2", offsetof(struct nvml, get_handle), true },
	{ "nvmlErrorString", offsetof(struct nvml, error_string), false },
	{ "nvmlSystemGetDriverVersion", offsetof(struct nvml, driver_version), false },
	{ "nvmlDeviceGetUUID", offsetof(struct nvml, get_uuid), false },
	/* Drivers before 510 lack _v3; their _v2 takes the same four-field struct. */
	{ "nvmlDeviceGetComputeRunningProcesses_v3", offsetof(struct nvml, get_procs), false },
	{ "nvmlDeviceGetComputeRunningProcesses_v2", offsetof(struct nvml, get_procs), false },
	{ "nvmlDeviceGetProcessUtilization", offsetof(struct nvml, get_proc_util), false },
	{ "nvmlDeviceGetUtilizationRates", offsetof(struct nvml, get_util), false },
};

/* Queries a device answered NOT_SUPPORTED to: said once at debug, then not asked again. */
#define Q_PROC_UTIL 0x1
#define Q_DEV_UTIL  0x2

struct gpu_dev {
	nvmlDevice_t handle;
	/* Newest sample timestamp seen; NVML's own clock, so no mixing with ours. */
	unsigned long long last_seen;
	unsigned int unsupported; /* Q_* */
	bool failing;		  /* warned about; quiet until it recovers */
};

/* Enough for most nodes in one call; NVML's INSUFFICIENT_SIZE answer grows them. */
#define INITIAL_PROCS	32
#define INITIAL_SAMPLES 64
/* The process list can grow between the sizing answer and the retry. */
#define NVML_TRIES 5

struct tapir_gpu {
	void *lib;
	struct nvml nvml;
	struct gpu_dev *dev;
	struct tapir_gpu_device *pub; /* parallel to dev */
	unsigned int n_devs;
	nvmlProcessInfo_t *infos;
	unsigned int infos_cap;
	nvmlProcessUtilizationSample_t *samples;
	unsigned int samples_cap;
	struct tapir_gpu_proc *procs;
	size_t n_procs, procs_cap;
	char errbuf[32];
};

static const char *nvml_strerror(struct tapir_gpu *g, nvmlReturn_t ret)
{
	const char *s = g->nvml.error_string ? g->nvml.error_string(ret) : NULL;

	if (s)
		return s;
	snprintf(g->errbuf, sizeof(g->errbuf), "NVML error %d", ret);
	return g->errbuf;
}

static int resolve(struct tapir_gpu *g, const char *path)
{
	const struct nvml_sym *s, *end = nvml_syms + sizeof(nvml_syms) / sizeof(nvml_syms[0]);
	void **slot;

	for (s = nvml_syms; s < end; s++) {
		slot = (void **)((char *)&g->nvml + s->off);
		if (*slot)
			continue; /* an older fallback for a symbol already found */
		*slot = dlsym(g->lib, s->name);
		if (*slot)
			continue;
		if (s->required) {
			pr_info("GPU metrics off: %s has no %s", path, s->name);
			return -ENODEV;
		}
		if (s + 1 < end && s[1].off == s->off)
			continue; /* the older name may do */
		pr_debug("gpu: %s has no %s; figures that need it are left out", path, s->name);
	}
	return 0;
}

/* Room for @need elements plus headroom, for a list that may grow before the retry. */
static int reserve(void **buf, unsigned int *cap, unsigned int need, size_t size)
{
	unsigned int n = need > *cap ? need : *cap;
	void *p;

	if (n > 0x100000)
		return -E2BIG;
	n += n / 4 + 8;
	p = realloc(*buf, (size_t)n * size);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static int open_devices(struct tapir_gpu *g)
{
	nvmlDevice_t handle;
	unsigned int count, i, n = 0;
	nvmlReturn_t ret;

	ret = g->nvml.get_count(&count);
	if (ret != NVML_SUCCESS) {
		pr_info("GPU metrics off: NVML cannot count GPUs: %s", nvml_strerror(g, ret));
		return -ENODEV;
	}
	if (!count) {
		pr_info("GPU metrics off: NVML sees no GPU");
		return -ENODEV;
	}
	g->dev = calloc(count, sizeof(*g->dev));
	g->pub = calloc(count, sizeof(*g->pub));
	if (!g->dev || !g->pub)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		ret = g->nvml.get_handle(i, &handle);
		if (ret != NVML_SUCCESS) {
			pr_warn("gpu: GPU %u left out: %s", i, nvml_strerror(g, ret));
			continue;
		}
		g->dev[n].handle = handle;
		g->pub[n].index = i;
		g->pub[n].util_pct = -1;
		ret = g->nvml.get_uuid
			      ? g->nvml.get_uuid(handle, g->pub[n].uuid, sizeof(g->pub[n].uuid))
			      : NVML_ERROR_NOT_SUPPORTED;
		if (ret != NVML_SUCCESS) {
			g->pub[n].uuid[0] = '\0';
			pr_debug("gpu: GPU %u has no UUID: %s", i, nvml_strerror(g, ret));
		}
		n++;
	}
	if (!n) {
		pr_info("GPU metrics off: none of NVML's %u GPUs could be opened", count);
		return -ENODEV;
	}
	g->n_devs = n;
	return 0;
}

struct tapir_gpu *tapir_gpu__new(const char *libpath)
{
	const char *path = libpath ? libpath : "libnvidia-ml.so.1";
	char version[NVML_DRIVER_VERSION_SIZE] = "unknown";
	struct tapir_gpu *g;
	nvmlReturn_t ret;
	int err;

	g = calloc(1, sizeof(*g));
	if (!g) {
		errno = ENOMEM;
		return NULL;
	}
	g->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!g->lib) {
		pr_info("GPU metrics off: cannot load %s: %s", path, dlerror());
		err = -ENODEV;
		goto err_free;
	}
	err = resolve(g, path);
	if (err)
		goto err_close;
	ret = g->nvml.init();
	if (ret != NVML_SUCCESS) {
		pr_info("GPU metrics off: NVML init failed: %s", nvml_strerror(g, ret));
		err = -ENODEV;
		goto err_close;
	}
	err = open_devices(g);
	if (err)
		goto err_shutdown;
	g->infos = calloc(INITIAL_PROCS, sizeof(*g->infos));
	g->samples = calloc(INITIAL_SAMPLES, sizeof(*g->samples));
	if (!g->infos || !g->samples) {
		err = -ENOMEM;
		goto err_shutdown;
	}
	g->infos_cap = INITIAL_PROCS;
	g->samples_cap = INITIAL_SAMPLES;
	if (g->nvml.driver_version && g->nvml.driver_version(version, sizeof(version)))
		strcpy(version, "unknown");
	pr_info("GPU metrics on: %u GPU(s), NVIDIA driver %s", g->n_devs, version);
	return g;

err_shutdown:
	g->nvml.shutdown();
err_close:
	dlclose(g->lib);
err_free:
	free(g->samples);
	free(g->infos);
	free(g->pub);
	free(g->dev);
	free(g);
	errno = -err;
	return NULL;
}

void tapir_gpu__free(struct tapir_gpu *g)
{
	if (!g)
		return;
	g->nvml.shutdown();
	dlclose(g->lib);
	free(g->procs);
	free(g->samples);
	free(g->infos);
	free(g->pub);
	free(g->dev);
	free(g);
}

/*
 * A query failed: a device that stops answering is worth one warning, not one per scrape.
 * NOT_SUPPORTED is a property of the device (MIG, old boards), said once at debug.
 */
static void query_failed(struct tapir_gpu *g, unsigned int i, unsigned int q, const char *what,
			 nvmlReturn_t ret, bool *bad)
{
	struct gpu_dev *d = &g->dev[i];

	if (ret == NVML_ERROR_NOT_SUPPORTED && q) {
		d->unsupported |= q;
		pr_debug("gpu: GPU %u does not support %s", g->pub[i].index, what);
		return;
	}
	*bad = true;
	if (!d->failing)
		pr_warn("gpu: GPU %u: %s failed: %s", g->pub[i].index, what, nvml_strerror(g, ret));
	d->failing = true;
}

/* Fill g->infos; the count, or a negative errno with NVML's answer in @nret. */
static long read_procs(struct tapir_gpu *g, nvmlDevice_t h, nvmlReturn_t *nret)
{
	unsigned int count;
	int tries, err;

	for (tries = 0; tries < NVML_TRIES; tries++) {
		count = g->infos_cap;
		*nret = g->nvml.get_procs(h, &count, g->infos);
		if (*nret == NVML_SUCCESS)
			return count < g->infos_cap ? count : g->infos_cap;
		if (*nret != NVML_ERROR_INSUFFICIENT_SIZE)
			return -EIO;
		err = reserve((void **)&g->infos, &g->infos_cap, count, sizeof(*g->infos));
		if (err)
			return err == -ENOMEM ? err : -EIO;
	}
	return -EIO;
}

/* Fill g->samples with those newer than @last_seen; the count, or a negative errno. */
static long read_samples(struct tapir_gpu *g, nvmlDevice_t h, unsigned long long last_seen,
			 nvmlReturn_t *nret)
{
	unsigned int count;
	int tries, err;

	for (tries = 0; tries < NVML_TRIES; tries++) {
		count = g->samples_cap;
		*nret = g->nvml.get_proc_util(h, g->samples, &count, last_seen);
		if (*nret == NVML_SUCCESS)
			return count < g->samples_cap ? count : g->samples_cap;
		if (*nret == NVML_ERROR_NOT_FOUND)
			return 0; /* no process ran kernels since the last look */
		if (*nret != NVML_ERROR_INSUFFICIENT_SIZE)
			return -EIO;
		err = reserve((void **)&g->samples, &g->samples_cap, count, sizeof(*g->samples));
		if (err)
			return err == -ENOMEM ? err : -EIO;
	}
	return -EIO;
}

static struct tapir_gpu_proc *add_proc(struct tapir_gpu *g, size_t first, unsigned int i,
				       const nvmlProcessInfo_t *info)
{
	double mib = info->usedGpuMemory == NVML_MEM_NOT_AVAILABLE
			     ? -1
			     : (double)info->usedGpuMemory / (1024.0 * 1024.0);
	struct tapir_gpu_proc *p;
	size_t k;

	/* Under MIG the same process can show once per instance: one figure per GPU. */
	for (k = first; k < g->n_procs; k++) {
		p = &g->procs[k];
		if (p->pid != info->pid)
			continue;
		p->mem_mib = p->mem_mib < 0 || mib < 0 ? -1 : p->mem_mib + mib;
		return p;
	}
	if (g->n_procs == g->procs_cap) {
		size_t cap = g->procs_cap ? g->procs_cap * 2 : 64;

		p = realloc(g->procs, cap * sizeof(*p));
		if (!p)
			return NULL;
		g->procs = p;
		g->procs_cap = cap;
	}
	p = &g->procs[g->n_procs++];
	p->gpu_index = g->pub[i].index;
	memcpy(p->gpu_uuid, g->pub[i].uuid, sizeof(p->gpu_uuid));
	p->pid = info->pid;
	p->mem_mib = mib;
	p->util_pct = -1;
	return p;
}

/* Each process takes the SM figure of its newest sample; samples of unlisted pids are dropped. */
static void apply_samples(struct tapir_gpu *g, size_t first, long n_samples, struct gpu_dev *d)
{
	const nvmlProcessUtilizationSample_t *s;
	unsigned long long newest;
	struct tapir_gpu_proc *p;
	bool found;
	size_t k;
	long j;

	for (k = first; k < g->n_procs; k++) {
		p = &g->procs[k];
		found = false;
		newest = 0;
		for (j = 0; j < n_samples; j++) {
			s = &g->samples[j];
			if (s->pid != p->pid || (found && s->timeStamp < newest))
				continue;
			found = true;
			newest = s->timeStamp;
			p->util_pct = s->smUtil;
		}
	}
	for (j = 0; j < n_samples; j++) {
		if (g->samples[j].timeStamp > d->last_seen)
			d->last_seen = g->samples[j].timeStamp;
	}
}

static int collect_device(struct tapir_gpu *g, unsigned int i)
{
	struct gpu_dev *d = &g->dev[i];
	size_t first = g->n_procs;
	nvmlUtilization_t util;
	nvmlReturn_t ret;
	bool bad = false;
	long n, k;

	g->pub[i].util_pct = -1;
	if (g->nvml.get_util && !(d->unsupported & Q_DEV_UTIL)) {
		ret = g->nvml.get_util(d->handle, &util);
		if (ret == NVML_SUCCESS)
			g->pub[i].util_pct = util.gpu;
		else
			query_failed(g, i, Q_DEV_UTIL, "utilisation", ret, &bad);
	}
	if (g->nvml.get_procs) {
		n = read_procs(g, d->handle, &ret);
		if (n == -ENOMEM)
			return n;
		if (n < 0)
			query_failed(g, i, 0, "process list", ret, &bad);
		for (k = 0; k < n; k++) {
			if (!add_proc(g, first, i, &g->infos[k]))
				return -ENOMEM;
		}
	}
	/* Asked even with no process listed, so that "since the last collect" stays true. */
	if (g->nvml.get_proc_util && !(d->unsupported & Q_PROC_UTIL)) {
		n = read_samples(g, d->handle, d->last_seen, &ret);
		if (n == -ENOMEM)
			return n;
		if (n < 0)
			query_failed(g, i, Q_PROC_UTIL, "process utilisation", ret, &bad);
		else
			apply_samples(g, first, n, d);
	}
	if (d->failing && !bad) {
		pr_info("gpu: GPU %u answers again", g->pub[i].index);
		d->failing = false;
	}
	return 0;
}

int tapir_gpu__collect(struct tapir_gpu *g, const struct tapir_gpu_proc **procs, size_t *n_procs,
		       const struct tapir_gpu_device **devs, size_t *n_devs)
{
	unsigned int i;
	int err;

	if (!g || !procs || !n_procs || !devs || !n_devs)
		return -EINVAL;
	g->n_procs = 0;
	for (i = 0; i < g->n_devs; i++) {
		err = collect_device(g, i);
		if (err)
			return err;
	}
	*procs = g->procs;
	*n_procs = g->n_procs;
	*devs = g->pub;
	*n_devs = g->n_devs;
	return 0;
}
