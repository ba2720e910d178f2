#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Measures what tapir costs the servers it watches, side by side with the alternative, at
# saturation under wrk. Every round runs, in turn: nginx alone; nginx with tapir (on the hooks it
# picks: the socket buffers where they load); nginx with tapir on the socket hooks; nginx with the
# floor tracer (tools/floor.bpf.c: the least a tracer that reads the bytes must do, the floor
# under tapir's figures on this machine); nginx with the same floor at its socket buffers
# (cgroup_skb: no read of the process's memory); nginx behind an nginx reverse proxy (how proxy-based
# metrics are taken); a uvicorn model server alone; uvicorn with tapir. The http case also
# measures what each kernel helper such a tracer calls costs here (floor costs). Then the HTTP path alone (pingpong), 1,000 watched cgroups (scale), the syscall
# hooks' tax on file I/O (dd), token streams of a stand-in vLLM with and without tapir (llm), and
# wrk as a watched client, its requests to nginx followed as outbound requests or not (outbound),
# and HTTP/2: nghttpd under h2load, alone and with tapir following every stream (h2).
# BENCH_CASES picks some of them ("http pingpong scale dd llm outbound h2", the default: all). Writes
# build/bench.md and build/bench.json (every figure, the machine, the kernel, the commit);
# tools/bench-report.py turns the runs into both.
set -euo pipefail

DURATION=${BENCH_DURATION:-8}
ROUNDS=${BENCH_ROUNDS:-5}
CONNS=${BENCH_CONNECTIONS:-32}
VARIANT=${BENCH_VARIANT:-auto} # build of the HTTP programs: auto, loop or compat
HOOKS=${BENCH_HOOKS:-auto}     # where they watch: auto, skb, socket or syscall
DD_BYTES=${BENCH_DD_BYTES:-500000}
CASES=${BENCH_CASES:-http pingpong scale dd llm outbound h2}
WARMUP=2

cd "$(dirname "$0")/.."
TAPIR=$PWD/build/tapir
OUT_MD=$PWD/build/bench.md
OUT_JSON=$PWD/build/bench.json
PY=/usr/bin/python3 # Debian's, which has fastapi and uvicorn

die() {
	echo "bench: $*" >&2
	exit 1
}
log() { echo "bench: $*" >&2; }

want() { case " $CASES " in *" $1 "*) return 0 ;; esac; return 1; }
for c in $CASES; do
	case $c in
	http | pingpong | scale | dd | llm | outbound | h2) ;;
	*) die "BENCH_CASES: unknown case $c (http pingpong scale dd llm outbound h2)" ;;
	esac
done

[ "$(id -u)" -eq 0 ] || die "needs root (BPF, cgroups)"
[ -x "$TAPIR" ] || die "$TAPIR is missing; run make first"
for t in nginx wrk curl taskset awk dd bpftool git; do
	command -v "$t" >/dev/null || die "$t is not installed"
done
$PY -c 'import fastapi, uvicorn' 2>/dev/null || die "python3-fastapi and python3-uvicorn are missing"
! want llm || [ -x build/tools/llm_server ] || die "build/tools/llm_server is missing; run make bench"
! want http || [ -x build/tools/floor ] || die "build/tools/floor is missing; run make bench"
if want h2; then
	for t in nghttpd h2load; do
		command -v "$t" >/dev/null || die "$t is not installed (nghttp2-server, nghttp2-client)"
	done
fi

# --- where things live ---------------------------------------------------------------------

cg_mount=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
[ -n "$cg_mount" ] || die "no cgroup v2 mount in /proc/self/mountinfo"
cg_self=$(sed -n 's/^0:://p' /proc/self/cgroup)
[ -n "$cg_self" ] || die "no cgroup v2 line (0::PATH) in /proc/self/cgroup"
cg_rel=${cg_self%/}/tapir-bench
cg_parent=$cg_mount$cg_rel
cg_nginx=$cg_parent/nginx
cg_proxy=$cg_parent/proxy
cg_uvicorn=$cg_parent/uvicorn
cg_llm=$cg_parent/llm
cg_client=$cg_parent/client
cg_h2=$cg_parent/h2

# A run's line of a case's table: record_case CASE FIELDS..., tab-separated into $tmp/CASE.tsv.
record_case() {
	local IFS=$'\t' name=$1

	shift
	echo "$*" >>"$tmp/$name.tsv"
}

# Rounds of two runs, a case alone and with tapir: alternate RUN_FN NAME ROUNDS calls
# RUN_FN ROUND NAME, then RUN_FN ROUND NAME+tapir, round after round.
alternate() {
	local fn=$1 name=$2 rounds=$3 r

	for r in $(seq "$rounds"); do
		"$fn" "$r" "$name"
		"$fn" "$r" "$name+tapir"
	done
}

# The build and hooks the last tapir started here loaded, as its log says.
loaded_variant() {
	grep -o 'http: [a-z]* variant loaded[^;]*' "$tmp/tapir.log" 2>/dev/null | tail -1 || true
}

free_port() {
	$PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Two cores: the servers on 0, wrk on 1. With one core there is nothing to pin.
if [ "$(nproc)" -ge 2 ]; then
	pin_server=(taskset -c 0)
	pin_client=(taskset -c 1)
else
	log "only one CPU: nothing is pinned"
	pin_server=()
	pin_client=()
fi
# What wrk runs under, after the pinning: nothing, or (the outbound case) a move into a cgroup.
client_in=()

tmp=$(mktemp -d /tmp/tapir-bench.XXXXXX)
nginx_pid=
proxy_pid=
uvicorn_pid=
llm_pid=
h2_pid=
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
	local rc=$? i pid cg

	set +e
	stop_tapir
	stop_pid "$nginx_pid"
	stop_pid "$proxy_pid"
	stop_pid "$uvicorn_pid"
	stop_pid "$llm_pid"
	stop_pid "$h2_pid"
	for cg in "$cg_nginx" "$cg_proxy" "$cg_uvicorn" "$cg_llm" "$cg_client" "$cg_h2"; do
		[ -d "$cg" ] || continue
		# Workers that outlived their master: kill whatever is left in the cgroup.
		for i in $(seq 50); do
			[ -s "$cg/cgroup.procs" ] || break
			while read -r pid; do kill -KILL "$pid" 2>/dev/null; done <"$cg/cgroup.procs"
			sleep 0.1
		done
		rmdir "$cg" 2>/dev/null || log "could not remove $cg"
	done
	for cg in "$cg_parent"/scale*; do [ -d "$cg" ] && rmdir "$cg"; done
	[ -d "$cg_parent" ] && { rmdir "$cg_parent" 2>/dev/null || log "could not remove $cg_parent"; }
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Start "$@" pinned with the servers, inside cgroup $1 from its first instruction.
start_in() {
	local cg=$1

	shift
	mkdir -p "$cg"
	"${pin_server[@]}" sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg" "$@" &
}

wait_url() { # URL PID LOG: until URL answers 2xx, or the server exits
	local i

	for i in $(seq 100); do
		curl -sf -o /dev/null "$1" && return 0
		kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "the server of $1 exited"; }
		sleep 0.1
	done
	cat "$3" >&2
	die "nothing answers on $1"
}

