#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs every cmocka unit test binary given (dependency files and the like are skipped); fails
# if any fails.
set -u
fail=0
for t in "$@"; do
	case "$t" in *.d | *.so* | *.o) continue ;; esac
	[ -x "$t" ] || continue
	echo "== $t"
	"$t" || fail=1
done
exit $fail
