#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# One kernel of the matrix: start tapir, send known traffic from a watched cgroup, compare its
# counts with the client's own. /init of the matrix's initramfs, or run on the host as it is.
#
# Environment (the VM's defaults in brackets):
#   MATRIX_ROOT    where tapir, nginx, http_client and the libraries are [/]
#   MATRIX_CGROOT  the cgroup v2 mount [/sys/fs/cgroup, mounted here]
#   MATRIX_CGREL   the test cgroup, relative to the mount [/matrix]
#   MATRIX_TMP     scratch directory [/tmp]
#   MATRIX_PORT0   first of the two ports used [9464]
#   MATRIX_VARIANT tapir --bpf-variant [auto]
# Prints "MATRIX-RESULT kernel=... variant=... attached=A/T sent=N counted=N result=PASS|FAIL why=..."
# As /init it checks the build tapir picks and the compat build, then powers off.

if [ "$$" = 1 ]; then
	/bin/busybox --install -s /bin
	export PATH=/bin:/sbin:/usr/bin:/usr/sbin
	mount -t proc proc /proc
	mount -t sysfs sys /sys
	mount -t devtmpfs dev /dev 2>/dev/null
	mkdir -p /tmp && mount -t tmpfs tmp /tmp
	mount -t cgroup2 cgroup2 /sys/fs/cgroup
	mount -t bpf bpf /sys/fs/bpf
	ip link set lo up
	# The compat build too, where the kernel would pick loop: the kernels of users who run
	# compat (5.11 to 5.16) sit between these.
	MATRIX_VARIANT=auto MATRIX_TMP=/tmp/auto sh /init
	MATRIX_VARIANT=compat MATRIX_TMP=/tmp/compat MATRIX_PORT0=9474 sh /init
	sync
	poweroff -f
fi

ROOT=${MATRIX_ROOT:-}
CGROOT=${MATRIX_CGROOT:-/sys/fs/cgroup}
CGREL=${MATRIX_CGREL:-/matrix}
TMP=${MATRIX_TMP:-/tmp}
VARIANT=${MATRIX_VARIANT:-auto}
mkdir -p "$TMP"
P0=${MATRIX_PORT0:-9464}
TP=$P0 NGX=$((P0 + 1))
CG=$CGROOT$CGREL
KERNEL=$(uname -r)
why=""
tapir_pid=""

say() { echo "matrix-guest: $*"; }
fail() { why="${why:+$why; }$*"; }

finish() {
	[ -n "$tapir_pid" ] && kill "$tapir_pid" 2>/dev/null
	for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	sleep 0.2
	rmdir "$CG" 2>/dev/null
	result=PASS
	[ -n "$why" ] && result=FAIL
	echo "MATRIX-RESULT kernel=$KERNEL variant=${variant:-none} forced=$VARIANT" \
		"attached=${attached:-0}/${total:-0} sent=${sent:-0} counted=${counted:-0}" \
		"result=$result why=${why:-none}"
	if [ "$result" != PASS ]; then
		echo "---- tapir log (last lines)"
		tail -n 40 "$TMP/tapir.log"
	fi
	[ "$result" = PASS ]
	exit $?
}

scrape() { wget -q -O "$TMP/metrics" "http://127.0.0.1:$TP/metrics" 2>/dev/null; }

# Sum of the samples of metric $1 whose label text contains $2 (all with "").
metric() {
	awk -v name="$1" -v sel="$2" '
		$0 !~ /^#/ {
			split($0, a, /[{ ]/)
			if (a[1] == name && index($0, sel)) s += $NF
		}
		END { printf "%d\n", s }' "$TMP/metrics"
}

mkdir -p "$CG" || { fail "cannot create cgroup $CG"; finish; }
cat >"$TMP/tapir.yaml" <<EOF
listen: "127.0.0.1:$TP"
deployments:
  - cgroup: "$CGREL"
    labels: {model_name: "matrix"}
EOF
say "kernel $KERNEL: starting tapir --bpf-variant $VARIANT"
"$ROOT/tapir" --config "$TMP/tapir.yaml" --pin-dir none --bpf-variant "$VARIANT" >"$TMP/tapir.log" 2>&1 &
tapir_pid=$!
i=0
until scrape && grep -q tapir_build_info "$TMP/metrics"; do
	i=$((i + 1))
	if ! kill -0 "$tapir_pid" 2>/dev/null; then
		fail "tapir exited: $(tail -n 3 "$TMP/tapir.log" | tr '\n' ' ')"
		tapir_pid=""
		finish
	fi
	[ "$i" -lt 1200 ] || { fail "tapir did not serve /metrics in 600 s"; finish; }
	sleep 0.5
done
variant=$(sed -n 's/.*http: \(loop\|compat\) variant loaded.*/\1/p' "$TMP/tapir.log" | tail -n 1)
attached=$(grep -c '^tapir_bpf_program_attached{.*} 1$' "$TMP/metrics")
total=$(grep -c '^tapir_bpf_program_attached{' "$TMP/metrics")
say "tapir up after ${i} polls: http variant ${variant:-none}, $attached of $total programs attached"
[ -n "$variant" ] || fail "no HTTP variant loaded"

