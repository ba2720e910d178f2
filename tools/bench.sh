#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Measures what tapir costs an nginx under wrk load: alternating rounds without and with tapir.
set -euo pipefail

DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CONNS=${BENCH_CONNECTIONS:-32}
VARIANT=${BENCH_VARIANT:-auto} # build of the HTTP programs: auto, loop or compat
HOOKS=${BENCH_HOOKS:-auto}     # where they watch: auto, socket or syscall
WARMUP=2

cd "$(dirname "$0")/.."
TAPIR=$PWD/build/tapir
OUT_MD=$PWD/build/bench.md

die() {
	echo "bench: $*" >&2
	exit 1
}
log() { echo "bench: $*" >&2; }

[ "$(id -u)" -eq 0 ] || die "needs root (BPF, cgroups)"
[ -x "$TAPIR" ] || die "$TAPIR is missing; run make first"
for t in nginx wrk curl python3 taskset awk; do
	command -v "$t" >/dev/null || die "$t is not installed"
done

# --- where things live ---------------------------------------------------------------------

cg_mount=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[ -n "$cg_mount" ] || die "no cgroup v2 mount in /proc/self/mountinfo"
cg_self=$(sed -n 's/^0:://p' /proc/self/cgroup)
[ -n "$cg_self" ] || die "no cgroup v2 line (0::PATH) in /proc/self/cgroup"
cg_rel=${cg_self%/}/tapir-bench
cg_parent=$cg_mount$cg_rel
cg_nginx=$cg_parent/nginx

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Two cores: nginx on 0, wrk on 1. With one core there is nothing to pin.
if [ "$(nproc)" -ge 2 ]; then
	pin_server=(taskset -c 0)
	pin_client=(taskset -c 1)
else
	log "only one CPU: nothing is pinned"
	pin_server=()
	pin_client=()
fi

tmp=$(mktemp -d /tmp/tapir-bench.XXXXXX)
nginx_pid=
tapir_pid=

# --- cleanup -------------------------------------------------------------------------------

stop_pid() {
	local pid=$1 i

	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

stop_tapir() {
	stop_pid "$tapir_pid"
	tapir_pid=
}

cleanup() {
	local rc=$? i pid

	set +e
	stop_tapir
	stop_pid "$nginx_pid"
	if [ -d "$cg_nginx" ]; then
		# Workers that outlived their master: kill whatever is left in the cgroup.
		for i in $(seq 50); do
			[ -s "$cg_nginx/cgroup.procs" ] || break
			while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$cg_nginx/cgroup.procs"
			sleep 0.1
		done
		rmdir "$cg_nginx" 2>/dev/null || log "could not remove $cg_nginx"
	fi
	[ -d "$cg_parent" ] && { rmdir "$cg_parent" 2>/dev/null || log "could not remove $cg_parent"; }
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- nginx ---------------------------------------------------------------------------------

mkdir -p "$cg_nginx"
mkdir -p "$tmp/nginx/html" "$tmp/nginx/logs"
# nginx workers run as nobody; mktemp -d made the tree private.
chmod 755 "$tmp" "$tmp/nginx" "$tmp/nginx/html"
head -c 1024 /dev/zero | tr '\0' 'x' >"$tmp/nginx/html/static.txt"
chmod 644 "$tmp/nginx/html/static.txt"

NGINX_PORT=$(free_port)
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $tmp/nginx/client_body;
	proxy_temp_path $tmp/nginx/proxy;
	fastcgi_temp_path $tmp/nginx/fastcgi;
	uwsgi_temp_path $tmp/nginx/uwsgi;
	scgi_temp_path $tmp/nginx/scgi;
	default_type text/plain;
	server {
		listen 127.0.0.1:$NGINX_PORT;
		root $tmp/nginx/html;
		location = /ok { return 200 "ok\n"; }
		location = /nginx_status { stub_status; }
	}
}
EOF

# The shell joins the cgroup before it becomes nginx, so master and workers start inside it.
"${pin_server[@]}" sh -c 'echo $$ >"$1/cgroup.procs" && exec nginx -e "$2/logs/error.log" -p "$2" -c "$2/nginx.conf" -g "daemon off;"' \
	sh "$cg_nginx" "$tmp/nginx" &
nginx_pid=$!

URL=http://127.0.0.1:$NGINX_PORT/static.txt
for i in $(seq 50); do
	curl -sf -o /dev/null "$URL" && break
	kill -0 "$nginx_pid" 2>/dev/null || { cat "$tmp/nginx/logs/error.log" >&2; die "nginx exited"; }
	sleep 0.1
done
curl -sf -o /dev/null "$URL" || die "nginx does not answer on $URL"
[ "$(curl -sf "http://127.0.0.1:$NGINX_PORT/ok")" = ok ] || die "nginx /ok does not answer ok"
[ "$(wc -l <"$cg_nginx/cgroup.procs")" -ge 2 ] || die "nginx master and worker are not in $cg_nginx"

# --- measurements --------------------------------------------------------------------------

to_ms() { # wrk prints 812.00us, 1.23ms, 2.00s
	awk -v v="$1" 'BEGIN {
		if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
		else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
		else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
		else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
		else { exit 1 }
	}'
}

# Sets rps, p50, p99, wrk_reqs, wrk_errs from one wrk run against $URL.
run_wrk() {
	local out

	out=$("${pin_client[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$URL")
	echo "$out" >>"$tmp/wrk.log"
	rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
	p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
	p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
	wrk_reqs=$(awk '/ requests in / { print $1 }' <<<"$out")
	wrk_errs=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }
			/Non-2xx or 3xx responses:/ { n += $NF } END { print n + 0 }' <<<"$out" |
		awk '{ s += $1 } END { print s + 0 }')
	[ -n "$rps" ] && [ -n "$p50" ] && [ -n "$p99" ] && [ -n "$wrk_reqs" ] ||
		{ echo "$out" >&2; die "cannot parse wrk output"; }
}

