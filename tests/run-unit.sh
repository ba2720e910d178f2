#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs every cmocka unit test binary given; fails if any fails.
set -u
fail=0
for t in "$@"; do
	echo "== $t"
	"$t" || fail=1
done
exit $fail
