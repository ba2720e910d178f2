#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Runs each fuzz target given for SECONDS, starting from its seed corpus in tests/fuzz/corpus/
# (and the crashing inputs kept in tests/fuzz/crashes/, replayed first). A working corpus
# grows in build/fuzz/; a crash leaves its input there and fails the run.
# Usage: tests/run-fuzz.sh SECONDS build/fuzz/fuzz_NAME...
set -u
cd "$(dirname "$0")/.."
secs=$1
shift
fail=0
for bin in "$@"; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	seeds=tests/fuzz/corpus/$name
	crashes=tests/fuzz/crashes/$name
	work=build/fuzz/corpus-$name
	mkdir -p "$work" build/fuzz/artifacts
	echo "== $name: ${secs} s"
	# The kept crashing inputs first: each is a regression test.
	if [ -d "$crashes" ] && [ -n "$(ls -A "$crashes")" ]; then
		if ! "$bin" -runs=0 "$crashes"/* >"build/fuzz/$name.replay.log" 2>&1; then
			tail -30 "build/fuzz/$name.replay.log"
			echo "FAIL $name: a kept crashing input fails again"
			fail=1
			continue
		fi
	fi
	if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix=build/fuzz/artifacts/"$name"- "$work" "$seeds" >"build/fuzz/$name.log" 2>&1; then
		echo "PASS $name: $(grep -o 'stat::number_of_executed_units: [0-9]*' "build/fuzz/$name.log" |
			awk '{ print $2 }') inputs, no finding"
	else
		tail -40 "build/fuzz/$name.log"
		echo "FAIL $name: see build/fuzz/$name.log and build/fuzz/artifacts/"
		fail=1
	fi
done
exit $fail
