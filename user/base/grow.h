/* SPDX-License-Identifier: GPL-2.0 */
/* Arrays indexed by a dense id (a label set's): grown on demand, new entries zeroed. */
#ifndef TAPIR_GROW_H
#define TAPIR_GROW_H

#include <stdlib.h>
#include <string.h>

/*
 * Make *@arr (of *@n entries of @size bytes) hold index @idx: doubled from 64 as needed, the
 * new entries zeroed. 0, or -1 without memory (the array is left as it was).
 */
static inline int tapir_grow_zeroed(void **arr, size_t *n, size_t idx, size_t size)
{
	size_t want;
	void *p;

	if (idx < *n)
		return 0;
	for (want = *n ? *n : 64; want <= idx; want *= 2)
		;
	p = realloc(*arr, want * size);
	if (!p)
		return -1;
	memset((char *)p + *n * size, 0, (want - *n) * size);
	*arr = p;
	*n = want;
	return 0;
}

#endif
