#!/bin/bash
# images/build.sh: the appliance image, nodenet.cpio.gz and its kernel, from
# Debian packages fetched with `apt-get download` and unpacked (never
# installed): linux-image-amd64's kernel with only the modules nodenet
# needs (their dependencies and soft dependencies resolved by nodenet's own
# module planner), busybox-static, the OVS daemons with the shared libraries
# they load and the vswitch schema, the static nodenet, and images/init.
#
#   images/build.sh [OUT]      (make image; OUT defaults to images/out)
#
# Writes OUT/vmlinuz, OUT/nodenet.cpio.gz and OUT/versions.txt (the Debian
# package versions used, and the image's size). Downloads are cached in
# IMAGE_CACHE (default /var/cache/nodenet-image). Reproducible: files are
# added in sorted order with one fixed mtime (SOURCE_DATE_EPOCH, default 0)
# and owned by root.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
out=${1:-$here/out}
cache=${IMAGE_CACHE:-/var/cache/nodenet-image}
bin=${NODENET_BIN:-$repo/bin/nodenet}
epoch=${SOURCE_DATE_EPOCH:-0}
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

die() { echo "images/build.sh: $*" >&2; exit 1; }
[ -x "$bin" ] || die "$bin missing: run make build first"
for tool in apt-get apt-cache dpkg-deb depmod cpio gzip ldd go; do
	command -v "$tool" >/dev/null || die "$tool missing (make deps installs kmod and cpio)"
done

# Modules nodenet uses: NIC drivers (virtio, e1000), OVS's kernel datapath,
# tunnels and VLANs, veth/tap/macvlan members, nftables with what fw/
# writes (and every nft expression, which the kernel asks for by alias).
modules="virtio_pci virtio_net e1000 e1000e openvswitch vxlan 8021q tun veth macvlan
	nf_tables nf_conntrack_netlink nft_chain_nat nft_ct nft_fib_inet nft_masq nft_nat
	nft_log nft_limit nft_reject_inet"

mkdir -p "$cache" "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# fetch PKG: the package's .deb in the cache (downloaded once per version).
fetch() {
	local pkg=$1 ver deb
	ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
	[ -n "$ver" ] && [ "$ver" != "(none)" ] || { apt-get -q update >/dev/null; ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}'); }
	[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "no Debian package $pkg"
	deb=$(ls "$cache/${pkg}_"*"${ver#*:}"_*.deb 2>/dev/null | head -1 || true)
	if [ -z "$deb" ]; then
		(cd "$cache" && apt-get download -q "$pkg=$ver" >/dev/null 2>&1) || die "apt-get download $pkg=$ver failed"
		deb=$(ls "$cache/${pkg}_"*"${ver#*:}"_*.deb | head -1)
	fi
	echo "$pkg $ver" >>"$work/versions"
	echo "$deb"
}

# The kernel: the version linux-image-amd64 depends on.
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { apt-get -q update >/dev/null; kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'); }
[ -n "$kpkg" ] || die "linux-image-amd64 names no kernel package"
echo "linux-image-amd64 $(apt-cache policy linux-image-amd64 | awk '/Candidate:/ {print $2}')" >"$work/versions"
kdir=$work/kernel
dpkg-deb -x "$(fetch "$kpkg")" "$kdir"
kver=${kpkg#linux-image-}
depmod -b "$kdir" "$kver"

root=$work/root
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp,var,lib/modules/"$kver",usr/bin,usr/sbin,usr/share/openvswitch,etc/openvswitch}
ln -s ../run "$root/var/run"

# Modules: the closure of $modules, then depmod over the image's own tree.
(cd "$repo" && go run ./images/modclosure -dir "$kdir/lib/modules/$kver" $modules) >"$work/modfiles"
while read -r f; do
	mkdir -p "$root/lib/modules/$kver/$(dirname "$f")"
	cp "$kdir/lib/modules/$kver/$f" "$root/lib/modules/$kver/$f"
done <"$work/modfiles"
cp "$kdir/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/"
depmod -b "$root" "$kver"
cp "$kdir/boot/vmlinuz-$kver" "$out/vmlinuz"

# busybox: the binary and a link per applet (init and modprobe excepted:
# /init links to busybox's init, /sbin/modprobe to nodenet).
bb=$work/busybox
dpkg-deb -x "$(fetch busybox-static)" "$bb"
cp "$bb/bin/busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	case $applet in init|modprobe|insmod|rmmod|lsmod|depmod) continue ;; esac
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

# OVS: the two daemons, ovsdb-tool, ovs-appctl (what an operator asks a
# running switch with: dpctl/show, fdb/show, bridge/dump-flows), the schema, and every library ldd
# names for them (from this machine, which runs the same Debian release).
ovs=$work/ovs
for p in openvswitch-switch openvswitch-common; do dpkg-deb -x "$(fetch "$p")" "$ovs"; done
# Debian keeps ovs-vswitchd in /usr/lib/openvswitch-switch (behind an
# alternative); the image has it where nodenet looks, /usr/sbin.
for b in usr/sbin/ovsdb-server:usr/sbin/ovsdb-server usr/lib/openvswitch-switch/ovs-vswitchd:usr/sbin/ovs-vswitchd usr/bin/ovsdb-tool:usr/bin/ovsdb-tool usr/bin/ovs-appctl:usr/bin/ovs-appctl; do
	from=${b%%:*} to=${b#*:}
	[ -e "$ovs/$from" ] || die "$from not in the OVS packages"
	cp "$ovs/$from" "$root/$to"
	ldd "$ovs/$from" | awk '/=> \// {print $3} /^\t\/lib64\// {print $1}' >>"$work/libs"
done
cp "$ovs/usr/share/openvswitch/vswitch.ovsschema" "$root/usr/share/openvswitch/"
for lib in $(sort -u "$work/libs"); do
	real=$(readlink -f "$lib")
	mkdir -p "$root/$(dirname "$lib")"
	cp "$real" "$root/$lib"
	pkg=$( (dpkg -S "$real" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null) | head -1 | cut -d: -f1 || true)
	[ -z "$pkg" ] || echo "$pkg $(dpkg-query -W -f='${Version}' "$pkg") (shared library, from this machine)" >>"$work/versions"
done

# nodenet, the init that starts it (busybox init with images/inittab),
# nodenet as the kernel's modprobe, and the console init opens before
# anything is mounted.
cp "$bin" "$root/bin/nodenet"
chmod 755 "$root/bin/nodenet"
ln -s bin/busybox "$root/init"
cp "$here/inittab" "$root/etc/inittab"
ln -s ../bin/nodenet "$root/sbin/modprobe"
mknod -m 600 "$root/dev/console" c 5 1
echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"

# The archive: sorted names, one mtime, root-owned, so the same inputs
# give the same bytes.
find "$root" -exec touch -h -d "@$epoch" {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -9 -n >"$out/nodenet.cpio.gz"

size=$(stat -c %s "$out/nodenet.cpio.gz")
unpacked=$(du -sb "$root" | cut -f1)
{
	echo "# nodenet image, $(git -C "$repo" describe --always --dirty 2>/dev/null || echo dev)"
	echo "kernel $kver"
	sort -u "$work/versions"
	mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
	echo "nodenet.cpio.gz $size bytes ($(mib "$size"); $(mib "$unpacked") unpacked), $(wc -l <"$work/modfiles") modules"
	echo "vmlinuz $(stat -c %s "$out/vmlinuz") bytes"
} >"$out/versions.txt"
cat "$out/versions.txt"
