#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# One kernel of the matrix: tapir watching nginx, busybox httpd and a stand-in vLLM
# (tools/llm_server.c) in test cgroups, and a client in a test cgroup calling an nginx outside
# them (outbound requests); known traffic from counting clients, tapir's figures compared with
# the clients' own. /init of the matrix's initramfs; tools/kernel-matrix.sh runs it
# as it is on the host too.
#
# Environment (the VM's defaults in brackets):
#   MATRIX_ROOT     where tapir, http_client, llm_server and nginx are [/]
#   MATRIX_CGROOT   the cgroup v2 mount [/sys/fs/cgroup, mounted here]
#   MATRIX_CGREL    nginx's test cgroup, relative to the mount [/matrix]; busybox httpd runs in
#                   MATRIX_CGREL-httpd, llm_server in MATRIX_CGREL-llm, the outbound client in
#                   MATRIX_CGREL-out, and the nginx it calls in MATRIX_CGREL-remote, which no
#                   rule watches; nghttpd (HTTP/2) in MATRIX_CGREL-h2
#   MATRIX_TMP      scratch directory [/tmp]
#   MATRIX_PORT0    first of the seven ports used (tapir, nginx, httpd, llm_server, the remote
#                   nginx, the remote llm_server, nghttpd) [9464]
#   MATRIX_VARIANT  tapir --bpf-variant [auto]
#   MATRIX_HOOKS    tapir --bpf-hooks [auto]
#   MATRIX_DD_BYTES bytes of the dd bs=1 runs that time the tax on file I/O [400000]
#   MATRIX_CPU_REQUESTS keep-alive requests that time nginx's CPU per request [1000]
#   MATRIX_SERVERS  the servers driven, separated by spaces or commas [nginx httpd llm out h2]
#                   (out: the outbound case; h2: nghttpd driven by h2load, where both exist)
#   MATRIX_START_S  seconds tapir may take to serve /metrics [240]: TCG verifies slowly
# busybox's applets come first in PATH on both sides, so the VM and the host run the same tools.
# Prints "MATRIX-RESULT kernel=K variant=V forced=F attached=A/T notattached=PROG:REASON,...
# sent=N counted=N dd_cs=B1,T1,T2,B2 dd_runs=N result=PASS|FAIL why=..."; tapir's own log goes to the
# console as "tapir| ". dd_cs: centiseconds of dd bs=1 (a read and a write per byte, no socket,
# outside every watched cgroup) before tapir starts (B1), while it runs after the traffic (T1),
# while its daemon is paused with its programs attached (T2: the hooks' tax alone), and after
# it stopped (B2). dd_runs: how many times tapir's BPF programs ran during T2's dd.
# llm_sent=IN/OUT/EST and llm_counted=IN/OUT/EST: the LLM tokens in and out and the requests
# counted by estimate, as busybox wget received them from llm_server (its usage figures, and its
# content events where a stream has no usage) and as tapir counts them ("-": llm not driven).
# out_sent=REQ/404/NAMED/IN/OUT and out_counted=...: the outbound requests to nginx, those
# answered 404 and those to the destination a rule names, and the tokens in and out of an LLM
# request sent to a second llm_server, as the clients counted them and as tapir counts them ("-":
# out not driven); tapir's figures must equal the clients' for every status and destination.
# nginx_cpu_us=WITH,WITHOUT: nginx's CPU per keep-alive request with tapir's programs attached
# and after tapir stopped.
# insns=PROGRAM:N: the HTTP program that took this kernel's verifier the most instructions (its
# limit is 1M), over every build tapir tried: the headroom the BPF code has left there.
# h2_sent=REQ/404/BYTES/IGNORED and h2_counted=...: HTTP/2 requests to nghttpd (h2c, prior
# knowledge), those answered 404 and their DATA bytes, as h2load counted them, and the HTTP/2
# connections tapir should count ignored; tapir's figures: baseten_* of matrix-h2 and
# tapir_ignored_connections_total{reason="http2"}. Both builds follow each stream (IGNORED 0;
# "-": h2 not driven).
# As /init it checks the build tapir picks (the socket-buffer hooks where the loop build loads),
# the loop build on syscall hooks (the other hooks' baseline in the same VM), the compat build,
# then the loop build on the socket-layer hooks (socket from 6.3, fexit before; SKIP before
# 5.17), and powers off.

if [ "$$" = 1 ]; then
	/bin/busybox --install -s /bin
	export PATH=/bin
	mount -t proc proc /proc
	mount -t sysfs sys /sys
	mount -t devtmpfs dev /dev 2>/dev/null
	mount -t tmpfs tmp /tmp
	mount -t cgroup2 cgroup2 /sys/fs/cgroup
	mount -t bpf bpf /sys/fs/bpf
	ip link set lo up
	# After a newline: the firmware leaves escape sequences at the start of the line.
	echo
	echo "MATRIX-BOOTED kernel=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)"
	# The compat build too, where the kernel would pick loop: the kernels of users who run
	# compat (5.11 to 5.16) sit between these.
	MATRIX_VARIANT=auto MATRIX_TMP=/tmp/auto sh /init
	MATRIX_VARIANT=auto MATRIX_HOOKS=syscall MATRIX_TMP=/tmp/syscall MATRIX_PORT0=9484 sh /init
	MATRIX_VARIANT=compat MATRIX_TMP=/tmp/compat MATRIX_PORT0=9474 sh /init
	# Where the loop build loads (5.17+) tapir picks the socket-buffer hooks: the loop build
	# on the socket-layer hooks it would take without them (socket 6.3+, else fexit), every
	# server.
	case $(uname -r) in
	4.* | 5.[0-9].* | 5.1[0-6].*)
		echo "MATRIX-RESULT kernel=$(uname -r) variant=none forced=loop+socket attached=0/0" \
			"notattached=none sent=0 counted=0 insns=- result=SKIP why=no bpf_loop before 5.17" ;;
	5.* | 6.[0-2].*)
		MATRIX_VARIANT=loop MATRIX_HOOKS=fexit MATRIX_TMP=/tmp/socket MATRIX_PORT0=9494 \
			sh /init ;;
	*)
		MATRIX_VARIANT=loop MATRIX_HOOKS=socket MATRIX_TMP=/tmp/socket MATRIX_PORT0=9494 \
			sh /init ;;
	esac
	sync
	poweroff -f
