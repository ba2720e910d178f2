#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs the BPF and end-to-end tests: real hooks, real cgroups, real servers. Needs root.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "run-e2e: these tests load BPF programs and create cgroups: run them as root" >&2
	exit 1
fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing
# Debian's python3 owns the fastapi/uvicorn/prometheus_client packages the tests use.
exec /usr/bin/python3 -m pytest -p no:cacheprovider -q -rs tests/e2e "$@"
