package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// result is one client's run as read back from the results file.
type result struct {
	name  string
	ms    map[int]float64 // port number → duration
	tx    map[int]float64 // floor: port number → transact part
	cpu   map[int]float64 // port number → client CPU during the call
	read  map[int]float64 // port number → bytes the client read during the call
	run   Record
	ports int
}

// window is a range of port numbers, both ends included.
type window struct{ from, to int }

func (w window) String() string { return fmt.Sprintf("%d–%d", w.from, w.to) }

func (r *result) median(w window) (float64, bool) { return medianOf(r.ms, w) }

func medianOf(m map[int]float64, w window) (float64, bool) {
	var v []float64
	for n := w.from; n <= w.to; n++ {
		if d, ok := m[n]; ok {
			v = append(v, d)
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

// report prints the comparison from the results file(s).
func report(args []string) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	base := fs.String("base", "nodenet", "client the ratios are taken against")
	floorName := fs.String("floor", "floor", "client that is the floor")
	anchor := fs.String("anchor", "vsctl", "client the speed goal is measured against")
	goals := fs.Bool("goals", true, "check the issue's goals (they are about a real ovs-vswitchd)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	results, err := readResults(fs.Args())
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return fmt.Errorf("no results in %s", strings.Join(fs.Args(), " "))
	}
	n := 0
	for _, r := range results {
		n = max(n, r.ports)
	}
	size := max(n/10, 1)
	first, last := window{1, min(size, n)}, window{max(n-size+1, 1), n}
	byName := map[string]*result{}
	for _, r := range results {
		byName[r.name] = r
	}

	fmt.Printf("%d ports added one at a time, each call returning once cur_cfg reached its next_cfg; medians in ms\n\n", n)
	nameW := len("client")
	for _, r := range results {
		nameW = max(nameW, len(r.name))
	}
	hFirst, hLast := "median ports "+first.String(), "median ports "+last.String()
	hRatio := fmt.Sprintf("ratio to %s at %s", *base, last)
	fmt.Printf("%-*s | %s | %s | %s | %s\n", nameW, "client", hFirst, hLast, "last/first", hRatio)
	fmt.Printf("%s-|-%s-|-%s-|-%s-|-%s\n", dashes(nameW), dashes(runeLen(hFirst)), dashes(runeLen(hLast)),
		dashes(len("last/first")), dashes(runeLen(hRatio)))
	baseLast, haveBase := 0.0, false
	if b := byName[*base]; b != nil {
		baseLast, haveBase = b.median(last)
	}
	for _, r := range results {
		f, okF := r.median(first)
		l, okL := r.median(last)
		cell := func(v float64, ok bool) string {
			if !ok {
				return "-"
			}
			return fmt.Sprintf("%.1f", v)
		}
		growth, ratio := "-", "-"
		if okF && okL && f > 0 {
			growth = fmt.Sprintf("%.2f", l/f)
		}
		switch {
		case r.name == *base:
			ratio = "1.0x (reference)"
		case okL && haveBase && baseLast > 0:
			ratio = fmt.Sprintf("%s/%s = %s", r.name, *base, fmtRatio(l/baseLast))
		}
		if r.run.Err != "" {
			ratio += fmt.Sprintf("  FAILED after %d ports", r.ports)
		}
		fmt.Printf("%-*s | %*s | %*s | %10s | %s\n", nameW, r.name, runeLen(hFirst), cell(f, okF),
			runeLen(hLast), cell(l, okL), growth, ratio)
	}

	if n >= 10 {
		fmt.Printf("\nmedian ms per tenth of the ports\n")
		fmt.Printf("%-*s", nameW, "client")
		var deciles []window
		for i := 0; i < 10; i++ {
			w := window{i*n/10 + 1, (i + 1) * n / 10}
			deciles = append(deciles, w)
			fmt.Printf(" | %9s", w)
		}
		fmt.Println()
		for _, r := range results {
			fmt.Printf("%-*s", nameW, r.name)
			for _, w := range deciles {
				if m, ok := r.median(w); ok {
					fmt.Printf(" | %9.1f", m)
				} else {
					fmt.Printf(" | %9s", "-")
				}
			}
			fmt.Println()
		}
	}

	fmt.Println()
	for _, r := range results {
		cf, _ := medianOf(r.cpu, first)
		cl, _ := medianOf(r.cpu, last)
		fmt.Printf("%-*s  %d ports in %.1f s; client CPU per call (median) %.2f ms at %s, %.2f ms at %s",
			nameW, r.name, r.ports, r.run.TotalMS/1000, cf, first, cl, last)
		if rf, ok := medianOf(r.read, first); ok {
			rl, _ := medianOf(r.read, last)
			fmt.Printf("; read from ovsdb-server per call %.1f kB, %.1f kB", rf/1000, rl/1000)
		}
		fmt.Println()
		fmt.Printf("%-*s  %s\n", nameW, "", r.run.Note)
	}
	if fl := byName[*floorName]; fl != nil && len(fl.tx) > 0 {
		for _, w := range []window{first, last} {
			t, _ := medianOf(fl.tx, w)
			wait := map[int]float64{}
			for k, v := range fl.ms {
				wait[k] = v - fl.tx[k]
			}
			wt, _ := medianOf(wait, w)
			fmt.Printf("%s at ports %s: transact reply %.1f ms, then the wait for cur_cfg %.1f ms (medians)\n",
				*floorName, w, t, wt)
		}
	}

	b := byName[*base]
	if b == nil {
		fmt.Printf("\nno %s results\n", *base)
		return nil
	}
	if *goals {
		printGoals(*base, *anchor, b, byName[*anchor], first, last)
	}
	if fl := byName[*floorName]; fl != nil {
		fmt.Printf("\n%s's gap to the %s (the %s is the servers' limit, the gap is the client's)\n",
			*base, *floorName, *floorName)
		for _, w := range []window{first, last} {
			ff, ok1 := fl.median(w)
			bb, ok2 := b.median(w)
			if ok1 && ok2 && ff > 0 {
				fmt.Printf("  ports %s: %+.1f ms (%.1f vs %.1f ms, %s)\n", w, bb-ff, bb, ff, fmtRatio(bb/ff))
			}
		}
	}
	return nil
}

// printGoals checks the goals: base flat over the port count, and
// at least 5x faster than the anchor at the last ports.
func printGoals(base, anchor string, b, a *result, first, last window) {
	fmt.Println("\ngoals")
	bf, okF := b.median(first)
	bl, okL := b.median(last)
	if okF && okL && bf > 0 {
		g := bl / bf
		fmt.Printf("  %s per-port time flat, last/first <= 1.3: %.2f (%.1f -> %.1f ms): %s\n",
			base, g, bf, bl, metOrNot(g <= 1.3))
	}
	if a != nil {
		if al, ok := a.median(last); ok && okL && bl > 0 {
			fmt.Printf("  %s >= 5x faster than %s at ports %s: %s (%.1f vs %.1f ms): %s\n",
				base, anchor, last, fmtRatio(al/bl), bl, al, metOrNot(al/bl >= 5))
		}
	}
}

func readResults(paths []string) ([]*result, error) {
	var out []*result
	byName := map[string]*result{}
	get := func(name string) *result {
		r := byName[name]
		if r == nil {
			r = &result{name: name, ms: map[int]float64{}, tx: map[int]float64{}, cpu: map[int]float64{}, read: map[int]float64{}}
			byName[name] = r
			out = append(out, r)
		}
		return r
	}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var rec Record
			if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Client == "" {
				continue
			}
			r := get(rec.Client)
			switch rec.Kind {
			case "port":
				r.ms[rec.N] = rec.MS
				if rec.TransactMS > 0 {
					r.tx[rec.N] = rec.TransactMS
				}
				r.cpu[rec.N] = rec.PortCPUMS
				if rec.ReadBytes > 0 {
					r.read[rec.N] = float64(rec.ReadBytes)
				}
				r.ports = max(r.ports, rec.N)
			case "run":
				r.run = rec
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return out, nil
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

func dashes(n int) string { return strings.Repeat("-", n) }

func runeLen(s string) int { return len([]rune(s)) }

func fmtRatio(r float64) string {
	if r >= 10 {
		return fmt.Sprintf("%.0fx", r)
	}
	if r < 0.1 {
		return fmt.Sprintf("%.3fx", r)
	}
	return fmt.Sprintf("%.1fx", r)
}
