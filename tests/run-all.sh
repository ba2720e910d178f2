#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The whole suite: unit tests, the exposition checked by real Prometheus parsers, then BPF and
# end-to-end tests. Prints one closing line with the totals.
set -u
cd "$(dirname "$0")/.."
status=0
tests/run-unit.sh build/tests/test_* 2>&1 | tee build/unit.log
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
tests/run-e2e.sh 2>&1 | tee build/e2e.log
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
exit $status
