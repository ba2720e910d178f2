#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The kernel matrix: boots Debian's kernels under qemu with tapir, servers and counting clients in
# an initramfs, runs the same check on this host, and fails on any figure that differs.
#
# tools/kernel-matrix.sh [VERSION...]
#   VERSION: a prefix of a Debian kernel version (5.10, 6.1, 6.12, 7), "newest" or "host".
#   Default: 5.10 6.1 6.12 newest host, and 5.15 and 6.8 where a Debian suite carries them.
# Environment: MATRIX_TIMEOUT (seconds per guest, 600), MATRIX_JOBS (guests at once: CPUs / 2),
#   MATRIX_SMP (vCPUs per guest, 2), MATRIX_SERVERS (servers driven, "nginx httpd llm out h2"),
#   MATRIX_HOST_PORT (first port on the host, 19464).
# Kernel packages come from the Debian mirror this machine's apt sources name, through a private
# apt configuration under build/kernel-matrix/apt (the machine's own apt state is not touched),
# and are cached there. Prints one line per kernel, writes table.md and NOTES next to the console
# logs, and exits 1 on any failure.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build/kernel-matrix
APTDIR=$OUT/apt
TIMEOUT=${MATRIX_TIMEOUT:-600}
SMP=${MATRIX_SMP:-2}
# Guests at once: as many as the host has CPUs for (2 vCPUs each). Two emulated guests on a
# 2-CPU host stalled now and then; one at a time never did.
JOBS=${MATRIX_JOBS:-$(($(nproc) / SMP > 0 ? $(nproc) / SMP : 1))}
# busybox httpd answers on a dup2()ed copy of the socket (inetd style): connections are keyed by
# socket, so that copy is the same connection.
# llm: tools/llm_server.c, a stand-in vLLM, through busybox wget.
# out: outbound requests, from http_client in a watched cgroup to an nginx outside them.
export MATRIX_SERVERS=${MATRIX_SERVERS:-nginx httpd llm out h2}
# Debian suites searched for kernels, oldest first; a suite the mirror lacks is skipped.
SUITES=(bullseye bookworm bookworm-backports trixie trixie-backports)
# Kernels run where Debian has them; the GPU fleet runs them (Ubuntu 22.04 and COS: 5.15,
# Ubuntu 24.04: 6.8), but Debian may not.
OPTIONAL=(5.15 6.8)
DEFAULT_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { echo "kernel-matrix: $*" >&2; }
die() {
	log "$*"
	exit 1
}
note() { # a line for README's kernel reach, printed too
	log "$*"
	echo "$*" >>"$OUT/NOTES"
}

[ "$(id -u)" -eq 0 ] || die "needs root (BPF, cgroups)"
for t in qemu-system-x86_64 busybox cpio gzip dpkg-deb apt-get nginx ldd timeout; do
	command -v "$t" >/dev/null || die "$t is missing (tools/install-deps.sh test)"
done
[ -x build/tapir ] && [ -x build/tests/http_client ] && [ -x build/tools/llm_server ] ||
	die "build first: make all build/tests/http_client build/tools/llm_server"
mkdir -p "$OUT"
: >"$OUT/NOTES"
rm -f "$OUT"/*.timed-out.log "$OUT"/*.died.log "$OUT"/*.kvm-failed.log

# --- the mirror, read from this machine's apt sources (never written into the repository) -------

# Prints "URI<TAB>KEYRING" of the Debian archive this machine uses (its first deb entry for a
# plain suite such as "bookworm", so not the security archive); KEYRING may be empty.
mirror() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		# deb822: stanzas separated by blank lines, fields continued on indented lines.
		awk 'BEGIN { RS = ""; FS = "\n" }
			{
				split("", f); last = ""
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^#/)
						continue
					if ($i ~ /^[ \t]/) {
						if (last != "")
							f[last] = f[last] " " $i
						continue
					}
					k = tolower($i); sub(/:.*/, "", k)
					v = $i; sub(/^[^:]*:[ \t]*/, "", v)
					f[k] = v; last = k
				}
				if (tolower(f["enabled"]) == "no" || f["types"] !~ /(^|[ \t])deb([ \t]|$)/)
					next
				n = split(f["suites"], s, /[ \t]+/); plain = 0
				for (j = 1; j <= n; j++)
					if (s[j] ~ /^[a-z]+$/)
						plain = 1
				uri = f["uris"]; sub(/^[ \t]+/, "", uri); sub(/[ \t].*/, "", uri)
				if (!plain || uri == "")
					next
				# A keyring file; an inline key block is not one.
				key = f["signed-by"]; sub(/^[ \t]+/, "", key)
				if (key !~ /^\/[^ \t]*$/)
					key = ""
				printf "%s\t%s\n", uri, key
			}' "$f"
	done
	if [ -r /etc/apt/sources.list ]; then
		# One-line format: deb [options] URI SUITE COMPONENT...
		awk '$1 == "deb" {
			key = ""; i = 2
			if ($2 ~ /^\[/) {
				for (; i <= NF; i++) {
					if ($i ~ /^\[?signed-by=/) { key = $i; sub(/.*signed-by=/, "", key); sub(/\]$/, "", key) }
					if ($i ~ /\]$/) break
				}
				i++
			}
			if ($(i + 1) ~ /^[a-z]+$/) printf "%s\t%s\n", $i, key
		}' /etc/apt/sources.list
	fi
}

