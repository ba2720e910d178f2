#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Measures what tapir costs the servers it watches, side by side with the alternative, at
# saturation under wrk. Every round runs, in turn: nginx alone; nginx with tapir; nginx behind an
# nginx reverse proxy (how proxy-based metrics are taken); a uvicorn model server alone; uvicorn
# with tapir. Writes build/bench.md and build/bench.json (every figure, the machine, the kernel,
# the commit); tools/bench-report.py turns the rounds into both.
set -euo pipefail

DURATION=${BENCH_DURATION:-8}
ROUNDS=${BENCH_ROUNDS:-5}
CONNS=${BENCH_CONNECTIONS:-32}
VARIANT=${BENCH_VARIANT:-auto} # build of the HTTP programs: auto, loop or compat
HOOKS=${BENCH_HOOKS:-auto}     # where they watch: auto, socket or syscall
DD_BYTES=${BENCH_DD_BYTES:-500000}
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

[ "$(id -u)" -eq 0 ] || die "needs root (BPF, cgroups)"
[ -x "$TAPIR" ] || die "$TAPIR is missing; run make first"
for t in nginx wrk curl taskset awk dd bpftool git; do
	command -v "$t" >/dev/null || die "$t is not installed"
done
$PY -c 'import fastapi, uvicorn' 2>/dev/null || die "python3-fastapi and python3-uvicorn are missing"

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

tmp=$(mktemp -d /tmp/tapir-bench.XXXXXX)
nginx_pid=
proxy_pid=
uvicorn_pid=
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
	for cg in "$cg_nginx" "$cg_proxy" "$cg_uvicorn"; do
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

	out=$("${pin_client[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$1")
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
	"${pin_client[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$1" >/dev/null
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
# of tapir's programs per request, as "server round name ns_per_req runs_per_req" lines.
# Statistics cost two clock reads per program run, so the measured runs go without them.
warmup_bpf_stats() { # SERVER ROUND URL
	local out n

	sysctl -qw kernel.bpf_stats_enabled=1
	bpf_prog_stats "$tapir_pid" >"$tmp/bpf0"
	out=$("${pin_client[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "$3")
	bpf_prog_stats "$tapir_pid" >"$tmp/bpf1"
	sysctl -qw kernel.bpf_stats_enabled=0
	n=$(awk '/ requests in / { print $1 }' <<<"$out")
	awk -v n="$n" -v s="$1" -v r="$2" 'NR == FNR { t[$1] = $2; c[$1] = $3; next }
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

# Sum of every series of one family in the last scrape.
msum() {
	awk -v f="$1" '$1 == f || index($1, f "{") == 1 { s += $NF } END { printf "%.0f", s }' \
		"$tmp/metrics"
}

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
			[ "$(msum tapir_watched_cgroups)" -ge 3 ]; then
			break
		fi
		sleep 0.2
	done
	if [ "$i" -eq 300 ]; then
		cat "$tmp/tapir.log" >&2
		die "tapir did not come up in 60 s (BPF programs attached, 3 cgroups watched)"
	fi
	if grep -Eq '^tapir_bpf_program_attached\{.*\} 0$' "$tmp/metrics"; then
		log "programs not attached: $(grep -E '^tapir_bpf_program_attached\{.*\} 0$' "$tmp/metrics" |
			tr '\n' ' ')"
	fi
}

