package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// report prints one row per run of a results file, with each server's
// leases/s next to nodenet's, and the goal (nodenet >= dnsmasq).
func report(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want RESULTS.jsonl")
	}
	recs, err := readRecords(args[0])
	if err != nil {
		return err
	}
	rate := map[string][]float64{} // server -> leases/s of its complete runs
	for _, r := range recs {
		if complete(r) {
			rate[r.Server] = append(rate[r.Server], r.PerSecond)
		}
	}
	nodenet := quantile(rate["nodenet"], 0.5)
	fmt.Println("server  | leases | in flight | leases/s | exchange median (p99) | retransmits | NAKs | failed | server CPU/lease | ovs-vswitchd CPU/lease | nodenet/server")
	for _, r := range recs {
		perSec, vs := "-", "-"
		if r.Acked > 0 {
			perSec = fmt.Sprintf("%.0f", r.PerSecond)
		}
		if complete(r) {
			vs = ratio(nodenet, r.PerSecond)
		}
		fmt.Printf("%-7s | %6d | %9d | %8s | %21s | %11d | %4d | %6s | %16s | %22s | %s\n",
			r.Server, r.Acked, r.Concurrency, perSec,
			fmt.Sprintf("%.1f ms (%.1f)", r.MedianMS, r.P99MS), r.Retransmits, r.NAKs,
			failed(r), perLease(r.ServerCPUS, r.Acked), perLease(r.OVSCPUS, r.Acked), vs)
	}
	if dnsmasq := quantile(rate["dnsmasq"], 0.5); dnsmasq > 0 {
		verdict := "not measured"
		if nodenet > 0 {
			verdict = fmt.Sprintf("%.0f vs %.0f leases/s (%s): ", nodenet, dnsmasq, ratio(nodenet, dnsmasq))
			if nodenet >= dnsmasq {
				verdict += "met"
			} else {
				verdict += "NOT met"
			}
		}
		fmt.Printf("\ngoal: nodenet >= dnsmasq (leases persisted by both): %s\n", verdict)
	}
	return nil
}

// complete says whether a run ACKed every client with valid addresses:
// only those count for the ratios.
func complete(r Record) bool {
	return r.Acked == r.Leases && r.Acked > 0 && r.Duplicates == 0 && r.OutOfRange == 0
}

func failed(r Record) string {
	s := fmt.Sprint(r.Failures)
	if r.Duplicates > 0 || r.OutOfRange > 0 {
		s += fmt.Sprintf(" (%d dup, %d out)", r.Duplicates, r.OutOfRange)
	}
	return s
}

func readRecords(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// perLease prints CPU seconds spent over n leases in µs per lease.
func perLease(cpu float64, n int) string {
	if cpu == 0 || n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f µs", cpu*1e6/float64(n))
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