warmup() {
	"${pin_client[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$URL" >/dev/null
}

# The warm-up of a with-tapir round, with kernel.bpf_stats_enabled on: run time and runs of each
# of tapir's programs per request, as "round name ns_per_req runs_per_req" lines. Statistics
# cost two clock reads per program run, so the measured rounds run without them.
warmup_bpf_stats() {
	local out n

	sysctl -qw kernel.bpf_stats_enabled=1
	bpf_prog_stats "$tapir_pid" >"$tmp/bpf0"
	out=$("${pin_client[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$URL")
	bpf_prog_stats "$tapir_pid" >"$tmp/bpf1"
	sysctl -qw kernel.bpf_stats_enabled=0
	n=$(awk '/ requests in / { print $1 }' <<<"$out")
	awk -v n="$n" -v r="$1" 'NR == FNR { t[$1] = $2; c[$1] = $3; next }
		{ dt = $2 - t[$1]; dc = $3 - c[$1]; if (dc > 0) printf "%s %s %.1f %.3f\n", r, $1, dt / n, dc / n }' \
		"$tmp/bpf0" "$tmp/bpf1" >>"$tmp/bpf_rounds"
}

# CPU time, in seconds, of a pid (utime + stime) and of every process in the nginx cgroup.
cpu_of_pid() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.3f", ($12 + $13) / hz }' \
		"/proc/$1/stat"
}
cpu_of_nginx() {
	awk '$1 == "usage_usec" { printf "%.3f", $2 / 1e6 }' "$cg_nginx/cpu.stat"
}