fi

ROOT=${MATRIX_ROOT:-}
CGROOT=${MATRIX_CGROOT:-/sys/fs/cgroup}
CGREL=${MATRIX_CGREL:-/matrix}
TMP=${MATRIX_TMP:-/tmp}
VARIANT=${MATRIX_VARIANT:-auto}
HOOKS=${MATRIX_HOOKS:-auto}
FORCED=$VARIANT
[ "$HOOKS" = auto ] || FORCED="$VARIANT+$HOOKS"
DD_BYTES=${MATRIX_DD_BYTES:-400000}
CPU_REQUESTS=${MATRIX_CPU_REQUESTS:-1000}
# Commas too: the kernel command line that carries it into the VM splits words at spaces.
SERVERS=$(echo "${MATRIX_SERVERS:-nginx httpd llm out h2}" | tr ',' ' ')
START_S=${MATRIX_START_S:-240}
P0=${MATRIX_PORT0:-9464}
TP=$P0 NGX=$((P0 + 1)) HTTPD=$((P0 + 2)) LLM=$((P0 + 3)) REMOTE=$((P0 + 4)) REMOTE_LLM=$((P0 + 5))
H2=$((P0 + 6))
CG_NGX=$CGROOT$CGREL
CG_HTTPD=$CGROOT$CGREL-httpd
CG_LLM=$CGROOT$CGREL-llm
CG_OUT=$CGROOT$CGREL-out
CG_H2=$CGROOT$CGREL-h2
# A sibling of the watched cgroups that no rule names: a rule watches its cgroup and those below.
CG_REMOTE=$CGROOT$CGREL-remote
CLIENT=$ROOT/http_client
KERNEL=$(uname -r)
why=""
tapir_pid=""
relay_pid=""
mkdir -p "$TMP"

say() { echo "matrix-guest: $*"; }
fail() { why="${why:+$why; }$*"; }
serving() { case " $SERVERS " in *" $1 "*) return 0 ;; esac; return 1; }
NGHTTPD=$ROOT/nghttpd H2LOAD=$ROOT/h2load
[ -x "$NGHTTPD" ] || NGHTTPD=$(command -v nghttpd)
[ -x "$H2LOAD" ] || H2LOAD=$(command -v h2load)
# HTTP/2 where the initramfs (or the host) has nghttpd and h2load.
if serving h2 && { [ -z "$NGHTTPD" ] || [ -z "$H2LOAD" ]; }; then
	say "no nghttpd or h2load: the HTTP/2 case is not driven"
	SERVERS=$(echo " $SERVERS " | sed 's/ h2 / /')
fi

# Kills what runs in a test cgroup and removes it; a process killed with -9 may take a moment to
# leave, and rmdir fails until it has (cgroup files have no size: read them to know).
drop_cgroup() {
	[ -d "$1" ] || return 0
	i=0
	while procs=$(cat "$1/cgroup.procs") && [ -n "$procs" ] && [ "$i" -lt 50 ]; do
		for p in $procs; do kill -9 "$p" 2>/dev/null; done
		i=$((i + 1))
		sleep 0.1
	done
	rmdir "$1" 2>/dev/null || say "could not remove $1: $(tr '\n' ' ' <"$1/cgroup.procs")"
}

# dd bs=1 of DD_BYTES: centiseconds, from /proc/uptime (what busybox offers everywhere).
dd_cs() {
	t0=$(sed 's/^\([0-9]*\)\.\([0-9]*\) .*/\1\2/' /proc/uptime)
	dd if=/dev/zero of=/dev/null bs=1 count="$DD_BYTES" 2>/dev/null
	t1=$(sed 's/^\([0-9]*\)\.\([0-9]*\) .*/\1\2/' /proc/uptime)
	echo $((t1 - t0))
}

# nginx's CPU per request (cgroup v2 cpu.stat, microseconds) over CPU_REQUESTS keep-alive
# requests for the 1 KiB file; "-" when nginx is not driven or the client failed.
nginx_cpu() {
	serving nginx && [ -r "$CG_NGX/cpu.stat" ] || {
		echo -
		return
	}
	paths=$(awk -v n="$CPU_REQUESTS" 'BEGIN { for (i = 0; i < n; i++) printf "/1k.html " }')
	u0=$(awk '$1 == "usage_usec" { print $2 }' "$CG_NGX/cpu.stat")
	# shellcheck disable=SC2086 # one argument per path
	"$CLIENT" 127.0.0.1 "$NGX" $paths >/dev/null 2>&1 || {
		echo -
		return
	}
	u1=$(awk '$1 == "usage_usec" { print $2 }' "$CG_NGX/cpu.stat")
	awk -v a="$u0" -v b="$u1" -v n="$CPU_REQUESTS" 'BEGIN { printf "%.1f\n", (b - a) / n }'
}

# Runs of the BPF programs loaded, from bpftool's run_cnt: in the VM, this run's tapir's only.
# (On the host, every program's: Debian's bpftool does not say which process holds one.)
prog_runs() {
	BPFTOOL=$ROOT/bpftool
	[ -x "$BPFTOOL" ] || BPFTOOL=$(command -v bpftool)
	"$BPFTOOL" prog show 2>/dev/null |
		awk '{ for (i = 1; i < NF; i++) if ($i == "run_cnt") s += $(i + 1) } END { printf "%d\n", s }'
}

