#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The kernel matrix: boots Debian's kernels under qemu with tapir and known traffic in an
# initramfs, and runs the same check on this host; exact counts or it fails.
#
# tools/kernel-matrix.sh [VERSION...]   VERSION: a prefix of a kernel version (5.10, 6.1, 6.12,
#                                        7), "newest", or "host"; default: all of them.
# Kernel packages come from the Debian mirror this machine's apt sources name, through a private
# apt configuration under build/kernel-matrix (nothing of the machine's own apt state changes);
# downloads are cached there. Prints one line per kernel and exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build/kernel-matrix
APTDIR=$OUT/apt
TIMEOUT=${MATRIX_TIMEOUT:-900} # seconds per kernel under TCG
# Debian suites searched for kernels, oldest first.
SUITES=(bullseye bookworm bookworm-backports trixie trixie-backports)

log() { echo "kernel-matrix: $*" >&2; }
die() {
	log "$*"
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (BPF, cgroups)"
for t in qemu-system-x86_64 busybox cpio gzip dpkg-deb apt-get nginx; do
	command -v "$t" >/dev/null || die "$t is missing (tools/install-deps.sh test)"
done
[ -x build/tapir ] && [ -x build/tests/http_client ] || die "build first: make all build/tests/http_client"
mkdir -p "$OUT"

# --- the mirror, read from this machine's apt sources (never written into the repository) ---

# Prints "URI KEYRING" of the first Debian archive entry (not the security archive).
mirror() {
	local f uri key suites
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		# deb822: blank-line separated stanzas.
		awk 'BEGIN { RS = ""; FS = "\n" }
			{
				uri = ""; key = ""; suites = ""
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
					if ($i ~ /^Suites:/) suites = $i
					if ($i ~ /^Signed-By:/) { split($i, a, /[ \t]+/); key = a[2] }
				}
				if (uri != "" && suites !~ /-security/ && uri !~ /security/) {
					print uri, key; exit
				}
			}' "$f"
	done | head -n 1
	if [ -r /etc/apt/sources.list ]; then
		awk '$1 == "deb" && $0 !~ /security/ {
			for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i, ""; exit }
		}' /etc/apt/sources.list
	fi
}

apt_private() {
	apt-get -q -o Dir::Etc::sourcelist="$APTDIR/sources.list" -o Dir::Etc::sourceparts=- \
		-o Dir::State::Lists="$APTDIR/lists" -o Dir::Cache="$APTDIR/cache" \
		-o Dir::State::status=/var/lib/dpkg/status -o Debug::NoLocking=1 "$@"
}

setup_apt() {
	local uri key s
	read -r uri key < <(mirror) || true
	[ -n "${uri:-}" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d}"
	key=${key:-/usr/share/keyrings/debian-archive-keyring.gpg}
	mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
	: >"$APTDIR/sources.list.new"
	for s in "${SUITES[@]}"; do
		echo "deb [signed-by=$key] $uri $s main" >>"$APTDIR/sources.list.new"
	done
	mv "$APTDIR/sources.list.new" "$APTDIR/sources.list"
	# The lists are refreshed at most once a day: the cache is what makes a rerun quick.
	if [ -z "$(find "$APTDIR/lists" -name '*Packages*' -mtime -1 2>/dev/null | head -n 1)" ]; then
		log "reading the kernel lists of ${SUITES[*]}"
		apt_private update >"$OUT/apt-update.log" 2>&1 || die "apt update failed: see $OUT/apt-update.log"
	fi
}