# Run time and run count of each BPF program tapir loaded (kernel.bpf_stats_enabled), as
# "name run_time_ns run_cnt" lines.
bpf_prog_stats() {
	local ids

	# The programs behind the process's fds (bpftool's pid column needs a bpftool built
	# with it).
	ids=$(grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{ print $2 }' | sort -u | paste -sd,)
	bpftool prog show -j 2>/dev/null | python3 -c '
import json, sys
ids = {int(i) for i in sys.argv[1].split(",") if i}
for p in json.load(sys.stdin):
    if p["id"] in ids:
        print(p.get("name", "?"), p.get("run_time_ns", 0), p.get("run_cnt", 0))
' "$ids"
}

scrape() {
	curl -sf --max-time 5 "http://127.0.0.1:$TAPIR_PORT/metrics" >"$tmp/metrics" ||
		die "tapir's /metrics does not answer"
}
# Requests nginx itself has read so far, this status request included.
nginx_requests() {
	curl -sf --max-time 5 "http://127.0.0.1:$NGINX_PORT/nginx_status" | awk 'NR == 3 { print $3 }'
}

# Sum of every series of one family in the last scrape.
msum() {
	awk -v f="$1" '$1 == f || index($1, f "{") == 1 { s += $NF } END { printf "%.0f", s }' \
		"$tmp/metrics"
}

# Loss counters are kept as totals per round (tapir starts from zero each time).
declare -A loss_total=()
LOSS_FAMILIES=(tapir_records_lost_total tapir_connections_evicted_total tapir_parse_failures_total
	tapir_records_unlabelled_total tapir_ignored_connections_total)

start_tapir() {
	local i

	TAPIR_PORT=$(free_port)
	cat >"$tmp/tapir.yaml" <<EOF
listen: "127.0.0.1:$TAPIR_PORT"
deployments:
  - cgroup: "$cg_rel/*"
    labels:
      model_id: "bench"
      model_name: "nginx"
      deployment_id: "bench"
      environment: "bench"
      rollout_phase: "stable"
EOF
	"$TAPIR" --config "$tmp/tapir.yaml" --pin-dir none --bpf-variant "$VARIANT" --bpf-hooks "$HOOKS" >>"$tmp/tapir.log" 2>&1 &
	tapir_pid=$!
	for i in $(seq 300); do
		if ! kill -0 "$tapir_pid" 2>/dev/null; then
			wait "$tapir_pid" || true
			tapir_pid=
			cat "$tmp/tapir.log" >&2
			die "tapir exited during startup"
		fi
		if curl -sf --max-time 2 "http://127.0.0.1:$TAPIR_PORT/metrics" >"$tmp/metrics" 2>/dev/null &&
			grep -Eq '^tapir_bpf_program_attached\{.*\} 1$' "$tmp/metrics" &&
			[ "$(msum tapir_watched_cgroups)" -ge 1 ]; then
			break
		fi
		sleep 0.2
	done
	if [ "$i" -eq 300 ]; then
		cat "$tmp/tapir.log" >&2
		die "tapir did not come up in 60 s (BPF programs attached, cgroup watched)"
	fi
	if grep -Eq '^tapir_bpf_program_attached\{.*\} 0$' "$tmp/metrics"; then
		log "programs not attached: $(grep -E '^tapir_bpf_program_attached\{.*\} 0$' "$tmp/metrics" |
			tr '\n' ' ')"
	fi
}

# One request through nginx must show up as one request in tapir before we measure.
check_tapir_sees() {
	local before i

	scrape
	before=$(msum baseten_inference_requests_total)
	curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/ok"
	for i in $(seq 50); do
		scrape
		[ "$(msum baseten_inference_requests_total)" -gt "$before" ] && return 0
		sleep 0.1
	done
	cat "$tmp/tapir.log" >&2
	die "tapir did not count a request to /ok within 5 s"
}

# Another tapir (a test suite, a running daemon) attaches BPF programs that run for every
# process, nginx included, and would make the baseline rounds no baseline.
others=
note_other_tapirs() {
	local p

	p=$(pgrep -x tapir | grep -vx "${tapir_pid:-0}" | paste -sd' ' || true)
	[ -z "$p" ] && return 0
	log "another tapir is running (pid $p): results are disturbed"
	others=$(echo "$others $p" | tr ' ' '\n' | sed '/^$/d' | sort -un | paste -sd' ')
}

