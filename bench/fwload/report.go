package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
)

// joinRecord is a line bench/fwjoin writes: one probe Join or Leave.
type joinRecord struct {
	Kind      string  `json:"kind"` // "join"
	Op        string  `json:"op"`   // join, join-nofwd, leave, leave-nofwd
	Installed int     `json:"installed"`
	Round     int     `json:"round"`
	MS        float64 `json:"ms"`
}

// report prints the DNAT table (per implementation and number of
// forwards: medians over the rounds), the ratios many/few with the goal,
// and the Join table.
func report(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("report: want RESULTS.jsonl")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	var dnat []Record
	var joins []joinRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var k struct{ Kind string }
		if err := json.Unmarshal(sc.Bytes(), &k); err != nil {
			return fmt.Errorf("%s: %w", args[0], err)
		}
		switch k.Kind {
		case "dnat":
			var r Record
			json.Unmarshal(sc.Bytes(), &r)
			dnat = append(dnat, r)
		case "join":
			var r joinRecord
			json.Unmarshal(sc.Bytes(), &r)
			joins = append(joins, r)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(dnat) > 0 {
		reportDNAT(dnat)
	}
	if len(joins) > 0 {
		if len(dnat) > 0 {
			fmt.Println()
		}
		reportJoins(joins)
	}
	return nil
}

type runKey struct {
	impl     string
	forwards int
}

func reportDNAT(recs []Record) {
	var impls []string
	levels := map[string][]int{}
	maxC := 0
	for _, r := range recs {
		if !slices.Contains(impls, r.Impl) {
			impls = append(impls, r.Impl)
		}
		if !slices.Contains(levels[r.Impl], r.Forwards) {
			levels[r.Impl] = append(levels[r.Impl], r.Forwards)
		}
		maxC = max(maxC, r.Concurrency)
	}
	// by[key][concurrency] = runs, in round order
	by := map[runKey]map[int][]Record{}
	for _, r := range recs {
		k := runKey{r.Impl, r.Forwards}
		if by[k] == nil {
			by[k] = map[int][]Record{}
		}
		by[k][r.Concurrency] = append(by[k][r.Concurrency], r)
	}
	field := func(rs []Record, get func(Record) float64) []float64 {
		var v []float64
		for _, r := range rs {
			v = append(v, get(r))
		}
		return v
	}
	rate := func(r Record) float64 { return r.ConnsPerS }
	med := func(r Record) float64 { return r.MedianUS }
	p99 := func(r Record) float64 { return r.P99US }
	cpuUS := func(r Record) float64 { return r.CPUUS }
	p10 := func(r Record) float64 { return r.P10US }

	fmt.Printf("New TCP connections through the forward, medians over the rounds (c=%d: %d connections at a time; c=1: one at a time)\n", maxC, maxC)
	fmt.Printf("impl     | forwards | conns/s c=%d (min-max) | connect µs c=%d: median / p99 | first packet (c=1) µs: median / p10 / p99 | conns/s c=1 | errors | CPU busy | CPU µs/conn | ovs-vswitchd µs/conn | load\n", maxC, maxC)
	for _, impl := range impls {
		for _, l := range levels[impl] {
			load, one := by[runKey{impl, l}][maxC], by[runKey{impl, l}][1]
			errs := 0
			for _, r := range append(slices.Clone(load), one...) {
				errs += r.Errors
			}
			rates := field(load, rate)
			fmt.Printf("%-8s | %8d | %6.0f (%5.0f-%5.0f) | %13.0f / %-14.0f | %16.0f / %4.0f / %-6.0f | %11.0f | %6d | %7.0f%% | %11.1f | %20s | %4.1f\n",
				impl, l, median(rates), minOf(rates), maxOf(rates),
				median(field(load, med)), median(field(load, p99)),
				median(field(one, med)), median(field(one, p10)), median(field(one, p99)), median(field(one, rate)),
				errs, 100*median(field(load, func(r Record) float64 { return r.CPUBusy })),
				median(field(load, cpuUS)),
				orDash(median(field(load, func(r Record) float64 { return r.PidCPUUS })), "%.1f"),
				median(field(append(slices.Clone(load), one...), func(r Record) float64 { return r.Load1 })))
		}
	}
	fmt.Printf("(CPU busy, CPU µs/conn and ovs-vswitchd µs/conn: during the c=%d runs, the whole machine's and ovs-vswitchd's; load: 1-min load average after each run)\n", maxC)

	fmt.Println()
	type ratios struct{ rate, lat1, lat8, cpu, p10 float64 }
	got := map[string]ratios{}
	for _, impl := range impls {
		ls := levels[impl]
		if len(ls) < 2 {
			continue
		}
		lo, hi := slices.Min(ls), slices.Max(ls)
		a, b := by[runKey{impl, lo}], by[runKey{impl, hi}]
		rr := ratios{
			rate: median(field(b[maxC], rate)) / median(field(a[maxC], rate)),
			lat8: median(field(b[maxC], med)) / median(field(a[maxC], med)),
			lat1: median(field(b[1], med)) / median(field(a[1], med)),
			cpu:  median(field(b[maxC], cpuUS)) / median(field(a[maxC], cpuUS)),
			p10:  median(field(b[1], p10)) / median(field(a[1], p10)),
		}
		got[impl] = rr
		fmt.Printf("%s, %d vs %d forwards (ratio of the medians; each round's ratio; their median):\n", impl, hi, lo)
		fmt.Printf("  conns/s c=%-3d          %.3fx %s\n", maxC, rr.rate, perRound(a[maxC], b[maxC], rate))
		fmt.Printf("  connect median c=%-3d   %.3fx %s\n", maxC, rr.lat8, perRound(a[maxC], b[maxC], med))
		fmt.Printf("  first packet c=1       %.3fx %s\n", rr.lat1, perRound(a[1], b[1], med))
		fmt.Printf("  first packet c=1, p10  %.3fx %s\n", rr.p10, perRound(a[1], b[1], p10))
		fmt.Printf("  CPU µs/conn c=%-3d      %.3fx %s\n", maxC, rr.cpu, perRound(a[maxC], b[maxC], cpuUS))
		if impl == "iptables" {
			// The extra cost of the rules per connection, one at a time.
			d := median(field(b[1], med)) - median(field(a[1], med))
			fmt.Printf("iptables: the %d extra rules add %.0f µs to a lone connection's first packet\n", hi-lo, d)
		}
	}
	if len(levels["nodenet"]) > 0 && len(levels["iptables"]) > 0 {
		for _, l := range levels["nodenet"] {
			n, i := by[runKey{"nodenet", l}], by[runKey{"iptables", l}]
			if i == nil {
				continue
			}
			fmt.Printf("nodenet vs iptables with %d: conns/s c=%d %.2fx, first packet (c=1 median) %.2fx\n", l, maxC,
				median(field(n[maxC], rate))/median(field(i[maxC], rate)), median(field(n[1], med))/median(field(i[1], med)))
		}
	}
	if r, ok := got["nodenet"]; ok {
		ls := levels["nodenet"]
		lo, hi := slices.Min(ls), slices.Max(ls)
		a, b := by[runKey{"nodenet", lo}], by[runKey{"nodenet", hi}]
		goal := func(what string, of float64, a, b []Record, get func(Record) float64) {
			v := roundRatios(a, b, get)
			m := median(v)
			q1, q3 := quantile(v, 0.25), quantile(v, 0.75)
			noisy := ""
			if q1 < 0.9 || q3 > 1.1 {
				noisy = " (the rounds spread wider than the tolerance: within this machine's noise, not decisive)"
			}
			fmt.Printf("goal (nodenet, %d vs %d forwards, within 10%%): %s %.3fx, median of the paired rounds (middle half %.2f-%.2f; ratio of the medians %.3fx): %s%s\n",
				hi, lo, what, m, q1, q3, of, verdict(math.Abs(m-1) <= 0.10), noisy)
		}
		goal("new-connection rate", r.rate, a[maxC], b[maxC], rate)
		goal("first-packet latency", r.lat1, a[1], b[1], med)
	}
}

// roundRatios: b/a for each round (a and b in round order).
func roundRatios(a, b []Record, get func(Record) float64) []float64 {
	var v []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		if x := get(a[i]); x > 0 {
			v = append(v, get(b[i])/x)
		}
	}
	return v
}