finish() {
	trap - INT TERM HUP
	if [ -n "$tapir_pid" ]; then
		# After the checks (the tallies are settled): nginx's CPU per request with tapir's
		# programs attached, then without them, further down.
		cpu_with=$(nginx_cpu)
		dd_t1=$(dd_cs)
		# The daemon paused, its BPF programs still attached: the tax of the hooks alone, and
		# how many times they ran meanwhile (the kernel counts runs with bpf_stats_enabled).
		kill -STOP "$tapir_pid" 2>/dev/null
		echo 1 >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null
		r0=$(prog_runs)
		dd_t2=$(dd_cs)
		dd_runs=$(($(prog_runs) - r0))
		echo 0 >/proc/sys/kernel/bpf_stats_enabled 2>/dev/null
		kill -CONT "$tapir_pid" 2>/dev/null
		kill "$tapir_pid" 2>/dev/null
		wait "$tapir_pid" 2>/dev/null
		dd_b2=$(dd_cs)
		cpu_without=$(nginx_cpu)
	fi
	drop_cgroup "$CG_NGX"
	drop_cgroup "$CG_HTTPD"
	drop_cgroup "$CG_LLM"
	drop_cgroup "$CG_OUT"
	drop_cgroup "$CG_REMOTE"
	drop_cgroup "$CG_H2"
	# The console relay ends with tapir's output.
	[ -z "$relay_pid" ] || wait "$relay_pid"
	result=PASS
	[ -n "$why" ] && result=FAIL
	if [ "$result" != PASS ] && [ -s "$TMP/metrics" ]; then
		# Requests still in flight (an HTTP/2 stream never ended) and the records tapir
		# drained, besides the counts and losses.
		echo "---- last scrape: series of the test cgroups, records drained and loss counters above 0"
		grep -E '^(baseten_(inference_requests_total|concurrent_requests|re(quest|sponse)_size_bytes_(sum|count)|llm_(in|out)put_tokens_total)\{.*model_name="matrix|tapir_records_total|tapir_llm_usage_estimated_total\{.*model_name="matrix|tapir_outbound_requests_total\{.*model_name="matrix|tapir_(records_lost|parse_failures|connections_evicted|records_unlabelled|llm_requests_unparsed|llm_payload_lost|http2_lost|ignored_connections)_total)' \
			"$TMP/metrics" | grep -v ' 0$'
	fi
	echo "MATRIX-RESULT kernel=$KERNEL variant=${variant:-none} forced=$FORCED" \
		"attached=${attached:-0}/${total:-0} notattached=${notattached:-none}" \
		"sent=${sent:-0} counted=${counted:-0}" \
		"llm_sent=${llm_sent:--} llm_counted=${llm_counted:--}" \
		"out_sent=${out_sent:--} out_counted=${out_counted:--}" \
		"h2_sent=${h2_sent:--} h2_counted=${h2_counted:--}" \
		"dd_cs=${dd_b1:-0},${dd_t1:-0},${dd_t2:-0},${dd_b2:-0} dd_runs=${dd_runs:--}" \
		"nginx_cpu_us=${cpu_with:--},${cpu_without:--}" \
		"insns=$(verifier_peak)" \
		"result=$result why=${why:-none}"
	[ "$result" = PASS ]
	exit $?
}
# PROGRAM:N, the HTTP program whose load took the verifier the most instructions (of its 1M) in
# tapir's log (TAPIR_VERIFIER_STATS), over every load it tried; "-" when none was logged.
verifier_peak() {
	sed -n 's/.*http: verifier: \([^ ]*\) processed \([0-9]*\) insns.*/\2 \1/p' \
		"$TMP/tapir.log" 2>/dev/null | sort -n | tail -n 1 | awk '{ print $2 ":" $1 }' | grep . ||
		echo -
}
trap 'fail "interrupted"; finish' INT TERM HUP

# A scrape gives up after 10 s: a scrape that hangs must show as a failure, not as a silent guest.
# (timeout, not wget's own -T: Debian 12's busybox wget crashes with -T.)
scrape() { timeout 10 wget -q -O "$TMP/metrics" "http://127.0.0.1:$TP/metrics" 2>/dev/null; }

