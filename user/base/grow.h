/* SPDX-License-Identifier: GPL-2.0 */
/* Arrays indexed by a dense id (a label set's): grown on demand, new entries zeroed. Arrays
 * sorted by a 64-bit id: searched. */
#ifndef TAPIR_GROW_H
#define TAPIR_GROW_H

#include <stdint.h>
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

/*
 * In @arr, @n entries of @size bytes sorted by the uint64_t each starts with: the index of the
 * first whose id is not below @id (@n when none is), where an entry of @id is or would go.
 */
static inline size_t tapir_id_index(const void *arr, size_t n, size_t size, uint64_t id)
{
	size_t lo = 0, hi = n, mid;
	uint64_t at;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		memcpy(&at, (const char *)arr + mid * size, sizeof(at));
		if (at < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

#endif
