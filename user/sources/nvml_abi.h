/* SPDX-License-Identifier: GPL-2.0 */
/* The subset of NVML's C ABI tapir uses, shared by user/gpu.c and the fake in tests/fake_nvml. */
#ifndef TAPIR_NVML_ABI_H
#define TAPIR_NVML_ABI_H

#include <stddef.h>

/*
 * As nvml.h declares it from API 11.6 to 13 (checked against NVIDIA's header in every version
 * of that range). nvmlReturn_t is an enum there, which the C ABI passes as an int.
 */
typedef int nvmlReturn_t;
typedef struct nvmlDevice_st *nvmlDevice_t;

#define NVML_SUCCESS			0
#define NVML_ERROR_UNINITIALIZED	1
#define NVML_ERROR_INVALID_ARGUMENT	2
#define NVML_ERROR_NOT_SUPPORTED	3
#define NVML_ERROR_NOT_FOUND		6
#define NVML_ERROR_INSUFFICIENT_SIZE	7
#define NVML_ERROR_DRIVER_NOT_LOADED	9
#define NVML_ERROR_GPU_IS_LOST		15
#define NVML_ERROR_UNKNOWN		999
#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96
#define NVML_DRIVER_VERSION_SIZE	80

/* nvmlProcessInfo_t of the _v3 call; the _v2 call's nvmlProcessInfo_v2_t has the same layout. */
typedef struct {
	unsigned int pid;
	unsigned long long usedGpuMemory; /* bytes */
	unsigned int gpuInstanceId;
	unsigned int computeInstanceId;
} nvmlProcessInfo_t;

typedef struct {
	unsigned int pid;
	unsigned long long timeStamp; /* CPU time in microseconds */
	unsigned int smUtil;
	unsigned int memUtil;
	unsigned int encUtil;
	unsigned int decUtil;
} nvmlProcessUtilizationSample_t;

typedef struct {
	unsigned int gpu;
	unsigned int memory;
} nvmlUtilization_t;

#if __SIZEOF_POINTER__ == 8
_Static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t layout");
_Static_assert(offsetof(nvmlProcessUtilizationSample_t, smUtil) == 16, "sample layout");
_Static_assert(sizeof(nvmlProcessUtilizationSample_t) == 32, "sample layout");
#endif

#endif