# One request to $1 must show up as one request in tapir before we measure.
check_tapir_sees() {
	local before i

	scrape
	before=$(msum baseten_inference_requests_total)
	curl -sf -o /dev/null "$1"
	for i in $(seq 50); do
		scrape
		[ "$(msum baseten_inference_requests_total)" -gt "$before" ] && return 0
		sleep 0.1
	done
	cat "$tmp/tapir.log" >&2
	die "tapir did not count a request to $1 within 5 s"
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

# A run with tapir watching: ROUND CONFIG SERVER_NAME URL CGROUP SERVED_FN
run_tapir() {
	local r=$1 config=$2 server=$3 url=$4 cg=$5 served_fn=$6 s0 s1 c0 c1 n0 n1 q0 q1 s i dd f losses=

	start_tapir
	check_tapir_sees "$url"
	warmup_bpf_stats "$server" "$r" "$url"
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

log "nginx :$NGINX_PORT, proxy :$PROXY_PORT, uvicorn :$UVICORN_PORT under $cg_parent;" \
	"wrk -t1 -c$CONNS -d${DURATION}s, $ROUNDS rounds of 5 runs"
for r in $(seq "$ROUNDS"); do
	run_plain "$r" nginx nginx "$URL" "$cg_nginx"
	run_tapir "$r" nginx+tapir nginx "$URL" "$cg_nginx" served_nginx
	run_plain "$r" nginx+proxy nginx "$PROXY_URL" "$cg_nginx" "$cg_proxy"
	run_plain "$r" uvicorn uvicorn "$UVICORN_URL" "$cg_uvicorn"
	run_tapir "$r" uvicorn+tapir uvicorn "$UVICORN_URL" "$cg_uvicorn" served_uvicorn
done

# --- the HTTP path alone: one thread's CPU per exchange, watched against unwatched ----------

# tools/pingpong.c plays wrk and nginx on one loopback connection and moves itself between a
# watched cgroup and an unwatched one every PP_EXCHANGES exchanges: the per-round ratio does not
# move with the machine's drift, which the wrk runs above cannot escape on a shared VM.
PP_EXCHANGES=${BENCH_PP_EXCHANGES:-2000}
PP_ROUNDS=${BENCH_PP_ROUNDS:-40}
pingpong_phase() {
	local w=$cg_parent/pingpong u=$cg_mount${cg_self%/}/tapir-bench-unwatched s0 s1

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
	"${pin_server[@]}" build/pingpong "$PP_EXCHANGES" "$PP_ROUNDS" "$w" "$u" >"$tmp/pingpong.tsv" ||
		die "pingpong failed"
	echo $$ >"$cg_mount$cg_self/cgroup.procs" 2>/dev/null || true
	sleep 1
	scrape
	s1=$(msum baseten_inference_requests_total)
	stop_tapir
	rmdir "$w" "$u"
	printf 'exchanges\t%s\nrounds\t%s\nseen\t%s\n' "$PP_EXCHANGES" "$PP_ROUNDS" "$((s1 - s0))" \
		>"$tmp/pingpong-meta.tsv"
	log "pingpong: $(awk '{ r += $1 / $2 } END { printf "mean ratio %.3f", r / NR }' "$tmp/pingpong.tsv"), tapir saw $((s1 - s0)) of $((PP_EXCHANGES * PP_ROUNDS))"
}
pingpong_phase

# --- the daemon at scale: 1,000 more watched cgroups, scrapes during load ------------------

SCALE_CGROUPS=${BENCH_SCALE_CGROUPS:-1000}
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
scale_phase

# --- the syscall hooks' tax on file I/O, for comparison: what kernels without socket tracepoints
# or trampolines pay (alternating with dd alone) ------------------------------------------------

# What the measured rounds ran (the dd phase below starts tapir on other hooks).
variant=$(grep -o 'http: [a-z]* variant loaded[^;]*' "$tmp/tapir.log" | tail -1 || true)

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
dd_phase

# --- report --------------------------------------------------------------------------------

commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- bpf user include tools 2>/dev/null || commit="$commit+changes"
cp "$ROUNDS_TSV" build/bench-rounds.tsv
$PY tools/bench-report.py --rounds "$ROUNDS_TSV" --bpf "$tmp/bpf.tsv" --scale "$tmp/scale.tsv" \
	--pingpong "$tmp/pingpong.tsv" --pingpong-meta "$tmp/pingpong-meta.tsv" \
	--dd "$tmp/dd.tsv" --md "$OUT_MD" --json "$OUT_JSON" \
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
