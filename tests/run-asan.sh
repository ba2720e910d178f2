#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The unit suite, then a short end-to-end run (request families, edge cases, daemon behaviour,
# the kubelet client, the /metrics endpoint's TLS, auth and limits), against the AddressSanitizer
# + UBSan build in build-asan/ (make asan-bins), on the socket hooks where the kernel has them:
# the main end-to-end run covers the socket-buffer hooks tapir picks by default. A report
# fails the run: UBSan aborts at the first, ASan's leak check makes the daemon's exit fail the
# test that stops it. The 1,000-container churn and the slowloris tests are left out: they check
# RSS against a baseline, which ASan's shadow memory moves.
set -u
cd "$(dirname "$0")/.."
export ASAN_OPTIONS=detect_leaks=1:exitcode=66:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
fail=0
echo "== ASan/UBSan: unit suite"
tests/run-unit.sh build-asan/tests/test_* || fail=1
echo "== ASan/UBSan: end-to-end subset"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
hooks=auto
build/tapir check 2>/dev/null | grep -q '^sock_recv .* loaded$' && hooks=socket
echo "(tapir --bpf-hooks $hooks)"
TAPIR_BIN=$PWD/build-asan/tapir TAPIR_E2E_BPF_HOOKS=$hooks \
	/usr/bin/python3 -m pytest -p no:cacheprovider -q -rs \
	tests/e2e/test_http.py tests/e2e/test_edge.py tests/e2e/test_daemon.py \
	tests/e2e/test_kubelet_client.py tests/e2e/test_web.py \
	-k "not churn and not slowloris and not real_prometheus" || fail=1
exit $fail
