// Package fw isolates LANs, masquerades their egress and forwards ports with nftables over netlink, in tables of its own.
package fw