# The server, inside the watched cgroup: nginx with keep-alive, 200s and 404s, and gzip on the
# fly for HTTP/1.0 clients (no length known in advance: the body ends when nginx closes).
mkdir -p "$TMP/www" "$TMP/nginx"
i=0
while [ "$i" -lt 64 ]; do
	echo "line $i of a page that compresses well, the same words again and again"
	i=$((i + 1))
done >"$TMP/www/index.html"
cat >"$TMP/nginx/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $TMP/nginx;
	proxy_temp_path $TMP/nginx;
	fastcgi_temp_path $TMP/nginx;
	uwsgi_temp_path $TMP/nginx;
	scgi_temp_path $TMP/nginx;
	keepalive_requests 1000;
	gzip on;
	gzip_http_version 1.0;
	gzip_min_length 0;
	server {
		listen 127.0.0.1:$NGX;
		root $TMP/www;
	}
}
EOF
NGINX=$ROOT/nginx
[ -f "$NGINX" ] && [ -x "$NGINX" ] || NGINX=$(command -v nginx)
(echo 0 >"$CG/cgroup.procs" && exec "$NGINX" -c "$TMP/nginx/nginx.conf" -g 'daemon off;') &
CLIENT=$ROOT/http_client
add() { # add NAME TALLIES: a client run's own counts, added up
	say "$1: $2"
	for kv in $2; do
		k=${kv%%=*} v=${kv#*=}
		eval "tot_$k=\$((\${tot_$k:-0} + v))"
	done
}
run() { # run NAME ARGS...: one client run
	name=$1
	shift
	out=$("$CLIENT" "$@") || { fail "client $name failed"; return; }
	add "$name" "$out"
}
# Wait for each server with a real request: it is part of the traffic, counted like the rest.
for port in "$NGX"; do
	i=0
	until out=$("$CLIENT" 127.0.0.1 "$port" /index.html 2>/dev/null); do
		i=$((i + 1))
		[ "$i" -lt 150 ] || { fail "no server on port $port"; finish; }
		sleep 0.2
	done
	add "first request to $port" "$out"
done
# Keep-alive: 14 x 200 and 6 x 404 on one connection.
paths=""
for n in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do paths="$paths /index.html"; done
for n in 1 2 3 4 5 6; do paths="$paths /missing$n"; done
run keepalive 127.0.0.1 "$NGX" $paths
# Requests written in 3 pieces 20 ms apart: the server reads each in several reads.
run split -p 3 127.0.0.1 "$NGX" /index.html /index.html /missing /index.html /index.html
# A connection per request, Connection: close.
run close -c 127.0.0.1 "$NGX" /index.html /missing /index.html
# Bodies delimited by the server closing the connection.
run close_delimited -0 127.0.0.1 "$NGX" /index.html /index.html /missing

sent=${tot_requests:-0}
i=0
while :; do
	scrape
	counted=$(metric baseten_inference_requests_total 'model_name="matrix"')
	[ "$counted" -ge "$sent" ] || [ "$i" -ge 50 ] || { i=$((i + 1)); sleep 0.2; continue; }
	break
done
sleep 0.5
scrape
counted=$(metric baseten_inference_requests_total 'model_name="matrix"')
ok200=$(metric baseten_inference_requests_total 'status_code="200"')
ok404=$(metric baseten_inference_requests_total 'status_code="404"')
reqb=$(metric baseten_request_size_bytes_sum 'model_name="matrix"')
respb=$(metric baseten_response_size_bytes_sum 'model_name="matrix"')
nreq=$(metric baseten_request_size_bytes_count 'model_name="matrix"')
say "client: sent $sent (200: ${tot_status_200:-0}, 404: ${tot_status_404:-0}), $tot_bytes_out bytes out, $tot_bytes_in in"
say "tapir:  counted $counted (200: $ok200, 404: $ok404), request bytes $reqb, response bytes $respb"
[ "$counted" -eq "$sent" ] || fail "counted $counted of $sent requests"
[ "$ok404" -eq "${tot_status_404:-0}" ] || fail "404: tapir $ok404, client ${tot_status_404:-0}"
[ "$ok200" -eq "${tot_status_200:-0}" ] || fail "200: tapir $ok200, client ${tot_status_200:-0}"
[ "$nreq" -eq "$sent" ] || fail "request size count $nreq of $sent"
[ "$reqb" -eq "$tot_bytes_out" ] || fail "request bytes: tapir $reqb, client $tot_bytes_out"
[ "$respb" -eq "$tot_bytes_in" ] || fail "response bytes: tapir $respb, client $tot_bytes_in"
for fam in tapir_records_lost_total tapir_parse_failures_total tapir_connections_evicted_total; do
	v=$(metric "$fam" '')
	[ "$v" -eq 0 ] || fail "$fam = $v: $(grep "^$fam" "$TMP/metrics" | grep -v ' 0$' | tr '\n' ' ')"
done
finish
