#!/bin/bash
# images/qemu-demo.sh: boot the appliance image with its console on this
# terminal and the demo scenario (images/demo/demo.sh) run by its init.
# The image is not changed: a small second archive with the demo's files
# and init table is appended to it (the kernel unpacks both, the second
# over the first).
#
#   images/qemu-demo.sh [IMAGE_DIR]     (make qemu-demo)
#
# On a terminal the demo leaves a shell (Ctrl-A X quits QEMU); without one
# (CI, a pipe) it powers off at the end. The host side of the port forward
# is tried from here with curl on 127.0.0.1:DEMO_PORT (default 18080).
# QEMU's network is user-mode with restrict=on: nothing leaves the machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
img=${1:-$here/out}
port=${DEMO_PORT:-18080}
[ -f "$img/nodenet.cpio.gz" ] || { echo "images/qemu-demo.sh: no image in $img: run make image" >&2; exit 1; }

work=$(mktemp -d)
curler=
cleanup() {
	[ -z "$curler" ] || kill "$curler" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/root/etc/demo"
cp "$here/demo/demo.sh" "$here/demo/member-dhcp.sh" "$work/root/etc/demo/"
cp "$here/demo/inittab" "$work/root/etc/inittab"
(cd "$work/root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -n >"$work/demo.cpio.gz"
cat "$img/nodenet.cpio.gz" "$work/demo.cpio.gz" >"$work/initrd"

append="console=ttyS0 panic=-1 quiet demo.port=$port"
if [ ! -t 0 ]; then
	append="$append demo.poweroff"
fi

# The host's side of the forward: curl until the member answers.
(
	for _ in $(seq 240); do
		if body=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null); then
			printf '\r\n\033[1;32m[host] curl http://127.0.0.1:%s/ -> %s\033[0m\r\n' "$port" "$body"
			exit 0
		fi
		sleep 0.5
	done
) &
curler=$!

qemu-system-x86_64 -m 512 -smp 2 -nographic -no-reboot -nodefaults -serial mon:stdio \
	-kernel "$img/vmlinuz" -initrd "$work/initrd" -append "$append" \
	-netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:8080" \
	-device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56
