// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The HTTP programs for kernels without bpf_loop: bounded steps continued by tail calls. */
#define TAPIR_COMPAT 1
#include "http.bpf.c"
