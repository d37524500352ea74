#!/bin/sh
# The demo scenario inside the image (make qemu-demo): nodenet brought the
# uplink up by itself; a bridge LAN with nodenet's DHCP and DNS, two
# members in their own network namespaces, a port forward the host reaches
# through QEMU's hostfwd. Kernel flags: demo.port= (the host's port),
# demo.poweroff (power off at the end instead of leaving a shell).

say() { printf '\n\033[1;36m### %s\033[0m\n' "$*"; }
run() {
	printf '\033[1m# %s\033[0m\n' "$*"
	sh -c "$*" || { printf '\033[1;31mdemo: failed: %s\033[0m\n' "$*"; failed=1; }
}
flag() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p"; }

until nodenet status 2>/dev/null | grep -q bound; do sleep 0.2; done
say "nodenet (init's first child) loaded the NIC driver and leased the uplink from QEMU's DHCP"
run "nodenet status"
run "ip -4 addr show eth0; ip -4 route"

say "A bridge LAN: nodenet serves its DHCP and DNS; OVS on the kernel datapath"
until nodenet network ls >/dev/null 2>&1; do sleep 0.3; done # 503 while starting
run "nodenet network create lan1 --type bridge --cidr 10.50.0.0/24 --dhcp"
unshare -n sleep 1000000 & A=$!
unshare -n sleep 1000000 & B=$!
export A B
run 'nodenet join lan1 a --netns /proc/$A/ns/net --ifname eth0 -p 8080=80'
run 'nodenet join lan1 b --netns /proc/$B/ns/net --ifname eth0'
for m in A B; do
	run "nsenter -t \$$m -n udhcpc -i eth0 -n -q -t 5 -s /etc/demo/member-dhcp.sh 2>&1 | grep leased"
done
run 'nsenter -t $A -n nslookup b.lan1.internal 10.50.0.1'
b=$(nsenter -t $A -n nslookup b.lan1.internal 10.50.0.1 | sed -n 's/^Address: *\(10\.50\.[0-9.]*\)$/\1/p')
run "nsenter -t \$A -n ping -c 2 ${b:-b.lan1.internal}"
run 'nodenet network show lan1'
run "ovs-appctl dpctl/show | head -3"

say "A port forward: the host's 127.0.0.1:$(flag demo.port) -> QEMU -> node :8080 -> a:80"
mkdir -p /tmp/www && echo "hello from member a, through nodenet's forward" >/tmp/www/index.html
run 'nsenter -t $A -n httpd -p 80 -h /tmp/www'
echo "from the host: curl http://127.0.0.1:$(flag demo.port)/"

if grep -qw demo.poweroff /proc/cmdline; then
	sleep 15 # the host's curl
	say "demo done$([ -n "$failed" ] && echo ' (with failures)'); powering off"
	poweroff -f
fi
say "demo done; the shell is yours (Ctrl-A X quits QEMU)"
exec cttyhack /bin/sh -l
