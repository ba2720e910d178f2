#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The whole suite: the BPF stack check, unit tests, fuzz targets, BPF and end-to-end tests on this
# kernel, the unit tests and an end-to-end subset under ASan/UBSan, then the kernel matrix. Prints one closing line with the totals: "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
count() { # count PASSED FAILED
	passed=$((passed + $1))
	failed=$((failed + $2))
}

# Every BPF program within the ABI's 512 bytes of stack per call chain, whatever this
# kernel's verifier would let through.
echo "== BPF stack check"
if [ ! -x ../shared/tools/bpf-stack-check ]; then
	echo "../shared/tools/bpf-stack-check not found: stack check not run"
elif ../shared/tools/bpf-stack-check build/*.bpf.o; then
	echo "every call chain of every program within 512 bytes"
	count 1 0
else
	count 0 1
fi

tests/run-unit.sh build/tests/test_* 2>&1 | tee build/unit.log
unit_rc=${PIPESTATUS[0]}
p=$(grep -o '\[  PASSED  \] [0-9]* test' build/unit.log | awk '{ s += $4 } END { print s + 0 }')
f=$(grep -o '\[  FAILED  \] [0-9]* test' build/unit.log | awk '{ s += $4 } END { print s + 0 }')
# A binary that crashed prints no summary: its exit status still counts.
[ "$unit_rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
count "$p" "$f"

# Each fuzz target for a short time under ASan and UBSan (make fuzz runs them longer).
tests/run-fuzz.sh "${FUZZ_TEST_SECONDS:-30}" build/fuzz/fuzz_* 2>&1 | tee build/fuzz.log
count "$(grep -c '^PASS ' build/fuzz.log)" "$(grep -c '^FAIL ' build/fuzz.log)"

tests/run-e2e.sh 2>&1 | tee build/e2e.log
e2e_rc=${PIPESTATUS[0]}
last=$(grep -E '[0-9]+ (passed|failed|error)' build/e2e.log | tail -1)
p=$(echo "$last" | grep -o '[0-9]* passed' | awk '{ print $1 + 0 }')
f=$(echo "$last" | grep -oE '[0-9]+ (failed|errors?)' | awk '{ s += $1 } END { print s + 0 }')
[ "$e2e_rc" -ne 0 ] && [ "${f:-0}" -eq 0 ] && f=1
count "${p:-0}" "${f:-0}"

# The unit suite and an end-to-end subset again, under AddressSanitizer and UBSan.
tests/run-asan.sh 2>&1 | tee build/asan.log
asan_rc=${PIPESTATUS[0]}
p=$(grep -o '\[  PASSED  \] [0-9]* test' build/asan.log | awk '{ s += $4 } END { print s + 0 }')
f=$(grep -o '\[  FAILED  \] [0-9]* test' build/asan.log | awk '{ s += $4 } END { print s + 0 }')
last=$(grep -E '^[0-9]+ (passed|failed|error)|[0-9]+ passed' build/asan.log | grep -v '^\[' | tail -1)
p=$((p + $(echo "$last" | grep -o '[0-9]* passed' | awk '{ print $1 + 0 }')))
f=$((f + $(echo "$last" | grep -oE '[0-9]+ (failed|errors?)' | awk '{ s += $1 } END { print s + 0 }')))
[ "$asan_rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
count "$p" "$f"

if [ -x tools/kernel-matrix.sh ]; then
	tools/kernel-matrix.sh 2>&1 | tee build/matrix.log
	matrix_rc=${PIPESTATUS[0]}
	p=$(grep -cE '^matrix: .* PASS' build/matrix.log)
	f=$(grep -cE '^matrix: .* FAIL' build/matrix.log)
	[ "$matrix_rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
	count "$p" "$f"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
