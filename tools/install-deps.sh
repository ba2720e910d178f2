#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Installs every Debian package that building, running and testing tapir needs. Idempotent:
# packages already present are left alone and apt is not touched at all when nothing is missing.
set -euo pipefail

build=(clang llvm make gcc pkg-config libbpf-dev bpftool libelf-dev zlib1g-dev
       libmicrohttpd-dev libgnutls28-dev libcrypt-dev libyaml-dev libcurl4-openssl-dev libjson-c-dev
       libnghttp2-dev)
test=(libcmocka-dev python3 python3-pytest python3-prometheus-client python3-fastapi
      python3-uvicorn python3-uvloop python3-httptools python3-websockets nginx-light curl wrk apache2-utils hey prometheus
      nodejs iproute2 procps clang-format qemu-system-x86 busybox-static cpio libclang-rt-dev
      openssl python3-cryptography python3-yaml python3-grpcio nghttp2-client nghttp2-server python3-hypercorn)

want=("${build[@]}")
case "${1:-all}" in
build) ;;
all | test) want+=("${test[@]}") ;;
*) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages (${missing[*]}); run as root" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# nginx and prometheus come with service units; tests start their own instances on other
# ports, so keep apt from starting the packaged ones where policy-rc.d is honoured.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get install -y -q --no-install-recommends "${missing[@]}"
