#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Time in BPF programs by source line: perf's samples joined with the programs' jited lines.

  perf record -e cpu-clock -F 20000 -C 0 -o perf.data -- sleep 8   # while the load runs
  build/tools/bpf-lines > lines.txt                                 # while the programs run
  perf script -i perf.data -F ip,sym | tools/lineprof.py lines.txt [TOP]

Prints each BPF program's and helper's share of the samples, then the TOP (40) source lines of
the JIT images, each sample given to the line whose block starts at or before its address.
"""
import bisect
import collections
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    lines = []
    for row in open(sys.argv[1]):
        addr, prog, loc, *src = row.rstrip("\n").split(" ", 3)
        lines.append((int(addr, 16), prog, loc, src[0].strip() if src else ""))
    lines.sort()
    starts = [x[0] for x in lines]
    total = 0
    by_sym = collections.Counter()
    by_line = collections.Counter()
    source = {}
    for row in sys.stdin:
        f = row.split()
        if len(f) < 2:
            continue
        total += 1
        by_sym[f[1]] += 1
        if not f[1].startswith("bpf_prog_"):
            continue
        i = bisect.bisect_right(starts, int(f[0], 16)) - 1
        if i >= 0:
            _, _, loc, src = lines[i]
            fn = f[1].split("_", 3)[-1]  # bpf_prog_TAG_NAME
            by_line[(fn, loc)] += 1
            source[loc] = src
    if not total:
        sys.exit("lineprof: no samples on stdin")
    print(f"{total} samples")
    for sym, n in by_sym.most_common():
        if sym.startswith("bpf_") or "htab" in sym or "copy_from_user" in sym:
            print(f"  {100 * n / total:5.2f}% {sym}")
    mapped = sum(by_line.values())
    print(f"in JIT images: {mapped} samples ({100 * mapped / total:.2f}%), by source line:")
    for (fn, loc), n in by_line.most_common(top):
        print(f"  {100 * n / total:5.2f}% {fn:18s} {loc:24s} {source[loc][:72]}")


if __name__ == "__main__":
    main()