# What a process outside every watched cgroup pays per syscall: dd copying /dev/zero to
# /dev/null one byte at a time (a read and a write per byte), pinned where nginx runs (idle now).
# Prints nanoseconds per byte.
DD_BYTES=${BENCH_DD_BYTES:-500000}
dd_tax() {
	local t0 t1

	t0=$(date +%s%N)
	"${pin_server[@]}" dd if=/dev/zero of=/dev/null bs=1 count="$DD_BYTES" status=none
	t1=$(date +%s%N)
	awk -v a="$t0" -v b="$t1" -v n="$DD_BYTES" 'BEGIN { printf "%.1f", (b - a) / n }'
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -a a_rps=() a_p50=() a_p99=() a_ncpu=() b_rps=() b_p50=() b_p99=() b_ncpu=() a_dd=() b_dd=()
made=0 served=0 seen=0 tapir_cpu=0 wrk_err_total=0

log "nginx on 127.0.0.1:$NGINX_PORT in $cg_nginx; wrk -t1 -c$CONNS -d${DURATION}s, $ROUNDS rounds"
for r in $(seq "$ROUNDS"); do
	# A: nginx alone.
	warmup
	note_other_tapirs
	n0=$(cpu_of_nginx)
	run_wrk
	n1=$(cpu_of_nginx)
	note_other_tapirs
	a_rps+=("$rps") a_p50+=("$p50") a_p99+=("$p99")
	a_ncpu+=("$(awk -v a="$n0" -v b="$n1" -v n="$wrk_reqs" 'BEGIN { printf "%.4f", (b - a) / n * 1000 }')")
	a_dd+=("$(dd_tax)")
	log "round $r without tapir: $rps req/s, p50 $p50 ms, p99 $p99 ms, $wrk_reqs requests"

	# B: the same with tapir watching.
	start_tapir
	check_tapir_sees
	warmup_bpf_stats "$r"
	sleep 1
	scrape
	seen0=$(msum baseten_inference_requests_total)
	c0=$(cpu_of_pid "$tapir_pid")
	n0=$(cpu_of_nginx)
	q0=$(nginx_requests)
	run_wrk
	q1=$(nginx_requests)
	n1=$(cpu_of_nginx)
	note_other_tapirs
	# Records of the last responses may still be in the ring buffer; wait until the count
	# stops moving.
	sleep 1
	scrape
	seen1=$(msum baseten_inference_requests_total)
	for i in $(seq 10); do
		sleep 0.5
		scrape
		s=$(msum baseten_inference_requests_total)
		[ "$s" = "$seen1" ] && break
		seen1=$s
	done
	c1=$(cpu_of_pid "$tapir_pid")
	b_dd+=("$(dd_tax)") # tapir still running: dd is in no watched cgroup
	for f in "${LOSS_FAMILIES[@]}"; do
		loss_total[$f]=$((${loss_total[$f]:-0} + $(msum "$f")))
	done
	grep -E '^tapir_(records_lost|connections_evicted|parse_failures|ignored_connections)_total\{' \
		"$tmp/metrics" | awk '$NF != 0' >>"$tmp/losses" || true
	stop_tapir

	b_rps+=("$rps") b_p50+=("$p50") b_p99+=("$p99")
	b_ncpu+=("$(awk -v a="$n0" -v b="$n1" -v n="$wrk_reqs" 'BEGIN { printf "%.4f", (b - a) / n * 1000 }')")
	# Both status requests pass through nginx and tapir: nginx's count includes the second
	# (q0 already counted itself), tapir's includes both.
	made=$((made + wrk_reqs))
	served=$((served + q1 - q0 - 1))
	seen=$((seen + seen1 - seen0 - 2))
	wrk_err_total=$((wrk_err_total + wrk_errs))
	tapir_cpu=$(awk -v t="$tapir_cpu" -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", t + b - a }')
	log "round $r with tapir:    $rps req/s, p50 $p50 ms, p99 $p99 ms, $wrk_reqs requests," \
		"nginx served $((q1 - q0 - 1)), tapir saw $((seen1 - seen0 - 2)), tapir CPU $(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }') s"
done

# --- summary -------------------------------------------------------------------------------

rps_a=$(median "${a_rps[@]}") rps_b=$(median "${b_rps[@]}")
p50_a=$(median "${a_p50[@]}") p50_b=$(median "${b_p50[@]}")
p99_a=$(median "${a_p99[@]}") p99_b=$(median "${b_p99[@]}")
ncpu_a=$(median "${a_ncpu[@]}") ncpu_b=$(median "${b_ncpu[@]}")
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
ratio=$(calc %.3f "$rps_b / $rps_a")
d50=$(calc %+.3f "$p50_b - $p50_a")
d99=$(calc %+.3f "$p99_b - $p99_a")
dncpu=$(calc %+.4f "$ncpu_b - $ncpu_a")
dd_a=$(median "${a_dd[@]}") dd_b=$(median "${b_dd[@]}")
dd_ratio=$(calc %.3f "$dd_b / $dd_a")
cpu_per_k=$(calc %.6f "$tapir_cpu / $made * 1000")
seen_ratio=$(calc %.6f "$seen / $made")
served_ratio=$(calc %.6f "$seen / $served")
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
today=$(date -u +%Y-%m-%dT%H:%M:%SZ)

{
	variant=$(grep -o 'http: [a-z]* variant loaded' "$tmp/tapir.log" | tail -1 | awk '{ print $2 }')
	echo "## tapir overhead (${variant:-?} build of the HTTP programs): nginx static 1 KiB file, wrk -t1 -c$CONNS -d${DURATION}s, median of $ROUNDS rounds"
	echo
	echo "| | without tapir | with tapir | difference |"
	echo "|---|---:|---:|---:|"
	echo "| throughput (req/s) | $rps_a | $rps_b | ratio $ratio |"
	echo "| latency p50 (ms) | $p50_a | $p50_b | $d50 |"
	echo "| latency p99 (ms) | $p99_a | $p99_b | $d99 |"
	echo "| nginx CPU s / 1,000 req (incl. BPF programs) | $ncpu_a | $ncpu_b | $dncpu |"
	echo "| tapir daemon CPU s / 1,000 req (utime+stime) | | $cpu_per_k | |"
	echo "| dd bs=1 of $DD_BYTES bytes, unwatched (ns per byte: a read and a write) | $dd_a | $dd_b | ratio $dd_ratio |"
	echo
	echo "| accounting, all with-tapir rounds | value |"
	echo "|---|---:|"
	echo "| requests made (wrk \"N requests in\") | $made |"
	echo "| requests read by nginx (stub_status) | $served |"
	echo "| requests observed by tapir (baseten_inference_requests_total) | $seen |"
	echo "| observed / made by wrk | $seen_ratio |"
	echo "| observed / read by nginx | $served_ratio |"
	echo "| wrk socket errors + non-2xx | $wrk_err_total |"
	for f in "${LOSS_FAMILIES[@]}"; do
		echo "| $f | ${loss_total[$f]} |"
	done
	echo
	if [ -s "$tmp/bpf_rounds" ]; then
		echo "| BPF program (kernel.bpf_stats_enabled, warm-up runs) | ns / request | runs / request |"
		echo "|---|---:|---:|"
		# Median over rounds per program, then the total of the medians.
		awk '{ print $2 }' "$tmp/bpf_rounds" | sort -u | while read -r prog; do
			ns=$(median $(awk -v p="$prog" '$2 == p { print $3 }' "$tmp/bpf_rounds"))
			runs=$(median $(awk -v p="$prog" '$2 == p { print $4 }' "$tmp/bpf_rounds"))
			echo "$prog $ns $runs"
		done | sort -k2,2gr | awk '{ printf "| %s | %.1f | %.3f |\n", $1, $2, $3; s += $2 }
			END { printf "| **all programs** | **%.1f** | |\n", s }'
		echo
	fi
	[ -z "$others" ] || echo "**Disturbed:** other tapir processes ran during the rounds (pids $others)."
	[ -z "$others" ] || echo
	echo "Machine: $(nproc) CPUs, $cpu_model, Linux $(uname -r), $today." \
		"nginx (1 worker) pinned to CPU 0, wrk to CPU 1, tapir unpinned."
} >"$OUT_MD"

echo
cat "$OUT_MD"
if [ -s "$tmp/losses" ]; then
	echo
	echo "Non-zero loss series, per round:"
	cat "$tmp/losses"
fi
if [ "$served" -ne "$made" ]; then
	echo
	echo "Note: nginx read $((served - made)) requests more than wrk counted ($ROUNDS rounds of" \
		"$CONNS connections). wrk counts only responses it read before its clock stopped; the" \
		"request each connection had in flight then is still read and answered by nginx."
fi
if [ "$seen" -ne "$served" ]; then
	echo
	echo "Note: tapir observed $((seen - served)) requests more than nginx read; see the loss" \
		"counters above."
fi
echo
echo "Written to ${OUT_MD#"$PWD"/}"