apt_private() {
	# Dir::State::status: the machine's dpkg status, read only; the download sandbox user
	# (_apt) cannot write into build/, so downloads run as root.
	apt-get -q -o Dir::Etc::sourcelist="$APTDIR/sources.list" -o Dir::Etc::sourceparts=- \
		-o Dir::State::Lists="$APTDIR/lists" -o Dir::Cache="$APTDIR/cache" \
		-o Dir::State::status=/var/lib/dpkg/status -o Debug::NoLocking=1 \
		-o APT::Sandbox::User=root "$@"
}

lists_of() { # the Packages lists of suite $1
	ls "$APTDIR"/lists/*_dists_"$1"_main_binary-amd64_Packages* 2>/dev/null || true
}

setup_apt() {
	local uri key s
	IFS=$'\t' read -r uri key < <(mirror | head -n 1) || true
	[ -n "${uri:-}" ] || die "no Debian archive found in /etc/apt/sources.list{,.d}"
	# The keyring the machine's sources name; Debian's archive keyring holds the keys of the
	# older releases too (bullseye's included), so one keyring verifies every suite here.
	[ -n "${key:-}" ] || key=$DEFAULT_KEYRING
	[ -r "$key" ] || die "keyring $key not found (package debian-archive-keyring)"
	mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
	for s in "${SUITES[@]}"; do
		echo "deb [signed-by=$key] $uri $s main"
	done >"$APTDIR/sources.list.new"
	if cmp -s "$APTDIR/sources.list.new" "$APTDIR/sources.list"; then
		rm "$APTDIR/sources.list.new"
	else
		mv "$APTDIR/sources.list.new" "$APTDIR/sources.list"
	fi
	# The lists are refreshed once a day or when the sources change: the cache is what makes a
	# rerun quick.
	if [ -z "$(find "$APTDIR/updated" -newer "$APTDIR/sources.list" -mtime -1 2>/dev/null)" ]; then
		log "reading the package lists of ${SUITES[*]} (private apt configuration in $APTDIR)"
		if ! apt_private update >"$OUT/apt-update.log" 2>&1; then
			log "apt update reported errors (whole log: $OUT/apt-update.log):"
			grep -E '^(E|W):' "$OUT/apt-update.log" | sed 's/^/    /' >&2 || true
		fi
		touch "$APTDIR/updated"
	fi
	for s in "${SUITES[@]}"; do
		if [ -z "$(lists_of "$s")" ]; then
			note "suite $s: no package list (not on the mirror, or its signature did not verify with $key; see $OUT/apt-update.log)"
		fi
	done
}

# "SUITE VERSION FLAVOUR" of every kernel image the suites carry, by version, cloud-amd64 after
# amd64 for one version (so that the last match is the cloud build): "bullseye 5.10.0-32
# cloud-amd64". Versioned packages only: the metapackages, -dbg, -unsigned and -rt are left out.
available() {
	local s f
	for s in "${SUITES[@]}"; do
		for f in $(lists_of "$s"); do
			# apt-helper reads the lists whatever apt compressed them with (lz4, gz, xz, none).
			/usr/lib/apt/apt-helper cat-file "$f" | sed -n \
				-e "s/^Package: linux-image-\([0-9][^ ]*[0-9]\)-cloud-amd64$/$s \1 cloud-amd64/p" \
				-e "s/^Package: linux-image-\([0-9][^ ]*[0-9]\)-amd64$/$s \1 amd64/p"
		done
	done | sort -k2,2V -k3,3 -u
}

# The newest kernel whose version starts with $1 ("6.1" takes 6.1.x, not 6.12): "SUITE ID",
# ID being the package's ABI name, as uname -r will show it ("5.10.0-32-cloud-amd64").
pick() {
	awk -v p="$1" 'p == "newest" || index($2, p ".") == 1 || index($2, p "-") == 1 || $2 == p {
		x = $1 " " $2 "-" $3 } END { if (x != "") print x }' <<<"$AVAILABLE"
}

# The vmlinuz of kernel ID, downloaded and extracted once; the package's name and version go in
# the same directory's "package".
fetch_kernel() {
	local id=$1 dir=$OUT/cache/$1 pkg deb img
	if [ -s "$dir/vmlinuz" ]; then
		echo "$dir/vmlinuz"
		return
	fi
	mkdir -p "$dir"
	rm -f "$dir/package"
	# Newer packaging ships the image in linux-binary-*, with linux-image-* only depending on it.
	for pkg in "linux-image-$id" "linux-binary-$id"; do
		(cd "$dir" && apt_private download "$pkg" >>"$OUT/download.log" 2>&1) || continue
		deb=$(ls "$dir/$pkg"_*.deb 2>/dev/null | head -n 1)
		[ -n "$deb" ] || continue
		basename "$deb" .deb | awk -F_ '{ print $1, $2 }' >>"$dir/package"
		# /boot/vmlinuz-* until 7.x, /usr/lib/modules/VERSION/vmlinuz since.
		dpkg-deb --fsys-tarfile "$deb" |
			tar -x -C "$dir" --wildcards './boot/vmlinuz-*' './usr/lib/modules/*/vmlinuz' 2>/dev/null || true
		rm -f "$deb"
		for img in "$dir"/boot/vmlinuz-* "$dir"/usr/lib/modules/*/vmlinuz; do
			[ -s "$img" ] || continue
			mv "$img" "$dir/vmlinuz"
			rm -rf "${dir:?}/boot" "${dir:?}/usr"
			echo "$dir/vmlinuz"
			return
		done
	done
	log "no vmlinuz in the packages of kernel $id (see $OUT/download.log)"
	return 1
}

# --- the initramfs: busybox, tapir, nginx, the client, llm_server, their libraries, the guest ---

build_initramfs() {
	local dir=$OUT/initramfs bin lib h2bins
	rm -rf "$dir"
	mkdir -p "$dir"/{bin,proc,sys,dev,tmp,etc}
	cp "$(command -v busybox)" "$dir/bin/busybox"
	ln -s busybox "$dir/bin/sh" # the interpreter of /init; it installs the other applets
	cp build/tapir build/tests/http_client build/tools/llm_server "$(command -v nginx)" \
		"$(command -v bpftool)" "$dir/"
	# HTTP/2: nghttpd and h2load (nghttp2-server, nghttp2-client), where this machine has them.
	h2bins=$(command -v nghttpd h2load || true)
	# shellcheck disable=SC2086 # none, one or two paths
	[ -z "$h2bins" ] || cp $h2bins "$dir/"
	cp tools/matrix-guest.sh "$dir/init"
	chmod +x "$dir/init"
	# Every library they load, the dynamic loader included (busybox-static needs none).
	# shellcheck disable=SC2086 # $h2bins: none, one or two paths
	for bin in build/tapir build/tests/http_client build/tools/llm_server "$(command -v nginx)" \
		"$(command -v busybox)" "$(command -v bpftool)" $h2bins; do
		{ ldd "$bin" 2>/dev/null || true; } | awk '/=> \// { print $3 } /^\t\/[^ ]*ld-linux/ { print $1 }'
	done | sort -u | while read -r lib; do
		mkdir -p "$dir$(dirname "$lib")"
		cp -L "$lib" "$dir$lib"
	done
	# nginx's "user root" looks the user up.
	echo "root:x:0:0:root:/:/bin/sh" >"$dir/etc/passwd"
	echo "root:x:0:" >"$dir/etc/group"
	(cd "$dir" && find . | cpio -o -H newc --quiet | gzip -1) >"$OUT/initramfs.cpio.gz"
	log "initramfs: $(du -h "$OUT/initramfs.cpio.gz" | cut -f1)"
}

# --- one kernel -------------------------------------------------------------------------------

accel() { # KVM where this machine offers it, else TCG (slower, but everywhere)
	# Some hosts open /dev/kvm and then fail to start a vCPU (a nested guest whose hypervisor
	# refuses an MSR): a guest with no disk runs its firmware until the timeout where KVM works,
	# and dies at once where it does not.
	if [ -w /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null &&
		{
			timeout 3 qemu-system-x86_64 -accel kvm -cpu host -display none -nodefaults \
				-no-reboot -m 64M >/dev/null 2>&1
			[ $? = 124 ]
		}; then
		echo "-accel kvm -cpu host"
	else
		echo "-accel tcg -cpu max"
	fi
}

# run_qemu ID VMLINUZ: one boot, the guest's console in $OUT/ID.log; qemu's exit code. KVM that
# passed accel()'s probe can still stop a guest in its kernel: a nested hypervisor that cannot
# emulate an instruction the decompressor runs ("KVM internal error ... emulation failure").
# qemu then pauses the guest instead of exiting, so the console is watched for it, and such a
# boot is stopped at once and returns 199 (so does one whose qemu printed it and exited).
run_qemu() {
	local id=$1 kernel=$2 pid rc=0
	# No NIC: the guest only needs loopback, and iPXE's boot ROM costs seconds under TCG. The
	# kernel hands KEY=VALUE words it does not know to /init as its environment.
	# shellcheck disable=SC2086 # $ACCEL is a list of options
	timeout -k 5 "$TIMEOUT" qemu-system-x86_64 -nographic -no-reboot -m 1G -smp "$SMP" $ACCEL \
		-nic none -kernel "$kernel" -initrd "$OUT/initramfs.cpio.gz" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 MATRIX_SERVERS=${MATRIX_SERVERS// /,}" \
		</dev/null >"$OUT/$id.log" 2>&1 &
	pid=$!
	kvm_failed() { [ "${ACCEL#*kvm}" != "$ACCEL" ] && grep -saq 'KVM internal error' "$OUT/$id.log"; }
	while kill -0 "$pid" 2>/dev/null; do
		if kvm_failed; then
			kill "$pid" 2>/dev/null || true
			wait "$pid" || true
			return 199
		fi
		sleep 1
	done
	wait "$pid" || rc=$?
	! kvm_failed || return 199
	return "$rc"
}

boot() { # boot ID VMLINUZ: the guest's console in $OUT/ID.log
	local id=$1 kernel=$2 start=$SECONDS rc=0 try=1
	while [ "$try" -le 2 ]; do
		rc=0
		run_qemu "$id" "$kernel" || rc=$?
		if [ "$rc" -eq 199 ]; then
			# This boot again under TCG, and this kernel's later ones (a subshell's ACCEL).
			mv "$OUT/$id.log" "$OUT/$id.kvm-failed.log"
			log "$id: KVM stopped the guest (KVM internal error); booting it under TCG"
			echo "$id: KVM stopped the guest (console in $id.kvm-failed.log); booted under TCG" >>"$OUT/NOTES"
			ACCEL="-accel tcg -cpu max"
			continue
		fi
		echo "MATRIX-BOOT seconds=$((SECONDS - start)) qemu_rc=$rc" >>"$OUT/$id.log"
		# A guest that went silent until the timeout, with no result at all, is booted once
		# more: an emulated guest on a loaded host can stall. Its console is kept, and the
		# report says so; a second timeout fails.
		# A guest that died before its last run (the console ends without every result and
		# qemu was not stopped) is booted once more too, its console kept and its last kernel
		# lines printed: under TCG a guest died so once in CI, and never again in tens of boots
		# here. A second death fails.
		if [ "$rc" -ne 124 ] && [ "$try" -eq 1 ] &&
			[ "$(grep -ac '^MATRIX-RESULT' "$OUT/$id.log")" -lt "$RUNS" ]; then
			mv "$OUT/$id.log" "$OUT/$id.died.log"
			log "$id: the guest ended with $(grep -ac '^MATRIX-RESULT' "$OUT/$id.died.log") of $RUNS results (qemu exit $rc); its console's last lines:"
			grep -av '^tapir|' "$OUT/$id.died.log" | tail -n 25 | tr -d '\r' | sed 's/^/kernel-matrix:   /' >&2
			echo "$id: the first guest died after $(grep -ac '^MATRIX-RESULT' "$OUT/$id.died.log") of $RUNS results; booted again (console in $id.died.log)" >>"$OUT/NOTES"
			try=$((try + 1))
			continue
		fi
		if [ "$rc" -ne 124 ] || grep -aq '^MATRIX-RESULT' "$OUT/$id.log" || [ "$try" -eq 2 ]; then
			break
		fi
		mv "$OUT/$id.log" "$OUT/$id.timed-out.log"
		log "$id: the guest produced no result in $TIMEOUT s (last: $(grep -a -E '^(matrix-guest|tapir\|)' \
			"$OUT/$id.timed-out.log" | tail -n 1 | tr -d '\r')); booting it once more"
		echo "$id: first boot timed out after $TIMEOUT s without a result; booted again (console in $id.timed-out.log)" >>"$OUT/NOTES"
		try=$((try + 1))
	done
	log "$id: guest finished in $((SECONDS - start)) s"
}

host() { # the guest script on this kernel, in cgroups under our own, both builds
	local mount rel tmp v port=${MATRIX_HOST_PORT:-19464} start=$SECONDS
	: >"$OUT/host.log"
	# The cgroup2 mount: the filesystem type follows the " - " separator in mountinfo.
	mount=$(awk '{ for (i = 7; i < NF && $i != "-"; i++); if ($(i + 1) == "cgroup2") { print $5; exit } }' \
		/proc/self/mountinfo)
	rel=$(sed -n 's/^0:://p' /proc/self/cgroup)
	rel=${rel%/}/tapir-matrix-$$
	tmp=$(mktemp -d)
	mkdir "$tmp/bin"
	# busybox's applets first in PATH, as in the guest; nginx is this machine's.
	busybox --install -s "$tmp/bin"
	ln -s "$ROOT/build/tests/http_client" "$ROOT/build/tools/llm_server" "$ROOT/build/tapir" \
		"$(command -v nginx)" "$(command -v bpftool)" "$tmp/bin/"
	for v in auto auto+syscall compat loop+socket; do
		if [ -z "$mount" ]; then
			echo "MATRIX-RESULT kernel=$(uname -r) variant=none forced=$v attached=0/0" \
				"notattached=none sent=0 counted=0 insns=- result=FAIL why=no cgroup2 mount" >>"$OUT/host.log"
			continue
		fi
		timeout -k 5 "$TIMEOUT" env PATH="$tmp/bin:$PATH" MATRIX_ROOT="$tmp/bin" \
			MATRIX_CGROOT="$mount" MATRIX_CGREL="$rel" MATRIX_TMP="$tmp/$v" \
			MATRIX_VARIANT=${v%+*} MATRIX_HOOKS=$([ "${v#*+}" = "$v" ] && echo auto || echo "${v#*+}") \
			MATRIX_PORT0="$port" busybox sh tools/matrix-guest.sh >>"$OUT/host.log" 2>&1 || true
		port=$((port + 10))
	done
	echo "MATRIX-BOOT seconds=$((SECONDS - start)) qemu_rc=0" >>"$OUT/host.log"
	rm -rf "$tmp"
}

# --- the report -------------------------------------------------------------------------------

# Runs per kernel: the build tapir picks (the socket-buffer hooks where the loop build loads),
# the loop build on syscall hooks, the compat build, the loop build on the socket-layer hooks
# (socket from 6.3, fexit before; SKIP where the kernel has no bpf_loop).
RUNS=4

# dd_tax B1,T1,T2,B2 RUNS: dd bs=1 with tapir over without (the mean of B1 and B2): running,
# then with the daemon paused and its hooks attached; and how many times tapir's programs ran
# during that second dd (see matrix-guest.sh).
dd_tax() {
	awk -F, -v runs="$2" '{ b = ($1 + $4) / 2
		if (b > 0 && $2 > 0 && $3 > 0) printf "%.2f, hooks alone %.2f (%s runs)", $2 / b, $3 / b, runs
		else printf "-" }' <<<"$1"
}

# report NAME LABEL LOG: one "matrix:" line for the kernel (its runs), and a table row per run.
report() {
	local name=$1 label=$2 file=$3 line secs rc k builds="" sent="" counted="" whys="" result=PASS
	local llm_sent="" llm_counted="" out_sent="" out_counted=""
	local n=0 kernel=$name last_why="" last_forced=""
	secs=$(sed -n 's/^MATRIX-BOOT seconds=\([0-9]*\).*/\1/p' "$file" | tail -n 1)
	rc=$(sed -n 's/^MATRIX-BOOT .*qemu_rc=\([0-9]*\).*/\1/p' "$file" | tail -n 1)
	kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"${line%% why=*}"; }
	while read -r line; do
		n=$((n + 1))
		kernel=$(sed -n 's/^MATRIX-RESULT kernel=\([^ ]*\).*/\1/p' <<<"$line")
		k=$(kv notattached)
		builds+="${builds:+, }$(kv forced)=$(kv variant) $(kv attached)"
		sent+="${sent:+/}$(kv sent)"
		counted+="${counted:+/}$(kv counted)"
		llm_sent+="${llm_sent:+, }$(kv llm_sent)"
		llm_counted+="${llm_counted:+, }$(kv llm_counted)"
		out_sent+="${out_sent:+, }$(kv out_sent)"
		out_counted+="${out_counted:+, }$(kv out_counted)"
		if [ "$(kv result)" != PASS ] && [ "$(kv result)" != SKIP ]; then
			result=FAIL
			# A reason both builds give is said once.
			if [ "${line#* why=}" = "${last_why:-}" ]; then
				whys=${whys/#$last_forced: /$last_forced and $(kv forced): }
			else
				whys+="${whys:+; }$(kv forced): ${line#* why=}"
			fi
			last_why=${line#* why=} last_forced=$(kv forced)
		fi
		echo "| $kernel$([ -z "$label" ] || echo " ($label)") | $(kv variant) ($(kv forced)) |" \
			"$(kv attached)$([ "$k" = none ] || echo " (not: ${k//,/, })") | $(kv sent) |" \
			"$(kv counted) | $(kv llm_sent) / $(kv llm_counted) |" \
			"$(kv out_sent) / $(kv out_counted) |" \
			"$(kv h2_sent) / $(kv h2_counted) |" \
			"$(dd_tax "$(kv dd_cs)" "$(kv dd_runs)") |" \
			"$(kv nginx_cpu_us | sed 's|,| / |') | $(kv insns | sed 's|:|: |') |" \
			"$(kv result) |" >>"$OUT/table.md"
	done < <(grep -a '^MATRIX-RESULT' "$file" | tr -d '\r')
	if [ "$n" -lt "$RUNS" ]; then
		result=FAIL
		local why="no result from $((RUNS - n)) of the $RUNS runs"
		[ "${rc:-0}" != 124 ] || why+=": timed out after $TIMEOUT s"
		[ "${rc:-0}" = 124 ] || [ "${rc:-0}" = 0 ] || why+=": qemu exit $rc"
		grep -aq 'MATRIX-BOOTED' "$file" || why+=", the kernel never ran /init"
		# The guest's last word, or the kernel's when it never got that far.
		k=$(grep -a -E '^(matrix-guest|tapir\|)' "$file" | tail -n 1)
		[ -n "$k" ] || k=$(grep -a -E 'Kernel panic|Failed to execute|Oops|BUG:' "$file" | tail -n 1)
		why+=" (last: $(tr -d '\r' <<<"${k:-nothing}" | sed 's/^\[ *[0-9.]*\] //'))"
		whys+="${whys:+; }$why"
		echo "| $kernel$([ -z "$label" ] || echo " ($label)") | - | - | - | - | - | - | - | - | - | - | FAIL: ${why//|/\\|} |" >>"$OUT/table.md"
	fi
	[ ! -f "${file%.log}.timed-out.log" ] || whys+="${whys:+; }booted twice: the first guest stalled without a result"
	[ ! -f "${file%.log}.died.log" ] ||
		whys+="${whys:+; }booted twice: the first guest died ($(grep -a -E 'Kernel panic|Oops|BUG:|general protection|Attempted to kill init' "${file%.log}.died.log" | head -n 1 | tr -d '\r' | sed 's/^\[ *[0-9.]*\] //' || true))"
	echo "matrix: $kernel${label:+ ($label)} in ${secs:-?} s: builds ${builds:-none}; requests" \
		"sent ${sent:-0}, counted ${counted:-0}; LLM tokens in/out/estimated received" \
		"${llm_sent:--}, counted ${llm_counted:--}; outbound requests/404/named/LLM in/out sent" \
		"${out_sent:--}, counted ${out_counted:--}: $result${whys:+ ($whys)}"
	[ "$result" = PASS ]
}

main() {
	local want=("$@") v p id suite failed=0 t0=$SECONDS running=() ids=()
	declare -A SUITE_OF=()
	if [ ${#want[@]} -eq 0 ]; then
		want=(5.10 6.1 6.12 newest host)
		DEFAULT=1
	fi
	setup_apt
	AVAILABLE=$(available)
	[ -n "$AVAILABLE" ] || die "no kernel images found in ${SUITES[*]} (see $OUT/apt-update.log)"
	for suite in "${SUITES[@]}"; do
		p=$(awk -v s="$suite" '$1 == s && $3 == "cloud-amd64" { x = $2 } END { print x }' <<<"$AVAILABLE")
		[ -z "$p" ] || note "suite $suite: newest cloud kernel linux-image-$p-cloud-amd64"
	done
	if [ "${DEFAULT:-0}" = 1 ]; then
		for v in "${OPTIONAL[@]}"; do
			if [ -n "$(pick "$v")" ]; then
				want+=("$v")
			else
				note "no Debian kernel $v in ${SUITES[*]} (looked $(date -u +%F)): not in the matrix"
			fi
		done
	fi
	for v in "${want[@]}"; do
		if [ "$v" = host ]; then
			ids+=(host)
			continue
		fi
		suite="" id=""
		read -r suite id <<<"$(pick "$v")" || true
		if [ -z "${id:-}" ]; then
			note "no Debian kernel $v in ${SUITES[*]}"
			echo "matrix: $v: FAIL (no Debian kernel $v in ${SUITES[*]})"
			failed=1
			continue
		fi
		# 6.12 and the newest may be one kernel.
		[ -z "${SUITE_OF[$id]:-}" ] || continue
		SUITE_OF[$id]=$suite
		[ "$v" != newest ] || SUITE_OF[$id]="$suite, the newest"
		ids+=("$id")
	done
	log "kernels: ${ids[*]}"
	build_initramfs
	ACCEL=$(accel)
	log "qemu: $ACCEL, $SMP vCPUs, $JOBS guests at once, $TIMEOUT s each"
	{
		echo "| kernel | HTTP build/hooks (forced) | programs attached | requests sent | counted | LLM tokens in/out/estimated: wget / tapir | outbound requests/404/named/LLM tokens in/out: client / tapir | HTTP/2 requests/404/bytes/ignored: h2load / tapir | dd bs=1 with / without tapir | nginx CPU us/req with / without | verifier's most instructions | result |"
		echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
	} >"$OUT/table.md"
	for id in "${ids[@]}"; do
		[ "$id" != host ] || continue
		rm -f "$OUT/$id.log"
		if ! kernel=$(fetch_kernel "$id"); then
			echo "MATRIX-BOOT seconds=0 qemu_rc=0 no kernel image could be fetched" >"$OUT/$id.log"
			continue
		fi
		log "booting $id ($(paste -sd' ' "$OUT/cache/$id/package" 2>/dev/null), ${SUITE_OF[$id]})"
		boot "$id" "$kernel" &
		running+=($!)
		if [ ${#running[@]} -ge "$JOBS" ]; then
			wait "${running[0]}"
			running=("${running[@]:1}")
		fi
	done
	for p in "${running[@]}"; do wait "$p"; done
	for id in "${ids[@]}"; do
		if [ "$id" = host ]; then
			log "running the guest script on this host ($(uname -r))"
			host
			report "$(uname -r)" "this host" "$OUT/host.log" || failed=1
		else
			report "$id" "${SUITE_OF[$id]}" "$OUT/$id.log" || failed=1
		fi
	done
	log "matrix done in $((SECONDS - t0)) s; table in $OUT/table.md, notes in $OUT/NOTES"
	return $failed
}

main "$@"
