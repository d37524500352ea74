// Package dhcpd serves DHCPv4 and DNS to nodenet's LANs, in-process: leases, reservations, names and a forwarding cache.
package dhcpd
