#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# On a node with an NVIDIA GPU, run from anywhere: print tapir's NVML figures beside nvidia-smi's.
# Needs gcc and the driver's libnvidia-ml.so.1; runs a short torch load if torch sees a GPU.
set -u
cd "$(dirname "$0")/.." || exit 1
probe=${TMPDIR:-/tmp}/tapir-gpu-probe
gcc -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -std=gnu11 -D_GNU_SOURCE -Iuser/sources -Iuser/base \
	user/sources/gpu.c user/base/log.c tools/gpu_probe.c -ldl -o "$probe" || exit 1

load=
if timeout 60 python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
	timeout 40 python3 -c '
import time, torch
a = torch.randn(8192, 8192, device="cuda")
end = time.time() + 30
while time.time() < end:
    a @ a
    torch.cuda.synchronize()
' &
	load=$!
	sleep 10 # CUDA context and allocation
else
	echo "# no torch with CUDA: reporting whatever GPU processes already run"
fi

echo "== tapir (gpu_probe)"
"$probe" "" 2
rc=$?
if command -v nvidia-smi >/dev/null; then
	echo "== nvidia-smi"
	nvidia-smi --query-gpu=index,uuid,utilization.gpu --format=csv
	nvidia-smi --query-compute-apps=gpu_uuid,pid,used_memory --format=csv
	nvidia-smi pmon -c 1 -s u
else
	echo "# no nvidia-smi to compare with"
fi
[ -n "$load" ] && kill "$load" 2>/dev/null
wait
exit $rc
