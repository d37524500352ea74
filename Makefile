# nodenet build and test entry points. `make test` is what CI runs (as root).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# Go may be installed only at /usr/local/go (the build machines).
ifeq ($(shell command -v go 2>/dev/null),)
ifneq ($(wildcard /usr/local/go/bin/go),)
export PATH := /usr/local/go/bin:$(PATH)
endif
endif
GO ?= go

VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
BIN := bin/nodenet

# Debian packages the namespace tests and the demo drive as real peers.
DEPS_PKGS := dnsmasq-base busybox-static isc-dhcp-client dhcpcd5 tcpdump \
	iputils-ping iproute2 util-linux ethtool openvswitch-switch \
	dnsutils dnsperf kea-dhcp4-server nftables conntrack netcat-openbsd iptables curl iperf3 \
	qemu-system-x86 cpio kmod

# While make deps installs, this policy (when absent) stops dpkg from starting
# services: openvswitch-switch would start OVS in the machine's own namespace.
POLICY_RC_D ?= /usr/sbin/policy-rc.d

.PHONY: all deps build vet unit test demo image qemu-test qemu-demo bench-boot bench bench-ovs bench-lan bench-dhcp bench-dns bench-fw bench-vxlan clean clean-netns

all: build

deps:
	@missing=""; \
	if ! command -v dpkg >/dev/null; then echo "deps: no dpkg here; install by hand: $(DEPS_PKGS)"; exit 0; fi; \
	for p in $(DEPS_PKGS); do \
		dpkg -s "$$p" 2>/dev/null | grep -q '^Status: install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "deps: missing:$$missing (run make deps as root)"; exit 0; fi; \
	echo "deps: installing:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	policy=$(POLICY_RC_D); \
	if [ ! -e "$$policy" ]; then \
		trap 'rm -f "$$policy"' EXIT; \
		printf '#!/bin/sh\n# make deps: start no service (openvswitch-switch would run OVS in the root netns)\nexit 101\n' >"$$policy"; \
		chmod 755 "$$policy"; \
	fi; \
	apt-get -o DPkg::Lock::Timeout=600 update -q; \
	apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $$missing

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)' -o $(BIN) .
	@# Static or it cannot run from the initramfs: cgo off in the build info, no ELF interpreter.
	@$(GO) version -m $(BIN) | grep -q 'CGO_ENABLED=0' || { echo "$(BIN): built with cgo" >&2; exit 1; }
	@if command -v ldd >/dev/null; then \
		out=$$(ldd $(BIN) 2>&1 || true); \
		case "$$out" in *"not a dynamic executable"*|*"statically linked"*) ;; \
		*) echo "$(BIN) is dynamically linked:" >&2; echo "$$out" >&2; exit 1;; esac; \
	fi
	@echo "built $(BIN) $(VERSION) (static)"

vet:
	$(GO) vet ./...

# The appliance image: images/out/{vmlinuz,nodenet.cpio.gz,versions.txt}.
image: deps build
	images/build.sh images/out

unit:
	env -u NODENET_INTEGRATION $(GO) test ./...

test: deps build vet image
	@[ "$$(id -u)" = 0 ] || { echo "make test runs the namespace tests and needs root (make unit does not)" >&2; exit 1; }
	NODENET_INTEGRATION=1 $(GO) test -count=1 -timeout 30m ./...
	GO=$(GO) scripts/fuzz.sh 8s

# Every fuzz target for FUZZTIME each (scripts/fuzz.sh; FUZZJOBS at a time).
.PHONY: fuzz
FUZZTIME ?= 2m
fuzz:
	GO=$(GO) scripts/fuzz.sh $(FUZZTIME)

# The QEMU tests alone (qemu-tests/README in the top README); console logs
# are kept in qemu-tests/out/.
qemu-test: deps build image
	NODENET_INTEGRATION=1 $(GO) test -count=1 -timeout 20m -v ./qemu-tests

# The image booted with its console here and the demo scenario run by its
# init (images/demo/); a shell at the end on a terminal, power-off without.
qemu-demo: deps build image
	images/qemu-demo.sh images/out

# Boot to uplink configured, median of 3 boots, and the image size.
bench-boot: deps build image
	QEMU_BOOTS=3 NODENET_INTEGRATION=1 $(GO) test -count=1 -run TestBootToUplink -v ./qemu-tests

demo: deps build
	scripts/demo.sh

# All benchmarks: uplink start-up, OVS ports, LAN joins, DHCP, DNS, port forwards,
# vxlan throughput (bench/README.md).
bench: deps build
	NODENET_BIN=$(BIN) bench/run.sh
	bench/ovs.sh
	NODENET_BIN=$(BIN) bench/lan.sh
	NODENET_BIN=$(BIN) bench/dhcp.sh
	NODENET_BIN=$(BIN) bench/dns.sh
	NODENET_BIN=$(BIN) bench/fw.sh
	NODENET_BIN=$(BIN) bench/vxlan.sh

# LAN Join/Leave alone; LEVELS=1,100 SAMPLES=5 for a quick check.
bench-lan: deps build
	NODENET_BIN=$(BIN) bench/lan.sh

# LAN DHCP leases/s and DNS queries/s against dnsmasq (and kea for DHCP).
bench-dhcp: deps build
	NODENET_BIN=$(BIN) bench/dhcp.sh

bench-dns: deps build
	NODENET_BIN=$(BIN) bench/dns.sh

# Port forwards: new connections through DNAT with 10 and 10,000 forwards
# (and iptables rules as the anchor), Join with 5,000 installed vs none;
# FORWARDS_HIGH=1000 JOIN_FORWARDS=500 ROUNDS=4 for a quick check.
bench-fw: deps build
	NODENET_BIN=$(BIN) bench/fw.sh

# VXLAN throughput: iperf3 across a vxlan LAN spanning two nodes, against the
# underlay alone and kernel VXLAN (bridge + vxlan device); RUNS=1 DURATION=2 for a quick check.
bench-vxlan: deps build
	NODENET_BIN=$(BIN) bench/vxlan.sh

# OVS ports alone; PORTS=100 for a quick check.
bench-ovs: deps
	bench/ovs.sh

clean:
	rm -rf bin

# Namespaces left by crashed test runs (nnt-*), demos (nndemo-*) and benchmarks (nnb-*).
clean-netns:
	@for ns in $$(ip netns list | awk '{print $$1}' | grep -E '^(nnt|nndemo|nnb)-' || true); do \
		pids=$$(ip netns pids "$$ns" 2>/dev/null || true); \
		[ -z "$$pids" ] || kill -9 $$pids 2>/dev/null || true; \
		ip netns delete "$$ns" && echo "deleted netns $$ns"; \
	done