# Every "SUITE VERSION" of a cloud kernel image the suites carry, e.g. "bullseye 5.10.0-32".
available() {
	local f suite
	for f in "$APTDIR"/lists/*_dists_*_binary-amd64_Packages*; do
		suite=${f##*_dists_}
		suite=${suite%%_main_*}
		# apt-helper reads the lists whatever apt compressed them with (lz4, gz, xz, none).
		/usr/lib/apt/apt-helper cat-file "$f" |
			sed -n "s/^Package: linux-image-\(.*\)-cloud-amd64$/$suite \1/p"
	done | sort -k2,2V -u
}

# vmlinuz of kernel VERSION (as in the package name), downloaded and extracted once.
fetch_kernel() {
	local ver=$1 dir=$OUT/cache/$1 pkg deb
	if [ -s "$dir/vmlinuz" ]; then
		echo "$dir/vmlinuz"
		return
	fi
	mkdir -p "$dir"
	# Newer packaging ships the image in linux-binary-*, with linux-image-* only depending on it.
	for pkg in "linux-image-$ver-cloud-amd64" "linux-binary-$ver-cloud-amd64"; do
		(cd "$dir" && apt_private download "$pkg" >>"$OUT/download.log" 2>&1) || continue
		deb=$(ls "$dir"/"$pkg"_*.deb 2>/dev/null | head -n 1)
		[ -n "$deb" ] || continue
		# /boot/vmlinuz-* until 7.x, /usr/lib/modules/VERSION/vmlinuz since.
		dpkg-deb --fsys-tarfile "$deb" |
			tar -x -C "$dir" --wildcards './boot/vmlinuz-*' './usr/lib/modules/*/vmlinuz' 2>/dev/null || true
		rm -f "$deb"
		for img in "$dir"/boot/vmlinuz-* "$dir"/usr/lib/modules/*/vmlinuz; do
			[ -s "$img" ] || continue
			mv "$img" "$dir/vmlinuz"
			rm -rf "$dir/boot" "$dir/usr"
			echo "$dir/vmlinuz"
			return
		done
	done
	log "no vmlinuz in the packages of kernel $ver (see $OUT/download.log)"
	return 1
}

# --- the initramfs: busybox, tapir, nginx, the client, their libraries, the guest script ---

build_initramfs() {
	local dir=$OUT/initramfs bin lib
	rm -rf "$dir"
	mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,lib64}
	cp "$(command -v busybox)" "$dir/bin/busybox"
	ln -s busybox "$dir/bin/sh"
	cp build/tapir "$dir/tapir"
	cp build/tests/http_client "$dir/http_client"
	cp "$(command -v nginx)" "$dir/nginx"
	cp tools/matrix-guest.sh "$dir/init"
	chmod +x "$dir/init"
	for bin in build/tapir build/tests/http_client "$(command -v nginx)"; do
		ldd "$bin" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'
	done | sort -u | while read -r lib; do
		mkdir -p "$dir$(dirname "$lib")"
		cp -L "$lib" "$dir$lib"
	done
	echo "root:x:0:0:root:/:/bin/sh" >"$dir/etc/passwd"
	echo "root:x:0:" >"$dir/etc/group"
	(cd "$dir" && find . | cpio -o -H newc --quiet | gzip -1) >"$OUT/initramfs.cpio.gz"
	log "initramfs: $(du -h "$OUT/initramfs.cpio.gz" | cut -f1)"
}

# --- one kernel ----------------------------------------------------------------------------

accel() { # KVM where this machine offers it, else TCG (slower, but everywhere)
	if [ -w /dev/kvm ]; then
		echo "-accel kvm -cpu host"
	else
		echo "-accel tcg -cpu max"
	fi
}

boot() { # boot VERSION VMLINUZ: writes $OUT/VERSION.log
	local ver=$1 kernel=$2 start=$SECONDS rc=0
	timeout "$TIMEOUT" qemu-system-x86_64 -nographic -no-reboot -m 1024 -smp 1 $ACCEL \
		-kernel "$kernel" -initrd "$OUT/initramfs.cpio.gz" \
		-append "console=ttyS0 panic=-1 quiet loglevel=3" \
		</dev/null >"$OUT/$ver.log" 2>&1 || rc=$?
	echo "boot_seconds=$((SECONDS - start)) qemu_rc=$rc" >>"$OUT/$ver.log"
}

host() { # the same guest script on this kernel, in a cgroup under our own, both builds
	local mount rel tmp v port=${MATRIX_HOST_PORT:-19464}
	mount=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
	rel=$(sed -n 's/^0:://p' /proc/self/cgroup)
	rel=${rel%/}/tapir-matrix-$$
	tmp=$(mktemp -d)
	mkdir "$tmp/bin"
	ln -sf "$ROOT/build/tests/http_client" "$tmp/bin/http_client"
	ln -sf "$ROOT/build/tapir" "$tmp/bin/tapir"
	: >"$OUT/host.log"
	for v in auto compat; do
		MATRIX_ROOT=$tmp/bin MATRIX_CGROOT=$mount MATRIX_CGREL=$rel MATRIX_TMP=$tmp/$v \
			MATRIX_VARIANT=$v MATRIX_PORT0=$port sh tools/matrix-guest.sh >>"$OUT/host.log" 2>&1 || true
		port=$((port + 10))
	done
	rm -rf "$tmp"
}

# "matrix: KERNEL ..." for each MATRIX-RESULT line of a log (the picked build, then compat).
report() {
	local name=$1 file=$2 line kernel rc=0
	if ! grep -aq '^MATRIX-RESULT' "$file"; then
		echo "matrix: $name no result ($(grep -a 'boot_seconds' "$file" | tail -n 1)) FAIL"
		echo "| $name | - | - | - | - | no result: see build/kernel-matrix/$(basename "$file") |" >>"$OUT/table.md"
		return 1
	fi
	while read -r line; do
		kv() { echo "$line" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
		kernel=$(echo "$line" | sed -n 's/^MATRIX-RESULT kernel=\([^ ]*\).*/\1/p')
		echo "matrix: $kernel build $(kv variant) (--bpf-variant $(kv forced))," \
			"programs attached $(kv attached), requests sent $(kv sent), counted" \
			"$(kv counted): $(kv result)" \
			"$([ "$(kv result)" = PASS ] || echo "(${line#* why=})")"
		echo "| $kernel | $(kv variant) ($(kv forced)) | $(kv attached) | $(kv sent) | $(kv counted) | $(kv result) |" >>"$OUT/table.md"
		[ "$(kv result)" = PASS ] || rc=1
	done < <(grep -a '^MATRIX-RESULT' "$file" | tr -d '\r')
	return $rc
}

main() {
	local want=("$@") all ver suite pick=() v newest failed=0 t0=$SECONDS
	[ ${#want[@]} -gt 0 ] || want=(5.10 6.1 6.12 newest host)
	setup_apt
	all=$(available)
	[ -n "$all" ] || die "no cloud kernel images found in ${SUITES[*]}"
	newest=$(echo "$all" | tail -n 1 | cut -d' ' -f2)
	for v in "${want[@]}"; do
		case "$v" in
		host) pick+=(host) ;;
		newest) pick+=("$newest") ;;
		*)
			ver=$(echo "$all" | awk -v p="$v" 'index($2, p ".") == 1 || $2 == p { x = $2 } END { print x }')
			if [ -z "$ver" ]; then
				log "no Debian kernel $v in ${SUITES[*]}"
				echo "no Debian kernel $v in ${SUITES[*]} (looked on $(date -u +%F))" >>"$OUT/NOTES"
				failed=1
				continue
			fi
			pick+=("$ver")
			;;
		esac
	done
	# One entry per kernel, in order.
	mapfile -t pick < <(printf '%s\n' "${pick[@]}" | awk '!seen[$0]++')
	log "kernels: ${pick[*]} (newest per suite: $(echo "$all" |
		awk '{ v[$1] = $2 } END { for (s in v) printf "%s:%s ", s, v[s] }'))"
	build_initramfs
	ACCEL=$(accel)
	echo "| kernel | HTTP build (--bpf-variant) | programs attached | requests sent | counted | result |" >"$OUT/table.md"
	echo "|---|---|---|---:|---:|---|" >>"$OUT/table.md"
	# Two guests at a time: one vCPU each, on a two-core machine.
	local running=()
	for v in "${pick[@]}"; do
		[ "$v" = host ] && continue
		if ! kernel=$(fetch_kernel "$v"); then
			echo "no kernel image could be fetched" >"$OUT/$v.log"
			continue
		fi
		log "booting $v"
		boot "$v" "$kernel" &
		running+=($!)
		if [ ${#running[@]} -ge 2 ]; then
			wait "${running[0]}"
			running=("${running[@]:1}")
		fi
	done
	for p in "${running[@]}"; do wait "$p"; done
	for v in "${pick[@]}"; do
		if [ "$v" = host ]; then
			host
			report host "$OUT/host.log" || failed=1
		else
			report "$v" "$OUT/$v.log" || failed=1
		fi
	done
	log "matrix done in $((SECONDS - t0)) s; table in $OUT/table.md"
	return $failed
}

main "$@"
