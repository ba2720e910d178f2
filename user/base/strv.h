/* SPDX-License-Identifier: GPL-2.0 */
/* Arrays of owned strings: the one helper several modules need. */
#ifndef TAPIR_STRV_H
#define TAPIR_STRV_H

#include <stdlib.h>

/* Free @n strings and the array holding them; NULL-safe. */
static inline void tapir_strv_free(char **v, size_t n)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

#endif
