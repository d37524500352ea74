#!/bin/sh
# udhcpc's script for the demo's members: configure the lease.
[ "$1" = bound ] || exit 0
ip addr add "$ip/$mask" dev "$interface" && ip route add default via "$router"
echo "$interface: leased $ip/$mask, gateway $router, dns $dns, domain $domain"