# metric NAME [SELECTOR...]: the sum of the samples of NAME whose labels contain every SELECTOR.
metric() {
	name=$1
	shift
	awk -v name="$name" -v sels="$*" '
		BEGIN { n = split(sels, sel, " ") }
		/^[^#]/ {
			split($0, a, /[{ ]/)
			if (a[1] != name)
				next
			for (i = 1; i <= n; i++)
				if (!index($0, sel[i]))
					next
			s += $NF
		}
		END { printf "%d\n", s }' "$TMP/metrics"
}

# --- tapir, with a rule per server cgroup, its log relayed to the console -----------------------

mkdir -p "$CG_NGX" "$CG_HTTPD" "$CG_LLM" "$CG_OUT" "$CG_REMOTE" "$CG_H2" || {
	fail "cannot create the test cgroups under $CGROOT"
	finish
}
cat >"$TMP/tapir.yaml" <<EOF
listen: "127.0.0.1:$TP"
deployments:
  - cgroup: "$CGREL"
    labels: {model_name: "matrix"}
  - cgroup: "$CGREL-httpd"
    labels: {model_name: "matrix-httpd"}
  - cgroup: "$CGREL-llm"
    labels: {model_name: "matrix-llm"}
  - cgroup: "$CGREL-out"
    labels: {model_name: "matrix-out"}
  - cgroup: "$CGREL-h2"
    labels: {model_name: "matrix-h2"}
outbound:
  enabled: true
  destinations:
    - name: "matrix-api"
      address: "127.0.0.1"
      port: $REMOTE
      path: "/api/"
EOF
dd_b1=$(dd_cs)
say "kernel $KERNEL: dd bs=1 of $DD_BYTES bytes without tapir: ${dd_b1}0 ms"
say "kernel $KERNEL: starting tapir --bpf-variant $VARIANT --bpf-hooks $HOOKS"
# A FIFO rather than a pipe, so that $! is tapir itself; the relay ends when tapir does.
rm -f "$TMP/tapir.fifo" "$TMP/tapir.log"
mkfifo "$TMP/tapir.fifo"
while IFS= read -r line || [ -n "$line" ]; do
	echo "tapir| $line"
	echo "$line" >>"$TMP/tapir.log"
done <"$TMP/tapir.fifo" &
relay_pid=$!
# TAPIR_VERIFIER_STATS: each program's instructions processed, in the log (the headroom under
# the verifier's 1M on this kernel).
TAPIR_VERIFIER_STATS=1 "$ROOT/tapir" --config "$TMP/tapir.yaml" --pin-dir none \
	--bpf-variant "$VARIANT" --bpf-hooks "$HOOKS" >"$TMP/tapir.fifo" 2>&1 &
tapir_pid=$!
t0=$(cut -d. -f1 /proc/uptime)
until scrape && grep -q '^tapir_build_info' "$TMP/metrics"; do
	el=$(($(cut -d. -f1 /proc/uptime) - t0))
	if ! kill -0 "$tapir_pid" 2>/dev/null; then
		wait "$tapir_pid"
		rc=$?
		fail "tapir exited with status $rc before serving /metrics: $(tail -n 3 "$TMP/tapir.log" | tr '\n' ' ' | sed 's/ $//')"
		tapir_pid=""
		finish
	fi
	[ "$el" -lt "$START_S" ] || {
		fail "tapir did not serve /metrics in $START_S s: $(tail -n 2 "$TMP/tapir.log" | tr '\n' ' ' | sed 's/ $//')"
		finish
	}
	# Progress for whoever watches a slow TCG guest verify the programs.
	[ $((el % 15)) -ne 14 ] || say "still waiting for tapir after $el s"
	sleep 1
done
say "tapir serves /metrics after $(($(cut -d. -f1 /proc/uptime) - t0)) s"

# What loaded, from tapir's own gauge: the HTTP build that runs (the variant label of its attached
# programs), how many programs are attached, and why the others are not.
variant=$(sed -n 's/^tapir_bpf_program_attached{.*feature="http",variant="\([a-z]*\)".*} 1$/\1/p' \
	"$TMP/metrics" | sort -u | tr '\n' '+' | sed 's/+$//')
# ... and where it watches: the socket tracepoints (6.3+), TCP's functions through trampolines,
# or the syscall tracepoints.
if grep -q '^tapir_bpf_program_attached{program="sock_recv".*} 1$' "$TMP/metrics"; then
	variant="$variant/socket"
elif grep -q '^tapir_bpf_program_attached{program="http_skb_in".*} 1$' "$TMP/metrics"; then
	variant="$variant/skb"
elif grep -q '^tapir_bpf_program_attached{program="fexit_tcp_sendmsg".*} 1$' "$TMP/metrics"; then
	variant="$variant/fexit"
elif [ -n "$variant" ]; then
	variant="$variant/syscall"
fi
attached=$(grep -c '^tapir_bpf_program_attached{.*} 1$' "$TMP/metrics")
total=$(grep -c '^tapir_bpf_program_attached{' "$TMP/metrics")
notattached=$(sed -n 's/^tapir_bpf_program_attached{program="\([^"]*\)".*reason="\([^"]*\)"} 0$/\1:\2/p' \
	"$TMP/metrics" | tr '\n' ',' | sed 's/,$//')
say "http build ${variant:-none}, $attached of $total programs attached${notattached:+, not: $notattached}"
[ -n "$variant" ] || fail "no HTTP program attached"
# Every kernel of the matrix has socket tracepoints or BPF trampolines: by default, no syscall
# tracepoint may serve HTTP.
case "$VARIANT/$HOOKS/$variant" in
auto/auto/*/syscall) fail "the default picked syscall hooks: no socket-layer hooks loaded" ;;
esac


# --- servers: in the watched cgroups, and the remote one outside them ---------------------------

mkdir -p "$TMP/www/api"
# A page that compresses well (the gzip'd answers to HTTP/1.0) and a 1 KiB file.
i=0
while [ "$i" -lt 64 ]; do
	echo "line $i of a page that compresses well, the same words again and again"
	i=$((i + 1))
done >"$TMP/www/index.html"
awk 'BEGIN { for (i = 0; i < 16; i++) printf "%063d\n", i }' >"$TMP/www/1k.html"
# What the outbound client asks of the destination rule "matrix-api" names (path "/api/").
echo '{"status":"ok"}' >"$TMP/www/api/status.json"

NGINX=$ROOT/nginx
[ -x "$NGINX" ] || NGINX=$(command -v nginx)
# nginx_in DIR PORT CGROUP [deferred]: an nginx serving $TMP/www on PORT from CGROUP, its files
# in DIR; "deferred": its listening socket has TCP_DEFER_ACCEPT, so every connection's first
# bytes come with its handshake's end (the socket-buffer hooks walk them on the listener).
nginx_in() {
	mkdir -p "$1"
	cat >"$1/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 64; }
http {
	# nginx's own count of every request's bytes: the ground truth for busybox wget, which
	# counts nothing itself.
	log_format matrix '\$status \$request_length \$bytes_sent \$http_user_agent';
	access_log $1/access.log matrix;
	client_body_temp_path $1;
	proxy_temp_path $1;
	fastcgi_temp_path $1;
	uwsgi_temp_path $1;
	scgi_temp_path $1;
	keepalive_requests 100000;
	gzip on;
	gzip_http_version 1.0;
	gzip_min_length 0;
	server {
		listen 127.0.0.1:$2${4:+ $4};
		root $TMP/www;
	}
}
EOF
	(echo 0 >"$3/cgroup.procs" &&
		exec "$NGINX" -e "$1/error.log" -c "$1/nginx.conf" -g 'daemon off;') &
}

! serving nginx || nginx_in "$TMP/nginx" "$NGX" "$CG_NGX" deferred
# The server of the outbound case, in a cgroup no rule watches (nginx: keep-alive).
! serving out || nginx_in "$TMP/nginx-remote" "$REMOTE" "$CG_REMOTE"
# ... and a stand-in vLLM there, which the outbound client asks for tokens.
if serving out; then
	(echo 0 >"$CG_REMOTE/cgroup.procs" && exec "$ROOT/llm_server" -p "$REMOTE_LLM" -i 2000 -m matrix) \
		2>"$TMP/llm_remote.log" &
fi
if serving httpd; then
	# busybox httpd answers one request per connection, from a child forked for it that reads
	# the socket as fd 0 and writes it as fd 1 (inetd style).
	: >"$TMP/httpd.conf"
	(echo 0 >"$CG_HTTPD/cgroup.procs" &&
		exec httpd -f -p "127.0.0.1:$HTTPD" -h "$TMP/www" -c "$TMP/httpd.conf") &
fi
if serving h2; then
	# h2c with prior knowledge: nghttpd's first write is its SETTINGS, before the client's.
	(echo 0 >"$CG_H2/cgroup.procs" && exec "$NGHTTPD" --no-tls -a 127.0.0.1 -d "$TMP/www" "$H2") \
		>"$TMP/nghttpd.log" 2>&1 &
fi
if serving llm; then
	# A token event every 2 ms: real gaps between events, short streams even under TCG.
	(echo 0 >"$CG_LLM/cgroup.procs" && exec "$ROOT/llm_server" -p "$LLM" -i 2000 -m matrix) \
		2>"$TMP/llm_server.log" &
fi

# --- known traffic, each client's own tally added up per server ---------------------------------

add() { # add GROUP NAME TALLY: "requests=N bytes_out=N bytes_in=N status_200=N ..."
	say "$2: $3"
	for kv in $3; do
		k=${kv%%=*} v=${kv#*=}
		eval "${1}_$k=\$((\${${1}_$k:-0} + v))"
	done
}
run() { # run GROUP NAME ARGS...: one http_client run
	g=$1 name=$2
	shift 2
	if out=$("$CLIENT" "$@"); then
		add "$g" "$name" "$out"
	else
		fail "client $name failed"
	fi
}
ready() { # ready GROUP PORT PATH: waits for a server with a real request, counted like the rest
	i=0
	until out=$("$CLIENT" -c 127.0.0.1 "$2" "$3" 2>/dev/null); do
		i=$((i + 1))
		[ "$i" -lt 150 ] || {
			fail "no server on port $2"
			finish
		}
		sleep 0.2
	done
	add "$1" "first request to $2" "$out"
}

if serving nginx; then
	ready ngx "$NGX" /1k.html
	# Keep-alive: 20 requests on one connection, 200s and 404s mixed.
	run ngx keepalive 127.0.0.1 "$NGX" /1k.html /1k.html /index.html /missing1 /1k.html \
		/1k.html /missing2 /index.html /1k.html /1k.html /missing3 /1k.html /index.html \
		/missing4 /1k.html /1k.html /missing5 /index.html /1k.html /missing6
	# Requests written in 3 pieces 20 ms apart: the server reads each in several reads.
	run ngx split -p 3 127.0.0.1 "$NGX" /1k.html /index.html /missing /1k.html /index.html
	# A connection per request, Connection: close.
	run ngx close -c 127.0.0.1 "$NGX" /1k.html /missing /index.html
	# Bodies delimited by the server closing the connection (gzip on the fly for HTTP/1.0).
	run ngx close_delimited -0 127.0.0.1 "$NGX" /index.html /index.html /missing
	# busybox wget, one connection per request: its statuses from its -S output, its bytes
	# from nginx's log once the traffic is over.
	for path in /1k.html /index.html /missing-wget; do
		err=$(wget -S -q -O /dev/null "http://127.0.0.1:$NGX$path" 2>&1)
		code=$(echo "$err" | sed -n 's/^ *HTTP\/1\.[01] \([0-9][0-9][0-9]\).*/\1/p' | tail -n 1)
		if [ -n "$code" ]; then
			add ngx "wget $path" "requests=1 status_$code=1"
			wget_requests=$((${wget_requests:-0} + 1))
		else
			fail "wget $path: $(echo "$err" | tail -n 1)"
		fi
	done
fi
if serving httpd; then
	ready htd "$HTTPD" /1k.html
	run htd close -c 127.0.0.1 "$HTTPD" /1k.html /index.html /missing /1k.html
fi

# The stand-in vLLM, through busybox wget: one POST per connection, the answer's body (chunked
# coding undone) in $TMP/llm-NAME. What wget received is the ground truth: the usage figures in
# it, and the content events of the stream that has none, which tapir must count by estimate.
llm_post() { # llm_post NAME PATH BODY
	if timeout 60 wget -q -O "$TMP/llm-$1" --header 'Content-Type: application/json' \
		--post-data "$3" "http://127.0.0.1:$LLM$2" 2>"$TMP/llm-$1.err"; then
		add llm "wget $1" "requests=1 status_200=1"
	else
		fail "wget $1: $(tail -n 1 "$TMP/llm-$1.err")"
	fi
}
usage_of() { # usage_of NAME KEY: the last figure KEY in the answer NAME, 0 without one
	v=$(grep -o "\"$2\":[0-9]*" "$TMP/llm-$1" | tail -n 1 | cut -d: -f2)
	echo "${v:-0}"
}
content_events() { # content_events NAME: events of the answer NAME whose choice has content
	grep -cE '^data: \{.*"choices":\[\{.*"(content|text)":"[^"]' "$TMP/llm-$1"
}
if serving llm; then
	ready llm "$LLM" /health
	prompt='Where do tapirs live, what do they eat, and how long do they sleep?'
	ask="\"model\":\"matrix\",\"messages\":[{\"role\":\"user\",\"content\":\"$prompt\"}]"
	llm_post stream-usage /v1/chat/completions \
		"{$ask,\"max_tokens\":50,\"stream\":true,\"stream_options\":{\"include_usage\":true}}"
	llm_post stream /v1/chat/completions "{$ask,\"max_tokens\":37,\"stream\":true}"
	# 4000 tokens: a body over 16 KiB, which the kernel hands over in two pieces.
	llm_post whole /v1/completions "{\"model\":\"matrix\",\"prompt\":\"$prompt\",\"max_tokens\":4000}"
	for f in stream-usage stream; do
		grep -q '^data: \[DONE\]' "$TMP/llm-$f" || fail "harness: llm $f: no [DONE] in what wget received"
	done
	! grep -q '"usage"' "$TMP/llm-stream" || fail "harness: llm stream: a usage where none was asked"
	[ "$(usage_of stream-usage completion_tokens)" -eq "$(content_events stream-usage)" ] &&
		[ "$(content_events stream)" -gt 0 ] && [ "$(usage_of whole prompt_tokens)" -gt 0 ] ||
		fail "harness: llm_server's answers do not add up: $(tail -c 300 "$TMP/llm-stream-usage" | tr '\n' ' ')"
	llm_in=$(($(usage_of stream-usage prompt_tokens) + $(usage_of whole prompt_tokens)))
	llm_out=$(($(usage_of stream-usage completion_tokens) + $(content_events stream) +
		$(usage_of whole completion_tokens)))
	llm_sent="$llm_in/$llm_out/1"
fi

# The outbound case: http_client in the watched cgroup CG_OUT calls the remote nginx, which no
# rule watches. Its own tallies are the ground truth: "other" for the paths no rule names, "api"
# for the one the rule "matrix-api" names; the readiness GET runs from this script's cgroup, which
# no rule watches either, so tapir sees it nowhere.
run_out() { # run_out GROUP NAME ARGS...: one http_client run from inside CG_OUT
	g=$1 name=$2
	shift 2
	if out=$(echo 0 >"$CG_OUT/cgroup.procs" && exec "$CLIENT" "$@"); then
		add "$g" "outbound $name" "$out"
	else
		fail "outbound client $name failed"
	fi
}
if serving out; then
	ready remote "$REMOTE" /1k.html
	run_out other keepalive 127.0.0.1 "$REMOTE" /1k.html /missing1 /index.html /1k.html \
		/missing2 /1k.html /index.html /missing3 /1k.html /1k.html
	run_out other close -c 127.0.0.1 "$REMOTE" /1k.html /missing /index.html
	run_out other close_delimited -0 127.0.0.1 "$REMOTE" /index.html /missing
	run_out api named 127.0.0.1 "$REMOTE" /api/status.json
	out_total=$((${other_requests:-0} + ${api_requests:-0}))
	# An LLM API request from inside CG_OUT (the roles swapped for the payload capture too):
	# its usage, as wget received it, is what tapir_outbound_llm_* must say.
	ready remote_llm "$REMOTE_LLM" /health
	ask='"model":"matrix","messages":[{"role":"user","content":"Are tapirs related to horses?"}]'
	if (echo 0 >"$CG_OUT/cgroup.procs" && exec timeout 60 wget -q -O "$TMP/llm-out" \
		--header 'Content-Type: application/json' --post-data \
		"{$ask,\"max_tokens\":40,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" \
		"http://127.0.0.1:$REMOTE_LLM/v1/chat/completions") 2>"$TMP/llm-out.err"; then
		add llmout "outbound wget llm" "requests=1 status_200=1"
		out_llm_sent="$(usage_of out prompt_tokens)/$(usage_of out completion_tokens)"
	else
		fail "outbound wget llm: $(tail -n 1 "$TMP/llm-out.err")"
	fi
	out_sent="$((out_total + ${llmout_requests:-0}))/$((${other_status_404:-0} + ${api_status_404:-0}))"
	out_sent="$out_sent/${api_requests:-0}/${out_llm_sent:--}"
fi

# HTTP/2: h2load's own tallies (requests done, 2xx, 4xx, DATA bytes) and the connections it made.
h2run() { # h2run NAME CONNECTIONS ARGS...: one h2load run; 1 when it made no request
	name=$1 conns=$2
	shift 2
	out=$(timeout 60 "$H2LOAD" "$@" 2>&1)
	d=$(echo "$out" | sed -n 's/^requests: [0-9]* total, [0-9]* started, \([0-9]*\) done.*/\1/p')
	ok=$(echo "$out" | sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p')
	nf=$(echo "$out" | sed -n 's/^status codes: .* \([0-9]*\) 4xx.*/\1/p')
	data=$(echo "$out" | sed -n 's/^traffic: .*(\([0-9]*\)) data.*/\1/p')
	[ -n "$d" ] && [ "$d" -gt 0 ] && [ -n "$ok" ] && [ -n "$nf" ] && [ -n "$data" ] || return 1
	add h2 "h2load $name" "requests=$d status_200=$ok status_404=$nf bytes_in=$data conns=$conns"
}
if serving h2; then
	i=0
	until h2run ready 1 -n 1 -c 1 "http://127.0.0.1:$H2/1k.html"; do
		i=$((i + 1))
		[ "$i" -lt 150 ] || {
			fail "no nghttpd on port $H2: $(tail -n 1 "$TMP/nghttpd.log")"
			break
		}
		sleep 0.2
	done
	# Two connections, 100 streams in flight on each; one connection, one stream at a time.
	h2run concurrent 2 -n 300 -c 2 -m 100 "http://127.0.0.1:$H2/1k.html" \
		"http://127.0.0.1:$H2/index.html" "http://127.0.0.1:$H2/missing" ||
		fail "h2load concurrent: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
	h2run serial 1 -n 20 -c 1 -m 1 "http://127.0.0.1:$H2/index.html" \
		"http://127.0.0.1:$H2/missing" || fail "h2load serial: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
fi

# --- the figures --------------------------------------------------------------------------------

sent=$((${ngx_requests:-0} + ${htd_requests:-0} + ${llm_requests:-0}))
# Both builds follow HTTP/2 (the compat build through tail calls of h2_more).
sent=$((sent + ${h2_requests:-0}))
# tapir drains its ring every 50 ms and settles what a dead process left every second: poll until
# everything is in, then once more a little later to catch anything counted twice.
i=0
while :; do
	scrape
	counted=$(metric baseten_inference_requests_total 'model_name="matrix')
	llm_got=$(metric baseten_llm_output_tokens_total 'model_name="matrix-llm"')
	out_got=$(metric tapir_outbound_requests_total 'model_name="matrix-out"')
	out_llm_got=$(metric tapir_outbound_llm_requests_total 'model_name="matrix-out"')
	{ [ "$counted" -lt "$sent" ] || [ "$llm_got" -lt "${llm_out:-0}" ] ||
		[ "$out_got" -lt "$((${out_total:-0} + ${llmout_requests:-0}))" ] ||
		[ "$out_llm_got" -lt "${llmout_requests:-0}" ]; } && [ "$i" -lt 50 ] || break
	i=$((i + 1))
	sleep 0.2
done
sleep 1
scrape || fail "the last scrape failed"
counted=$(metric baseten_inference_requests_total 'model_name="matrix')

if serving nginx; then
	# nginx's log: its tally of the wget requests, and a check on the harness itself, since
	# nginx counted the http_client requests too.
	log_wr=0 log_wo=0 log_wi=0 log_cr=0 log_co=0 log_ci=0
	eval "$(awk '$4 == "Wget" { wr++; wo += $2; wi += $3 } $4 == "tapir-matrix" { cr++; co += $2; ci += $3 }
		END { printf "log_wr=%d log_wo=%d log_wi=%d log_cr=%d log_co=%d log_ci=%d\n", wr, wo, wi, cr, co, ci }' \
		"$TMP/nginx/access.log" 2>/dev/null)"
	[ "$log_wr" -eq "${wget_requests:-0}" ] ||
		fail "harness: nginx logged $log_wr wget requests, wget made ${wget_requests:-0}"
	cl=$((ngx_requests - ${wget_requests:-0}))
	cl_out=${ngx_bytes_out:-0} cl_in=${ngx_bytes_in:-0}
	[ "$log_cr $log_co $log_ci" = "$cl $cl_out $cl_in" ] ||
		fail "harness: nginx logged $log_cr requests $log_co/$log_ci bytes, http_client counted $cl requests $cl_out/$cl_in bytes"
	ngx_bytes_out=$((cl_out + log_wo))
	ngx_bytes_in=$((cl_in + log_wi))
fi

check() { # check MODEL GROUP: tapir's series of model_name MODEL against the tallies GROUP_*
	m="model_name=\"$1\""
	eval "n=\${${2}_requests:-0} out=\${${2}_bytes_out:-0} in=\${${2}_bytes_in:-0}"
	got=$(metric baseten_inference_requests_total "$m")
	say "$1: clients sent $n requests, $out bytes out, $in in;" \
		"tapir counted $got, $(metric baseten_request_size_bytes_sum "$m") bytes in requests," \
		"$(metric baseten_response_size_bytes_sum "$m") in responses"
	[ "$got" -eq "$n" ] || fail "$1: counted $got of $n requests"
	codes=$( (set | sed -n "s/^${2}_status_\([0-9]*\)=.*/\1/p"
		grep "^baseten_inference_requests_total{.*$m" "$TMP/metrics" |
			sed -n 's/.*status_code="\([0-9]*\)".*/\1/p') | sort -u)
	for c in $codes; do
		eval "want=\${${2}_status_$c:-0}"
		have=$(metric baseten_inference_requests_total "$m" "status_code=\"$c\"")
		[ "$have" -eq "$want" ] || fail "$1 status $c: tapir $have, clients $want"
	done
	v=$(metric baseten_request_size_bytes_count "$m")
	[ "$v" -eq "$n" ] || fail "$1: request size count $v, clients $n"
	v=$(metric baseten_response_size_bytes_count "$m")
	[ "$v" -eq "$n" ] || fail "$1: response size count $v, clients $n"
	v=$(metric baseten_request_size_bytes_sum "$m")
	[ "$v" -eq "$out" ] || fail "$1: request bytes: tapir $v, clients $out"
	v=$(metric baseten_response_size_bytes_sum "$m")
	[ "$v" -eq "$in" ] || fail "$1: response bytes: tapir $v, clients $in"
}
# The LLM server: its requests, and its tokens as wget received them (bytes: wget counts none).
check_llm() {
	m='model_name="matrix-llm"'
	got=$(metric baseten_inference_requests_total "$m")
	[ "$got" -eq "$llm_requests" ] || fail "matrix-llm: counted $got of $llm_requests requests"
	got=$(metric baseten_inference_requests_total "$m" 'status_code="200"')
	[ "$got" -eq "$llm_requests" ] || fail "matrix-llm: status 200: tapir $got, clients $llm_requests"
	llm_counted="$(metric baseten_llm_input_tokens_total "$m")/$(metric baseten_llm_output_tokens_total "$m")/$(metric tapir_llm_usage_estimated_total "$m")"
	say "matrix-llm: wget received tokens in/out/estimated $llm_sent; tapir counted $llm_counted"
	[ "$llm_counted" = "$llm_sent" ] ||
		fail "matrix-llm: tokens in/out/estimated: wget received $llm_sent, tapir counted $llm_counted"
}
# The outbound client: tapir's requests by destination and status ("DEST CODE N" lines) must be
# the client's, series for series; a missing family or an extra series is a difference too.
out_tally() { # out_tally GROUP DEST: "DEST CODE N" for each status the client got in GROUP
	for c in $(set | sed -n "s/^${1}_status_\([0-9]*\)=.*/\1/p"); do
		eval "echo \"$2 $c \${${1}_status_$c}\""
	done
}
check_out_llm() {
	f=tapir_outbound_llm_
	d='destination="other"'
	out_llm_counted="$(metric ${f}input_tokens_total "$m" "$d")/$(metric ${f}output_tokens_total "$m" "$d")"
	say "matrix-out: LLM tokens in/out wget received ${out_llm_sent:--}, tapir counted $out_llm_counted"
	[ "$out_llm_counted" = "${out_llm_sent:-}" ] ||
		fail "matrix-out: outbound LLM tokens in/out: wget received ${out_llm_sent:--}, tapir counted $out_llm_counted"
	out_counted="$out_counted/$out_llm_counted"
	v=$(metric ${f}requests_total "$m" 'tokens="usage"')
	[ "$v" -eq "${llmout_requests:-0}" ] ||
		fail "matrix-out: outbound LLM requests with usage: tapir $v, wget ${llmout_requests:-0}"
}
check_out() {
	m='model_name="matrix-out"'
	want=$( (out_tally other other; out_tally llmout other; out_tally api matrix-api) |
		awk '{ s[$1 " " $2] += $3 } END { for (k in s) print k, s[k] }' | sort | tr '\n' ',' |
		sed 's/,$//')
	got=$(awk -v m="$m" '/^tapir_outbound_requests_total\{/ && index($0, m) && $NF > 0 {
			d = $0; sub(/.*destination="/, "", d); sub(/".*/, "", d)
			c = $0; sub(/.*status_code="/, "", c); sub(/".*/, "", c)
			s[d " " c] += $NF
		}
		END { for (k in s) print k, s[k] }' "$TMP/metrics" | sort | tr '\n' ',' | sed 's/,$//')
	f=tapir_outbound_requests_total
	out_counted="$(metric $f "$m")/$(metric $f "$m" 'status_code="404"')"
	out_counted="$out_counted/$(metric $f "$m" 'destination="matrix-api"')"
	say "matrix-out: the client sent $out_sent requests/404s/to matrix-api, tapir counted $out_counted"
	[ "$got" = "$want" ] ||
		fail "matrix-out: outbound requests by destination and status: client $want, tapir ${got:-none}"
	for d in other:other matrix-api:api; do
		eval "n=\${${d#*:}_requests:-0}"
		[ "${d#*:}" = other ] && n=$((n + ${llmout_requests:-0}))
		v=$(metric tapir_outbound_request_duration_seconds_count "$m" "destination=\"${d%:*}\"")
		[ "$v" -eq "$n" ] || fail "matrix-out: ${d%:*}: duration count $v, client $n"
	done
	# The outbound LLM request: its tokens, from the answer's usage, by destination.
	check_out_llm
	# The remote nginx's log checks the harness: every request the client counted reached it.
	log_r=0 log_o=0 log_i=0
	eval "$(awk '$4 == "tapir-matrix" { r++; o += $2; i += $3 }
		END { printf "log_r=%d log_o=%d log_i=%d\n", r, o, i }' "$TMP/nginx-remote/access.log" 2>/dev/null)"
	want="$((${remote_requests:-0} + out_total))"
	want="$want $((${remote_bytes_out:-0} + ${other_bytes_out:-0} + ${api_bytes_out:-0}))"
	want="$want $((${remote_bytes_in:-0} + ${other_bytes_in:-0} + ${api_bytes_in:-0}))"
	[ "$log_r $log_o $log_i" = "$want" ] ||
		fail "harness: the remote nginx logged requests/bytes out/in $log_r $log_o $log_i, http_client counted $want"
}
! serving nginx || check matrix ngx
! serving httpd || check matrix-httpd htd
! serving llm || check_llm
! serving out || check_out
if serving h2; then
	m='model_name="matrix-h2"'
	h2_sent="${h2_requests:-0}/${h2_status_404:-0}/${h2_bytes_in:-0}/0"
	h2_counted="$(metric baseten_inference_requests_total "$m")/$(metric baseten_inference_requests_total "$m" 'status_code="404"')"
	h2_counted="$h2_counted/$(metric baseten_response_size_bytes_sum "$m")/$(metric tapir_ignored_connections_total 'reason="http2"')"
	say "matrix-h2: h2load requests/404/bytes, connections ignored $h2_sent; tapir counted $h2_counted"
	[ "$h2_counted" = "$h2_sent" ] ||
		fail "matrix-h2: requests/404/bytes/ignored: h2load $h2_sent, tapir $h2_counted"
	check matrix-h2 h2
fi
for fam in tapir_records_lost_total tapir_parse_failures_total tapir_connections_evicted_total \
	tapir_records_unlabelled_total tapir_llm_requests_unparsed_total tapir_llm_payload_lost_total \
	tapir_http2_lost_total; do
	v=$(metric "$fam")
	[ "$v" -eq 0 ] || fail "$fam $v: $(grep "^$fam" "$TMP/metrics" | grep -v ' 0$' | sed 's/^[a-z_]*//' | tr '\n' ' ' | sed 's/ $//')"
done
finish