// perRound: the ratio b/a of each round (a and b in round order) and
// their median.
func perRound(a, b []Record, get func(Record) float64) string {
	var s []string
	v := roundRatios(a, b, get)
	for _, x := range v {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return fmt.Sprintf("(%s; %.2f)", strings.Join(s, " "), median(v))
}

func reportJoins(recs []joinRecord) {
	samples := map[string]map[int][]float64{}
	var levels []int
	for _, r := range recs {
		if samples[r.Op] == nil {
			samples[r.Op] = map[int][]float64{}
		}
		samples[r.Op][r.Installed] = append(samples[r.Op][r.Installed], r.MS)
		if !slices.Contains(levels, r.Installed) {
			levels = append(levels, r.Installed)
		}
	}
	slices.Sort(levels)
	fmt.Printf("Join of a probe member (through the API; median (p90) in ms, %d samples each)\n", len(samples["join"][levels[0]]))
	fmt.Println("forwards installed | join, 1 forward | join, no forward | leave, 1 forward | leave, no forward")
	for _, l := range levels {
		fmt.Printf("%18d | %15s | %16s | %16s | %17s\n", l, medP90(samples["join"][l]), medP90(samples["join-nofwd"][l]),
			medP90(samples["leave"][l]), medP90(samples["leave-nofwd"][l]))
	}
	if len(levels) < 2 {
		return
	}
	lo, hi := levels[0], levels[len(levels)-1]
	r := median(samples["join"][hi]) / median(samples["join"][lo])
	fmt.Printf("join, no forward: %d vs %d installed %.2fx; the forward's share of a join: %.1f ms at %d, %.1f ms at %d\n",
		hi, lo, median(samples["join-nofwd"][hi])/median(samples["join-nofwd"][lo]),
		median(samples["join"][lo])-median(samples["join-nofwd"][lo]), lo,
		median(samples["join"][hi])-median(samples["join-nofwd"][hi]), hi)
	fmt.Printf("goal (join with %d forwards installed vs %d, <= 1.2x): %.2fx: %s\n", hi, lo, r, verdict(r <= 1.2))
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func median(v []float64) float64 { return quantile(v, 0.5) }

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 0 && q == 0.5 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[int(q*float64(len(s)-1)+0.5)]
}

func minOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Min(v)
}

func maxOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Max(v)
}

func medP90(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f (%.1f)", median(v), quantile(v, 0.9))
}

func orDash(v float64, format string) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf(format, v)
}