nginx_conf() { # DIR PORT SERVER_BLOCK_BODY [HTTP_EXTRA]
	cat <<EOF
worker_processes 1;
pid $1/nginx.pid;
error_log $1/logs/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $1/client_body;
	proxy_temp_path $1/proxy;
	fastcgi_temp_path $1/fastcgi;
	uwsgi_temp_path $1/uwsgi;
	scgi_temp_path $1/scgi;
	default_type text/plain;
	${4:-}
	server {
		listen 127.0.0.1:$2;
		$3
	}
}
EOF
}

# --- nginx: a static 1 KiB file --------------------------------------------------------------

mkdir -p "$tmp/nginx/html" "$tmp/nginx/logs" "$tmp/proxy/logs" "$tmp/app"
# nginx workers run as nobody; mktemp -d made the tree private.
chmod 755 "$tmp" "$tmp/nginx" "$tmp/nginx/html" "$tmp/proxy"
head -c 1024 /dev/zero | tr '\0' 'x' >"$tmp/nginx/html/static.txt"
chmod 644 "$tmp/nginx/html/static.txt"

NGINX_PORT=$(free_port)
nginx_conf "$tmp/nginx" "$NGINX_PORT" "root $tmp/nginx/html;
		location = /ok { return 200 \"ok\n\"; }
		location = /nginx_status { stub_status; }" >"$tmp/nginx/nginx.conf"
start_in "$cg_nginx" nginx -e "$tmp/nginx/logs/error.log" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g "daemon off;"
nginx_pid=$!
URL=http://127.0.0.1:$NGINX_PORT/static.txt
wait_url "$URL" "$nginx_pid" "$tmp/nginx/logs/error.log"
[ "$(curl -sf "http://127.0.0.1:$NGINX_PORT/ok")" = ok ] || die "nginx /ok does not answer ok"
[ "$(wc -l <"$cg_nginx/cgroup.procs")" -ge 2 ] || die "nginx master and worker are not in $cg_nginx"

# --- the proxy alternative: a second nginx in front, with keep-alive to the first ----------

PROXY_PORT=$(free_port)
nginx_conf "$tmp/proxy" "$PROXY_PORT" "location / {
			proxy_pass http://origin;
			proxy_http_version 1.1;
			proxy_set_header Connection \"\";
		}" "upstream origin { server 127.0.0.1:$NGINX_PORT; keepalive 64; }" >"$tmp/proxy/nginx.conf"
# A sidecar shares the pod's CPUs: the proxy runs where nginx runs.
start_in "$cg_proxy" nginx -e "$tmp/proxy/logs/error.log" -p "$tmp/proxy" -c "$tmp/proxy/nginx.conf" -g "daemon off;"
proxy_pid=$!
PROXY_URL=http://127.0.0.1:$PROXY_PORT/static.txt
wait_url "$PROXY_URL" "$proxy_pid" "$tmp/proxy/logs/error.log"

# --- a model server: uvicorn with a FastAPI app, which counts what it served ----------------

cat >"$tmp/app/model.py" <<'EOF'
# A stand-in model server: one small JSON prediction per request, and its own count of them.
from fastapi import FastAPI

app = FastAPI()
served = 0


@app.get("/predict")
def predict():
    global served
    served += 1
    return {"label": "POSITIVE", "score": 0.9998}


@app.get("/count")
def count():
    return {"served": served}
EOF
UVICORN_PORT=$(free_port)
start_in "$cg_uvicorn" env -C "$tmp/app" $PY -m uvicorn model:app --host 127.0.0.1 \
	--port "$UVICORN_PORT" --log-level warning --no-access-log >"$tmp/app/uvicorn.log" 2>&1
uvicorn_pid=$!
UVICORN_URL=http://127.0.0.1:$UVICORN_PORT/predict
wait_url "$UVICORN_URL" "$uvicorn_pid" "$tmp/app/uvicorn.log"

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

# Sets rps, p50, p99, wrk_reqs, wrk_errs from one wrk run against URL $1.
run_wrk() {
	local out

	out=$("${pin_client[@]}" "${client_in[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$1")
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
	"${pin_client[@]}" "${client_in[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$1" >/dev/null
}

# Run time and run count of each BPF program tapir loaded (kernel.bpf_stats_enabled), as
# "name run_time_ns run_cnt" lines: the programs behind the process's fds.
bpf_prog_stats() {
	local ids

	ids=$(grep -h '^prog_id:' /proc/"$1"/fdinfo/* 2>/dev/null | awk '{ print $2 }' | sort -u | paste -sd,)
	bpftool prog show -j 2>/dev/null | $PY -c '
import json, sys
ids = {int(i) for i in sys.argv[1].split(",") if i}
for p in json.load(sys.stdin):
    if p["id"] in ids:
        print(p.get("name", "?"), p.get("run_time_ns", 0), p.get("run_cnt", 0))
' "$ids"
}

# The warm-up of a with-tapir round, with kernel.bpf_stats_enabled on: run time and runs of each
# of tapir's programs (or those of process PID) per request, as "server round name ns_per_req
# runs_per_req" lines. Statistics cost two clock reads per program run, so the measured runs go
# without them.
warmup_bpf_stats() { # SERVER ROUND URL [PID]
	local n pid=${4:-$tapir_pid}

	bpf_stats_during "$pid" "${pin_client[@]}" "${client_in[@]}" \
		wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$3" >"$tmp/warmup.out"
	n=$(awk '/ requests in / { print $1 }' "$tmp/warmup.out")
	bpf_per_req "$1" "$2" "$n"
}

# CMD run with kernel.bpf_stats_enabled, between snapshots of process PID's programs in
# $tmp/bpf0 and $tmp/bpf1 (bpf_prog_stats()); CMD's status. Not a subshell: what CMD sets stays.
bpf_stats_during() { # PID CMD...
	local pid=$1 rc=0

	shift
	sysctl -qw kernel.bpf_stats_enabled=1
	bpf_prog_stats "$pid" >"$tmp/bpf0"
	"$@" || rc=$?
	bpf_prog_stats "$pid" >"$tmp/bpf1"
	sysctl -qw kernel.bpf_stats_enabled=0
	return "$rc"
}

# $tmp/bpf0 and $tmp/bpf1, before and after N requests, into lines of $tmp/bpf.tsv.
bpf_per_req() { # SERVER ROUND N
	awk -v n="$3" -v s="$1" -v r="$2" 'NR == FNR { t[$1] = $2; c[$1] = $3; next }
		{ dt = $2 - t[$1]; dc = $3 - c[$1]; if (dc > 0) printf "%s\t%s\t%s\t%.1f\t%.3f\n", s, r, $1, dt / n, dc / n }' \
		"$tmp/bpf0" "$tmp/bpf1" >>"$tmp/bpf.tsv"
}

# CPU time in seconds: of a pid (utime + stime), of a cgroup (cpu.stat).
cpu_of_pid() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.3f", ($12 + $13) / hz }' \
		"/proc/$1/stat"
}
cpu_of_cg() {
	awk '$1 == "usage_usec" { printf "%.6f", $2 / 1e6 }' "$1/cpu.stat"
}

scrape() {
	curl -sf --max-time 5 "http://127.0.0.1:$TAPIR_PORT/metrics" >"$tmp/metrics" ||
		die "tapir's /metrics does not answer"
}

# What the servers themselves served so far: nginx's stub_status (this request included), the
# model server's own count (the /count request is not a prediction).
served_nginx() {
	curl -sf --max-time 5 "http://127.0.0.1:$NGINX_PORT/nginx_status" | awk 'NR == 3 { print $3 }'
}
served_uvicorn() {
	curl -sf --max-time 5 "http://127.0.0.1:$UVICORN_PORT/count" | $PY -c 'import json, sys; print(json.load(sys.stdin)["served"])'
}

# Sum of every series of one family in the last scrape, or of those whose name and labels hold
# the string $2.
msum() { # FAMILY [STRING]
	awk -v f="$1" -v m="${2:-}" '($1 == f || index($1, f "{") == 1) && (m == "" || index($1, m)) {
		s += $NF } END { printf "%.0f", s }' "$tmp/metrics"
}

LOSS_FAMILIES=(tapir_records_lost_total tapir_connections_evicted_total tapir_parse_failures_total
	tapir_records_unlabelled_total tapir_ignored_connections_total)

# tapir with one rule, for the cgroups GLOB matches (by default every cgroup under ours), and
# $tapir_yaml_extra (YAML) after it; it must have attached its programs and watch CGROUPS cgroups
# (by default every cgroup there is).
tapir_yaml_extra=
start_tapir() { # [GLOB [CGROUPS]]
	local glob=${1:-$cg_rel/*} n=${2:-} i

	[ -n "$n" ] || n=$(find "$cg_parent" -mindepth 1 -maxdepth 1 -type d | wc -l)
	TAPIR_PORT=$(free_port)
	cat >"$tmp/tapir.yaml" <<EOF
listen: "127.0.0.1:$TAPIR_PORT"
deployments:
  - cgroup: "$glob"
    labels:
      model_id: "bench"
      deployment_id: "bench"
      environment: "bench"
      rollout_phase: "stable"
$tapir_yaml_extra
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
			[ "$(msum tapir_watched_cgroups)" -ge "$n" ]; then
			break
		fi
		sleep 0.2
	done
	if [ "$i" -eq 300 ]; then
		cat "$tmp/tapir.log" >&2
		die "tapir did not come up in 60 s (BPF programs attached, $n cgroups watched)"
	fi
	if grep -Eq '^tapir_bpf_program_attached\{.*\} 0$' "$tmp/metrics"; then
		log "programs not attached: $(grep -E '^tapir_bpf_program_attached\{.*\} 0$' "$tmp/metrics" |
			tr '\n' ' ')"
	fi
}

# One request to $1 must show up as one request in tapir before we measure.
check_tapir_sees() {
	counts_within_5s "a request to $1" curl -sf -o /dev/null "$1"
}

# counts_within_5s WHAT CMD...: CMD makes a request that tapir must count within 5 s.
counts_within_5s() {
	local what=$1 before i

	shift
	scrape
	before=$(msum baseten_inference_requests_total)
	"$@" || die "no answer to $what"
	for i in $(seq 50); do
		scrape
		[ "$(msum baseten_inference_requests_total)" -gt "$before" ] && return 0
		sleep 0.1
	done
	cat "$tmp/tapir.log" >&2
	die "tapir did not count $what within 5 s"
}

# Another tapir (a test suite, a running daemon) attaches BPF programs that run for every
# process, the servers included, and would make the baseline rounds no baseline.
others=
note_other_tapirs() {
	local p

	p=$(pgrep -x tapir | grep -vx "${tapir_pid:-0}" | paste -sd' ' || true)
	[ -z "$p" ] && return 0
	log "another tapir is running (pid $p): results are disturbed"
	others=$(echo "$others $p" | tr ' ' '\n' | sed '/^$/d' | sort -un | paste -sd' ')
}

# What a process outside every watched cgroup pays per syscall: dd copying /dev/zero to
# /dev/null one byte at a time (a read and a write per byte), pinned where the servers run
# (idle now). Prints nanoseconds per byte.
dd_tax() {
	local t0 t1

	t0=$(date +%s%N)
	"${pin_server[@]}" dd if=/dev/zero of=/dev/null bs=1 count="$DD_BYTES" status=none
	t1=$(date +%s%N)
	awk -v a="$t0" -v b="$t1" -v n="$DD_BYTES" 'BEGIN { printf "%.1f", (b - a) / n }'
}

# One line of build/bench-rounds.tsv per measured run:
# round config server rps p50_ms p99_ms server_cpu_s requests errors dd_ns served seen tapir_cpu_s
# losses (family=value,...). Empty fields are "-".
ROUNDS_TSV=$tmp/rounds.tsv
: >"$ROUNDS_TSV"
: >"$tmp/bpf.tsv"
record() {
	local IFS=$'\t'

	echo "$*" >>"$ROUNDS_TSV"
}

# A run without tapir: ROUND CONFIG SERVER_NAME URL CGROUPS...
run_plain() {
	local r=$1 config=$2 server=$3 url=$4 cg t0=0 t1=0 dd

	shift 4
	warmup "$url"
	note_other_tapirs
	for cg in "$@"; do t0=$(awk -v a="$t0" -v b="$(cpu_of_cg "$cg")" 'BEGIN { printf "%.6f", a + b }'); done
	run_wrk "$url"
	for cg in "$@"; do t1=$(awk -v a="$t1" -v b="$(cpu_of_cg "$cg")" 'BEGIN { printf "%.6f", a + b }'); done
	note_other_tapirs
	dd=-
	[ "$config" = nginx ] && dd=$(dd_tax)
	record "$r" "$config" "$server" "$rps" "$p50" "$p99" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')" \
		"$wrk_reqs" "$wrk_errs" "$dd" - - - -
	log "round $r $config: $rps req/s, p50 $p50 ms, p99 $p99 ms, $wrk_reqs requests"
}

# A run with tapir watching: ROUND CONFIG SERVER_NAME URL CGROUP SERVED_FN [BPF_KEY], where
# BPF_KEY names its programs' run time per request (default: SERVER_NAME).
run_tapir() {
	local r=$1 config=$2 server=$3 url=$4 cg=$5 served_fn=$6 key=${7:-$3} s0 s1 c0 c1 n0 n1 q0 q1 s i dd f losses=

	start_tapir
	check_tapir_sees "$url"
	warmup_bpf_stats "$key" "$r" "$url"
	sleep 1
	scrape
	s0=$(msum baseten_inference_requests_total)
	c0=$(cpu_of_pid "$tapir_pid")
	n0=$(cpu_of_cg "$cg")
	q0=$($served_fn)
	run_wrk "$url"
	q1=$($served_fn)
	n1=$(cpu_of_cg "$cg")
	note_other_tapirs
	# Records of the last responses may still be in the ring buffer; wait until the count
	# stops moving.
	sleep 1
	scrape
	s1=$(msum baseten_inference_requests_total)
	for i in $(seq 10); do
		sleep 0.5
		scrape
		s=$(msum baseten_inference_requests_total)
		[ "$s" = "$s1" ] && break
		s1=$s
	done
	c1=$(cpu_of_pid "$tapir_pid")
	dd=-
	[ "$config" = nginx+tapir ] && dd=$(dd_tax) # tapir still running: dd is in no watched cgroup
	for f in "${LOSS_FAMILIES[@]}"; do
		losses+="${losses:+,}$f=$(msum "$f")"
	done
	grep -E '^tapir_(records_lost|connections_evicted|parse_failures|ignored_connections)_total\{' \
		"$tmp/metrics" | awk -v c="$config" -v r="$r" '$NF != 0 { print "round " r " " c ": " $0 }' >>"$tmp/losses" || true
	stop_tapir
	# nginx: both status requests pass through nginx and tapir; nginx's count includes the
	# second (the first counted itself), tapir's both. uvicorn: /count is not a prediction, and
	# tapir saw both.
	if [ "$server" = nginx ]; then
		q1=$((q1 - 1))
	fi
	record "$r" "$config" "$server" "$rps" "$p50" "$p99" "$(awk -v a="$n0" -v b="$n1" 'BEGIN { printf "%.6f", b - a }')" \
		"$wrk_reqs" "$wrk_errs" "$dd" "$((q1 - q0))" "$((s1 - s0 - 2))" \
		"$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }')" "$losses"
	log "round $r $config: $rps req/s, p50 $p50 ms, p99 $p99 ms, $wrk_reqs requests," \
		"$server served $((q1 - q0)), tapir saw $((s1 - s0 - 2))"
}

# nginx with a floor tracer watching its cgroup: ROUND MODE, where MODE is watch (at the socket
# hooks, as tapir: the nginx+floor row) or skb (at the socket buffers: nginx+skbfloor). Its
# programs' run time per request comes from a warm-up with statistics, as tapir's. A kernel that
# cannot run one (no tp_btf/sock_*_length before 6.3; no cgroup v2) has no such row.
floor_ok_watch=yes
floor_ok_skb=yes
run_floor() {
	local r=$1 mode=$2 pid i config ok

	config=nginx+floor
	[ "$mode" = skb ] && config=nginx+skbfloor
	ok=floor_ok_$mode
	[ "${!ok}" = yes ] || return 0
	build/tools/floor "$mode" "$cg_nginx" >"$tmp/floor.log" 2>&1 &
	pid=$!
	for i in $(seq 50); do
		grep -q '^floor: watching' "$tmp/floor.log" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q '^floor: watching' "$tmp/floor.log"; then
		wait "$pid" 2>/dev/null || true
		log "no $config on this kernel: $(cat "$tmp/floor.log")"
		printf -v "$ok" no
		return 0
	fi
	warmup_bpf_stats "$config" "$r" "$URL" "$pid"
	run_plain "$r" "$config" nginx "$URL" "$cg_nginx"
	stop_pid "$pid"
	log "round $r $config: $(tail -1 "$tmp/floor.log")"
}

# tapir on the socket hooks (--bpf-hooks socket) where this kernel has them (what it picks where
# the socket-buffer hooks do not load; the floor tracer's hooks): the nginx+tapirsock row, its
# BPF time under that name.
sock_ok=
# The whole output first: grep -q leaves at its first match, and the rest of tapir check's
# writes would fail the pipeline (pipefail) with SIGPIPE.
check_out=$("$TAPIR" check 2>/dev/null || true)
if [ "$VARIANT" != compat ] && grep -q '^sock_recv .* loaded$' <<<"$check_out"; then
	sock_ok=yes
fi
run_tapir_sock() { # ROUND
	local HOOKS=socket # start_tapir's

	[ -n "$sock_ok" ] || return 0
	run_tapir "$1" nginx+tapirsock nginx "$URL" "$cg_nginx" served_nginx nginx+tapirsock
}

if want http; then
	"${pin_server[@]}" build/tools/floor costs >"$tmp/costs.tsv" ||
		{ log "floor costs failed"; : >"$tmp/costs.tsv"; }
	log "helper costs (ns per call): $(tr '\t\n' '= ' <"$tmp/costs.tsv")"
fi

log "nginx :$NGINX_PORT, proxy :$PROXY_PORT, uvicorn :$UVICORN_PORT under $cg_parent;" \
	"wrk -t1 -c$CONNS -d${DURATION}s, $ROUNDS rounds of 8 runs; cases: $CASES"
for r in $(seq "$ROUNDS"); do
	want http || break
	run_plain "$r" nginx nginx "$URL" "$cg_nginx"
	run_tapir "$r" nginx+tapir nginx "$URL" "$cg_nginx" served_nginx
	run_tapir_sock "$r"
	run_floor "$r" watch
	run_floor "$r" skb
	run_plain "$r" nginx+proxy nginx "$PROXY_URL" "$cg_nginx" "$cg_proxy"
	run_plain "$r" uvicorn uvicorn "$UVICORN_URL" "$cg_uvicorn"
	run_tapir "$r" uvicorn+tapir uvicorn "$UVICORN_URL" "$cg_uvicorn" served_uvicorn
done
# What the measured rounds ran (the phases below start tapir on other hooks too).
! want http || variant=$(loaded_variant)

# --- the HTTP path alone: one thread's CPU per exchange, watched against unwatched ----------

# tools/pingpong.c plays wrk and nginx on loopback and moves itself between a watched cgroup and
# an unwatched one every PP_EXCHANGES exchanges, each half on a connection whose server socket
# was made in that half's cgroup: the per-round ratio does not move with the machine's drift,
# which the wrk runs above cannot escape on a shared VM. Then PP_STATS_ROUNDS watched halves
# alone with kernel.bpf_stats_enabled: each program's BPF time per exchange, without wrk's
# noise (or its 32 connections' colder caches). It runs on the hooks tapir picks, then on the
# socket hooks where those are others.
PP_EXCHANGES=${BENCH_PP_EXCHANGES:-2000}
PP_ROUNDS=${BENCH_PP_ROUNDS:-40}
PP_STATS_ROUNDS=${BENCH_PP_STATS_ROUNDS:-10}
# The hooks that follow the process: the socket hooks where the kernel has them.
process_hooks() {
	if [ -n "$sock_ok" ]; then echo socket; else echo syscall; fi
}
# NAME ROUNDS [HOOKS]: into $tmp/NAME.tsv, $tmp/NAME-meta.tsv and NAME's lines of $tmp/bpf.tsv
pingpong_phase() {
	local w=$cg_parent/pingpong u=$cg_mount${cg_self%/}/tapir-bench-unwatched s0 s1 loaded
	local name=$1 rounds=$2 HOOKS=${3:-$HOOKS} # start_tapir's

	mkdir -p "$w" "$u"
	start_tapir
	for i in $(seq 100); do
		scrape
		grep -q 'model_name="pingpong"' "$tmp/metrics" 2>/dev/null && break
		[ "$(msum tapir_watched_cgroups)" -ge 4 ] && break
		sleep 0.1
	done
	scrape
	s0=$(msum baseten_inference_requests_total)
	"${pin_server[@]}" build/pingpong "$PP_EXCHANGES" "$rounds" "$w" "$u" >"$tmp/$name.tsv" ||
		die "pingpong failed"
	bpf_stats_during "$tapir_pid" "${pin_server[@]}" build/pingpong "$PP_EXCHANGES" \
		"$PP_STATS_ROUNDS" "$w" "$u" watched-only >/dev/null || die "pingpong failed"
	bpf_per_req "$name" 0 "$((PP_EXCHANGES * PP_STATS_ROUNDS))"
	echo $$ >"$cg_mount$cg_self/cgroup.procs" 2>/dev/null || true
	sleep 1
	scrape
	s1=$(msum baseten_inference_requests_total)
	loaded=$(loaded_variant | sed -nE 's/.*, ([a-z]+) hooks.*/\1/p')
	stop_tapir
	rmdir "$w" "$u"
	printf 'exchanges\t%s\nrounds\t%s\nstats_rounds\t%s\nseen\t%s\nhooks\t%s\n' "$PP_EXCHANGES" \
		"$rounds" "$PP_STATS_ROUNDS" "$((s1 - s0))" "${loaded:-$HOOKS}" >"$tmp/$name-meta.tsv"
	log "$name: $(awk '{ r += $1 / $2 } END { printf "mean ratio %.3f", r / NR }' "$tmp/$name.tsv"), tapir saw $((s1 - s0)) of $((PP_EXCHANGES * (rounds + PP_STATS_ROUNDS)))"
}
# On hooks that follow the process pingpong's client is watched too (its thread is in the
# watched cgroup): with outbound requests followed (the default) its own calls would be walked
# as well; the server's path alone is what this case measures (the outbound case measures the
# client's). The socket-buffer hooks never see its socket, made in the unwatched cgroup.
if want pingpong; then
	tapir_yaml_extra='outbound: {enabled: false}'
	pingpong_phase pingpong "$PP_ROUNDS"
	[ "$(awk '$1 == "hooks" { print $2 }' "$tmp/pingpong-meta.tsv")" = "$(process_hooks)" ] ||
		pingpong_phase pingpong-process "$PP_ROUNDS" "$(process_hooks)"
	tapir_yaml_extra=
fi

# --- the daemon at scale: 1,250 more watched cgroups (10,000 series), scrapes during load ----

SCALE_CGROUPS=${BENCH_SCALE_CGROUPS:-1250}
scale_phase() {
	local i n rss series times=() t made q0 q1 s0 s1

	start_tapir
	for i in $(seq "$SCALE_CGROUPS"); do mkdir "$cg_parent/scale$i"; done
	for i in $(seq 300); do
		scrape
		[ "$(msum tapir_watched_cgroups)" -ge $((SCALE_CGROUPS + 3)) ] && break
		sleep 0.2
	done
	check_tapir_sees "$URL"
	scrape
	s0=$(msum baseten_inference_requests_total)
	q0=$(served_nginx)
	"${pin_client[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$URL" >"$tmp/wrk-scale.log" &
	n=$!
	sleep 1
	while kill -0 "$n" 2>/dev/null; do
		t=$(curl -sf --max-time 5 -o "$tmp/metrics" -w '%{time_total}' "http://127.0.0.1:$TAPIR_PORT/metrics") ||
			die "a scrape at scale failed"
		times+=("$t")
		sleep 0.1
	done
	wait "$n"
	q1=$(($(served_nginx) - 1))
	sleep 1.5
	scrape
	s1=$(msum baseten_inference_requests_total)
	series=$(msum tapir_series)
	rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$tapir_pid/status")
	made=$(awk '/ requests in / { print $1 }' "$tmp/wrk-scale.log")
	printf 'cgroups\t%s\nseries\t%s\nrss_kib\t%s\nscrapes\t%s\nmade\t%s\nserved\t%s\nseen\t%s\nlost\t%s\n' \
		"$(msum tapir_watched_cgroups)" "$series" "$rss" "$(IFS=,; echo "${times[*]}")" "$made" \
		"$((q1 - q0))" "$((s1 - s0 - 2))" "$(msum tapir_records_lost_total)" >"$tmp/scale.tsv"
	stop_tapir
	for i in $(seq "$SCALE_CGROUPS"); do rmdir "$cg_parent/scale$i"; done
	log "scale: $(tr '\n' ' ' <"$tmp/scale.tsv" | cut -c1-200)"
}
! want scale || scale_phase

# --- the syscall hooks' tax on file I/O, for comparison: what kernels without socket tracepoints
# or trampolines pay (alternating with dd alone) ------------------------------------------------

dd_phase() {
	local r hooks=$HOOKS

	: >"$tmp/dd.tsv"
	for r in $(seq "$ROUNDS"); do
		printf '%s\talone\t%s\n' "$r" "$(dd_tax)" >>"$tmp/dd.tsv"
		HOOKS=syscall
		start_tapir
		printf '%s\tsyscall\t%s\n' "$r" "$(dd_tax)" >>"$tmp/dd.tsv"
		stop_tapir
		HOOKS=$hooks
	done
	log "dd: $(tr '\n' ' ' <"$tmp/dd.tsv")"
}
! want dd || dd_phase

# --- LLM token streams: a stand-in vLLM, as fast as its CPU writes them, with and without tapir

# tools/llm_server.c in a watched cgroup, pinned with the servers; wrk POSTs a streaming chat
# request with include_usage per request and reads each stream to its end (one request per
# stream). The server counts what it wrote (GET /stats): content events, and the usage figures
# tapir must count exactly. Rounds alternate a run without tapir and one with it.
LLM_DURATION=${BENCH_LLM_DURATION:-6}
LLM_ROUNDS=${BENCH_LLM_ROUNDS:-3}
LLM_CONNS=${BENCH_LLM_CONNECTIONS:-256}
LLM_TOKENS=${BENCH_LLM_TOKENS:-64}
LLM_INTERVAL_US=${BENCH_LLM_INTERVAL_US:-0}
LLM_PP_ROUNDS=${BENCH_LLM_PP_ROUNDS:-15}
: >"$tmp/llm.tsv"
: >"$tmp/llm-bpf.tsv"

# The server's counts: token_events streams usages usage_prompt_tokens usage_completion_tokens
# unreported_streams unreported_events (see tools/llm_server.c).
llm_stats() {
	curl -sf --max-time 5 "http://127.0.0.1:$LLM_PORT/stats" | $PY -c '
import json, sys
d = json.load(sys.stdin)
print(*(d[k] for k in ("token_events", "streams", "usages", "usage_prompt_tokens",
                       "usage_completion_tokens", "unreported_streams", "unreported_events")))' ||
		die "llm_server's /stats does not answer"
}

llm_wrk() { # SECONDS: token streams from every connection; wrk's output
	"${pin_client[@]}" wrk -t1 -c"$LLM_CONNS" -d"$1s" -s "$tmp/llm.lua" "$LLM_URL"
}

# A with-tapir run's warm-up with kernel.bpf_stats_enabled: each of tapir's programs' run time
# and runs per token event, as "round name ns_per_event runs_per_event" lines.
llm_bpf_warmup() { # ROUND
	local e0 e1

	e0=$(llm_stats | cut -d' ' -f1)
	bpf_stats_during "$tapir_pid" llm_wrk "$WARMUP" >/dev/null
	e1=$(llm_stats | cut -d' ' -f1)
	awk -v n=$((e1 - e0)) -v r="$1" 'NR == FNR { t[$1] = $2; c[$1] = $3; next }
		{ dt = $2 - t[$1]; dc = $3 - c[$1]
		  if (dc > 0 && n > 0) printf "%s\t%s\t%.1f\t%.3f\n", r, $1, dt / n, dc / n }' \
		"$tmp/bpf0" "$tmp/bpf1" >>"$tmp/llm-bpf.tsv"
}

# One run: ROUND CONFIG (llm, or llm+tapir). A line of $tmp/llm.tsv: round config seconds
# token_events streams_done(wrk) errors server_cpu_s tapir_cpu_s, then the server's and
# tapir's in, out and estimated counts, then the losses ("-" without tapir).
llm_run() {
	local r=$1 config=$2 s0 s1 t0 t1 n0 n1 c0=0 c1=0 out reqs errs i v f
	local tin=- tout=- tst=- losses=- a b

	if [ "$config" = llm+tapir ]; then
		start_tapir
		# One stream must show in tapir's token counts before the run.
		curl -sf -o /dev/null -H 'Content-Type: application/json' -d "$LLM_BODY" "$LLM_URL"
		for i in $(seq 50); do
			scrape
			[ "$(msum baseten_llm_output_tokens_total)" -ge "$LLM_TOKENS" ] && break
			sleep 0.1
		done
		[ "$i" -lt 50 ] || { cat "$tmp/tapir.log" >&2; die "tapir did not count a stream's tokens within 5 s"; }
		llm_bpf_warmup "$r"
	else
		llm_wrk "$WARMUP" >/dev/null
	fi
	sleep 1 # the streams wrk left: the server sees them die, tapir settles them
	note_other_tapirs
	if [ -n "$tapir_pid" ]; then
		scrape
		a="$(msum baseten_llm_input_tokens_total) $(msum baseten_llm_output_tokens_total) $(msum tapir_llm_usage_estimated_total)"
		c0=$(cpu_of_pid "$tapir_pid")
	fi
	read -ra s0 <<<"$(llm_stats)"
	n0=$(cpu_of_cg "$cg_llm")
	t0=$(date +%s%N)
	out=$(llm_wrk "$LLM_DURATION")
	t1=$(date +%s%N)
	n1=$(cpu_of_cg "$cg_llm")
	echo "$out" >>"$tmp/wrk-llm.log"
	reqs=$(awk '/ requests in / { print $1 }' <<<"$out")
	errs=$(awk '/Socket errors:/ { gsub(",", ""); n += $4 + $6 + $8 + $10 }
		/Non-2xx or 3xx responses:/ { n += $NF } END { print n + 0 }' <<<"$out")
	sleep 1
	read -ra s1 <<<"$(llm_stats)"
	if [ -n "$tapir_pid" ]; then
		# Until tapir's count stops moving.
		scrape
		v=$(msum baseten_llm_output_tokens_total)
		for i in $(seq 10); do
			sleep 0.5
			scrape
			[ "$(msum baseten_llm_output_tokens_total)" = "$v" ] && break
			v=$(msum baseten_llm_output_tokens_total)
		done
		c1=$(cpu_of_pid "$tapir_pid")
		read -r tin tout tst <<<"$a"
		b="$(msum baseten_llm_input_tokens_total) $(msum baseten_llm_output_tokens_total) $(msum tapir_llm_usage_estimated_total)"
		read -r i v f <<<"$b"
		tin=$((i - tin)) tout=$((v - tout)) tst=$((f - tst))
		losses=
		for f in "${LOSS_FAMILIES[@]}" tapir_llm_requests_unparsed_total tapir_llm_payload_lost_total; do
			losses+="${losses:+,}$f=$(msum "$f")"
		done
		stop_tapir
	fi
	# Expected: the usage figures written, and the content events of streams without one.
	record_case llm "$r" "$config" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" \
		$((s1[0] - s0[0])) "$reqs" "$errs" \
		"$(awk -v a="$n0" -v b="$n1" 'BEGIN { printf "%.6f", b - a }')" \
		"$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }')" \
		$((s1[3] - s0[3])) $((s1[4] - s0[4] + s1[6] - s0[6])) $((s1[5] - s0[5])) \
		"$tin" "$tout" "$tst" "$losses"
	log "llm round $r $config: $((s1[0] - s0[0])) token events in $(((t1 - t0) / 1000000)) ms," \
		"$reqs streams read whole; tokens in/out/estimated: server $((s1[3] - s0[3]))/$((s1[4] - s0[4] + s1[6] - s0[6]))/$((s1[5] - s0[5])), tapir $tin/$tout/$tst"
}
llm_phase() {
	local r

	mkdir -p "$cg_llm"
	LLM_PORT=$(free_port)
	start_in "$cg_llm" build/tools/llm_server -p "$LLM_PORT" -i "$LLM_INTERVAL_US" -m bench \
		2>"$tmp/llm_server.log"
	llm_pid=$!
	LLM_URL=http://127.0.0.1:$LLM_PORT/v1/chat/completions
	LLM_BODY='{"model":"bench","messages":[{"role":"user","content":"Tell me about tapirs."}],"max_tokens":'$LLM_TOKENS',"stream":true,"stream_options":{"include_usage":true}}'
	cat >"$tmp/llm.lua" <<EOF
-- One streaming chat completion per request, usage asked; wrk reads each to its last chunk.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$LLM_BODY'
EOF
	wait_url "http://127.0.0.1:$LLM_PORT/health" "$llm_pid" "$tmp/llm_server.log"
	log "llm_server :$LLM_PORT (a token event every $LLM_INTERVAL_US us), wrk -t1 -c$LLM_CONNS" \
		"-d${LLM_DURATION}s, $LLM_TOKENS tokens per stream, $LLM_ROUNDS rounds of 2 runs"
	alternate llm_run llm "$LLM_ROUNDS"
	llm_variant=$(loaded_variant)
	stop_pid "$llm_pid"
	llm_pid=
	rmdir "$cg_llm" 2>/dev/null || true
	# Non-LLM traffic pays nothing for the payload capture: the HTTP path alone (pingpong) with
	# llm.enabled false, then true.
	tapir_yaml_extra='llm: {enabled: false}'
	pingpong_phase llm-pingpong-off "$LLM_PP_ROUNDS" "$(process_hooks)"
	tapir_yaml_extra=
	pingpong_phase llm-pingpong-on "$LLM_PP_ROUNDS" "$(process_hooks)"
}
! want llm || llm_phase

# --- outbound requests: wrk as a watched client of nginx, with and without tapir -------------

# wrk runs inside $cg_client, pinned as ever, and tapir's one rule matches that cgroup alone:
# nginx is not watched, so what tapir adds is its outbound path (wrk's writes are requests, its
# reads their answers; every request a record, never an aggregate). Rounds alternate wrk alone
# and wrk with tapir. wrk's count of the answers it read is the ground truth; the requests still
# in flight when wrk stops die unanswered with its sockets, and tapir counts them as 499 (this
# side closed first), so they are counted apart. nginx's own count (stub_status) is there too.
: >"$tmp/outbound.tsv"

# One request from the client's cgroup must show up in tapir before we measure.
outbound_sees() {
	local before i

	scrape
	before=$(msum tapir_outbound_requests_total)
	"${client_in[@]}" curl -sf -o /dev/null "$URL" || die "curl in $cg_client: no answer from $URL"
	for i in $(seq 50); do
		scrape
		[ "$(msum tapir_outbound_requests_total)" -gt "$before" ] && return 0
		sleep 0.1
	done
	cat "$tmp/tapir.log" >&2
	die "tapir did not count an outbound request from $cg_client within 5 s"
}

# One run: ROUND CONFIG (outbound, or outbound+tapir). A line of $tmp/outbound.tsv: round config
# rps p50_ms p99_ms client_cpu_s nginx_cpu_s requests(wrk, answered) errors served(nginx)
# seen(tapir, all) seen_499 tapir_cpu_s losses ("-" without tapir).
outbound_run() {
	local r=$1 config=$2 o0=0 o1=- x0=0 x1=- c0=0 c1=0 n0 n1 m0 m1 q0 q1 s i f losses=-

	if [ "$config" = outbound+tapir ]; then
		start_tapir "$cg_rel/client" 1
		outbound_sees
		warmup_bpf_stats outbound "$r" "$URL"
		sleep 1
		scrape
		o0=$(msum tapir_outbound_requests_total)
		x0=$(msum tapir_outbound_requests_total 'status_code="499"')
		c0=$(cpu_of_pid "$tapir_pid")
	else
		warmup "$URL"
	fi
	note_other_tapirs
	q0=$(served_nginx)
	n0=$(cpu_of_cg "$cg_client")
	m0=$(cpu_of_cg "$cg_nginx")
	run_wrk "$URL"
	m1=$(cpu_of_cg "$cg_nginx")
	n1=$(cpu_of_cg "$cg_client")
	q1=$(($(served_nginx) - 1)) # the second status request counted itself
	note_other_tapirs
	if [ -n "$tapir_pid" ]; then
		# The last records, and the requests wrk's exit cut, may still be on their way: until
		# the count stops moving.
		sleep 1
		scrape
		o1=$(msum tapir_outbound_requests_total)
		for i in $(seq 10); do
			sleep 0.5
			scrape
			s=$(msum tapir_outbound_requests_total)
			[ "$s" = "$o1" ] && break
			o1=$s
		done
		x1=$(msum tapir_outbound_requests_total 'status_code="499"')
		c1=$(cpu_of_pid "$tapir_pid")
		losses=
		for f in "${LOSS_FAMILIES[@]}"; do
			losses+="${losses:+,}$f=$(msum "$f")"
		done
		grep -E '^tapir_(records_lost|connections_evicted|parse_failures|ignored_connections)_total\{' \
			"$tmp/metrics" | awk -v c="$config" -v r="$r" '$NF != 0 { print "round " r " " c ": " $0 }' >>"$tmp/losses" || true
		stop_tapir
		o1=$((o1 - o0)) x1=$((x1 - x0))
	fi
	record_case outbound "$r" "$config" "$rps" "$p50" "$p99" \
		"$(awk -v a="$n0" -v b="$n1" 'BEGIN { printf "%.6f", b - a }')" \
		"$(awk -v a="$m0" -v b="$m1" 'BEGIN { printf "%.6f", b - a }')" \
		"$wrk_reqs" "$wrk_errs" "$((q1 - q0))" "$o1" "$x1" \
		"$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }')" "$losses"
	log "outbound round $r $config: $rps req/s, p50 $p50 ms, p99 $p99 ms, wrk read $wrk_reqs answers," \
		"nginx served $((q1 - q0)), tapir saw $o1 ($x1 of them 499)"
}

outbound_phase() {
	local r

	mkdir -p "$cg_client"
	client_in=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$cg_client")
	log "outbound: wrk -t1 -c$CONNS -d${DURATION}s in $cg_client, the only cgroup tapir watches," \
		"$ROUNDS rounds of 2 runs"
	alternate outbound_run outbound "$ROUNDS"
	client_in=()
	outbound_variant=$(loaded_variant)
	rmdir "$cg_client"
}
! want outbound || outbound_phase

# --- HTTP/2: nghttpd under h2load, alone and with tapir following every stream -------------

# nghttpd (h2c with prior knowledge, one thread) serves nginx's 1 KiB file from a cgroup of its
# own, pinned with the servers, and tapir's one rule matches that cgroup alone; h2load, pinned as
# wrk is, opens H2_CLIENTS connections with up to H2_STREAMS streams in flight on each and makes
# H2_REQUESTS requests. A count, not a duration: every stream h2load starts ends answered (with
# -D it abandons those in flight when the time is up, which tapir counts and h2load does not), so
# h2load's own tally is the ground truth. Rounds alternate nghttpd alone and nghttpd with tapir.
# h2load gives no percentiles, only the min, mean and max of its "time for request"; its
# per-request --log-file costs it more CPU than nghttpd spends, and then h2load is what gets
# measured.
H2_CLIENTS=${BENCH_H2_CLIENTS:-8}
H2_STREAMS=${BENCH_H2_STREAMS:-100}
H2_REQUESTS=${BENCH_H2_REQUESTS:-1000000}
H2_WARMUP=$((H2_REQUESTS / 5))
: >"$tmp/h2.tsv"

# Sets h2_secs, rps, h2_mean, h2_max (ms), h2_done (requests succeeded), h2_errs (failed, errored,
# timed out, or not 2xx) and h2_data (DATA bytes received) from one h2load run of N requests.
run_h2load() { # N [CLIENTS]
	local out c=${2:-$H2_CLIENTS}

	out=$("${pin_client[@]}" h2load -c"$c" -m"$H2_STREAMS" -n"$1" "$H2_URL" 2>&1) ||
		{ echo "$out" >&2; die "h2load failed"; }
	echo "$out" >>"$tmp/h2load.log"
	# finished in 3.63s, 275160.47 req/s, 276.58MB/s (or 68.51ms, ...)
	read -r h2_secs rps <<<"$(awk '/^finished in / { gsub(",", ""); v = $3
		u = v ~ /ms$/ ? 1e-3 : v ~ /us$/ ? 1e-6 : 1; sub(/[a-z]+$/, "", v); printf "%.6f %s\n", v * u, $4 }' <<<"$out")"
	# requests: N total, N started, N done, N succeeded, N failed, N errored, N timeout
	# status codes: N 2xx, N 3xx, N 4xx, N 5xx
	h2_done=$(awk '/^requests:/ { print $8 }' <<<"$out")
	h2_errs=$(awk '/^requests:/ { n += $10 + $12 + $14 } /^status codes:/ { n += $5 + $7 + $9 }
		END { print n + 0 }' <<<"$out")
	h2_data=$(sed -n 's/^traffic: .*(\([0-9]*\)) data.*/\1/p' <<<"$out")
	h2_mean=$(to_ms "$(awk '/^time for request:/ { print $6 }' <<<"$out")")
	h2_max=$(to_ms "$(awk '/^time for request:/ { print $5 }' <<<"$out")")
	[ -n "$h2_secs" ] && [ -n "$rps" ] && [ -n "$h2_done" ] && [ -n "$h2_data" ] &&
		[ -n "$h2_mean" ] && [ -n "$h2_max" ] ||
		{ echo "$out" >&2; die "cannot parse h2load output"; }
}

# Scrapes until the sum of FAMILY stops moving (the last streams' events may still be in the ring
# buffers) and prints it; $tmp/metrics holds that last scrape.
settled() { # FAMILY
	local v s i

	scrape
	v=$(msum "$1")
	for i in $(seq 10); do
		sleep 0.5
		scrape
		s=$(msum "$1")
		[ "$s" = "$v" ] && break
		v=$s
	done
	echo "$v"
}

# One stream, on a connection opened after tapir started, must show up before we measure.
h2_sees() {
	counts_within_5s "an HTTP/2 stream to nghttpd" run_h2load 1 1
}

# One run: ROUND CONFIG (h2, or h2+tapir). A line of $tmp/h2.tsv: round config seconds rps
# mean_ms max_ms nghttpd_cpu_s streams(h2load's succeeded) errors data_bytes seen(tapir, all) seen_200
# seen_bytes tapir_cpu_s losses ("-" without tapir).
h2_run() {
	local r=$1 config=$2 v0 v1=- k0 k1=- b0 b1=- c0=0 c1=0 n0 n1 f losses=-

	if [ "$config" = h2+tapir ]; then
		start_tapir "$cg_rel/h2" 1
		h2_sees
		# The warm-up, with kernel.bpf_stats_enabled: tapir's programs per stream.
		bpf_stats_during "$tapir_pid" run_h2load "$H2_WARMUP"
		bpf_per_req h2 "$r" "$h2_done"
		sleep 1
		v0=$(settled baseten_inference_requests_total)
		k0=$(msum baseten_inference_requests_total 'status_code="200"')
		b0=$(msum baseten_response_size_bytes_sum)
		c0=$(cpu_of_pid "$tapir_pid")
	else
		run_h2load "$H2_WARMUP"
	fi
	note_other_tapirs
	n0=$(cpu_of_cg "$cg_h2")
	run_h2load "$H2_REQUESTS"
	n1=$(cpu_of_cg "$cg_h2")
	note_other_tapirs
	if [ -n "$tapir_pid" ]; then
		sleep 1
		v1=$(settled baseten_inference_requests_total)
		k1=$(msum baseten_inference_requests_total 'status_code="200"')
		b1=$(msum baseten_response_size_bytes_sum)
		c1=$(cpu_of_pid "$tapir_pid")
		losses=
		for f in "${LOSS_FAMILIES[@]}" tapir_http2_lost_total; do
			losses+="${losses:+,}$f=$(msum "$f")"
		done
		grep -E '^tapir_(records_lost|connections_evicted|parse_failures|ignored_connections|http2_lost)_total\{' \
			"$tmp/metrics" | awk -v c="$config" -v r="$r" '$NF != 0 { print "round " r " " c ": " $0 }' >>"$tmp/losses" || true
		stop_tapir
		v1=$((v1 - v0)) k1=$((k1 - k0)) b1=$((b1 - b0))
	fi
	record_case h2 "$r" "$config" "$h2_secs" "$rps" "$h2_mean" "$h2_max" \
		"$(awk -v a="$n0" -v b="$n1" 'BEGIN { printf "%.6f", b - a }')" \
		"$h2_done" "$h2_errs" "$h2_data" "$v1" "$k1" "$b1" \
		"$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", b - a }')" "$losses"
	log "h2 round $r $config: $rps streams/s, mean $h2_mean ms, max $h2_max ms; h2load: $h2_done" \
		"succeeded, $h2_errs errors, $h2_data DATA bytes; tapir: $v1 requests ($k1 200), $b1 bytes"
}

h2_phase() {
	local r i

	mkdir -p "$cg_h2"
	H2_PORT=$(free_port)
	start_in "$cg_h2" nghttpd --no-tls -a 127.0.0.1 -d "$tmp/nginx/html" "$H2_PORT" >"$tmp/nghttpd.log" 2>&1
	h2_pid=$!
	H2_URL=http://127.0.0.1:$H2_PORT/static.txt
	for i in $(seq 100); do
		h2load -n1 -c1 "$H2_URL" 2>/dev/null | grep -q '^status codes: 1 2xx' && break
		kill -0 "$h2_pid" 2>/dev/null || { cat "$tmp/nghttpd.log" >&2; die "nghttpd exited"; }
		sleep 0.1
	done
	[ "$i" -lt 100 ] || { cat "$tmp/nghttpd.log" >&2; die "nghttpd does not answer on $H2_URL"; }
	log "h2: nghttpd :$H2_PORT in $cg_h2, the only cgroup tapir watches; h2load -c$H2_CLIENTS" \
		"-m$H2_STREAMS -n$H2_REQUESTS, $ROUNDS rounds of 2 runs"
	alternate h2_run h2 "$ROUNDS"
	h2_variant=$(loaded_variant)
	stop_pid "$h2_pid"
	h2_pid=
	rmdir "$cg_h2" 2>/dev/null || true
}
! want h2 || h2_phase

# --- report --------------------------------------------------------------------------------

commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- bpf user include tools 2>/dev/null || commit="$commit+changes"
cp "$ROUNDS_TSV" build/bench-rounds.tsv
$PY tools/bench-report.py --rounds "$ROUNDS_TSV" --bpf "$tmp/bpf.tsv" --scale "$tmp/scale.tsv" \
	--pingpong "$tmp/pingpong.tsv" --pingpong-meta "$tmp/pingpong-meta.tsv" \
	--pingpong-process "$tmp/pingpong-process.tsv" --pingpong-process-meta "$tmp/pingpong-process-meta.tsv" \
	--dd "$tmp/dd.tsv" --costs "$tmp/costs.tsv" --md "$OUT_MD" --json "$OUT_JSON" \
	--llm "$tmp/llm.tsv" --llm-bpf "$tmp/llm-bpf.tsv" --llm-pingpong-off "$tmp/llm-pingpong-off.tsv" \
	--llm-pingpong-on "$tmp/llm-pingpong-on.tsv" --llm-duration "$LLM_DURATION" \
	--llm-connections "$LLM_CONNS" --llm-tokens "$LLM_TOKENS" --llm-interval-us "$LLM_INTERVAL_US" \
	--llm-variant "${llm_variant:-?}" \
	--outbound "$tmp/outbound.tsv" --outbound-variant "${outbound_variant:-?}" \
	--h2 "$tmp/h2.tsv" --h2-variant "${h2_variant:-?}" --h2-clients "$H2_CLIENTS" \
	--h2-streams "$H2_STREAMS" --h2-requests "$H2_REQUESTS" \
	--duration "$DURATION" --connections "$CONNS" --dd-bytes "$DD_BYTES" --commit "$commit" \
	--variant "${variant:-?}" --hooks "$HOOKS" --others "$others" --pinned "$([ "$(nproc)" -ge 2 ] && echo yes || echo no)"
echo
cat "$OUT_MD"
if [ -s "$tmp/losses" ]; then
	echo
	echo "Non-zero loss series:"
	cat "$tmp/losses"
fi
echo
echo "Written to ${OUT_MD#"$PWD"/} and ${OUT_JSON#"$PWD"/}"
