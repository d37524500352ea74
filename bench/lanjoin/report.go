package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
)

// report prints the table of a results file and, given the nodenet
// daemon's debug log, how much of each probe join was ovs-vswitchd's.
func report(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("want RESULTS.jsonl [DAEMON.log]")
	}
	recs, err := readRecords(args[0])
	if err != nil {
		return err
	}
	var portMS map[int][]float64
	if len(args) > 1 {
		if portMS, err = probePortTimes(args[1]); err != nil {
			return err
		}
	}
	// samples[client][op][level]
	samples := map[string]map[string]map[int][]float64{}
	var levels []int
	for _, r := range recs {
		if r.Op == "fill" {
			continue
		}
		if samples[r.Client] == nil {
			samples[r.Client] = map[string]map[int][]float64{}
		}
		if samples[r.Client][r.Op] == nil {
			samples[r.Client][r.Op] = map[int][]float64{}
		}
		samples[r.Client][r.Op][r.Level] = append(samples[r.Client][r.Op][r.Level], r.MS)
		if !slices.Contains(levels, r.Level) {
			levels = append(levels, r.Level)
		}
	}
	slices.Sort(levels)
	nn, shell := samples["nodenet"], samples["shell"]
	fmt.Println("members | nodenet join median (p90) | of it: OVS port | nodenet leave | shell join median (p90) | shell leave | shell/nodenet join")
	for _, l := range levels {
		fmt.Printf("%7d | %s | %s | %s | %s | %s | %s\n", l,
			medP90(nn["join"][l]), msOrDash(median(portMS[l])), msOrDash(median(nn["leave"][l])),
			medP90(shell["join"][l]), msOrDash(median(shell["leave"][l])),
			ratio(median(shell["join"][l]), median(nn["join"][l])))
	}
	if len(levels) < 2 || nn == nil {
		return nil
	}
	first, last := levels[0], levels[len(levels)-1]
	j1, jN := median(nn["join"][first]), median(nn["join"][last])
	fmt.Printf("\ngoal: median join <= 15 ms: %s at %d members, %s at %d\n", msOrDash(j1), first, msOrDash(jN), last)
	fmt.Printf("goal: flat, join at %d / at %d <= 1.3: %s\n", last, first, ratio(jN, j1))
	fmt.Printf("goal: >= 3x the shell baseline at %d: %s\n", last, ratio(median(shell["join"][last]), jN))
	if p1, pN := median(portMS[first]), median(portMS[last]); p1 > 0 && pN > 0 {
		fmt.Printf("nodenet join without the OVS port step: %s at %d, %s at %d\n",
			msOrDash(j1-p1), first, msOrDash(jN-pN), last)
	}
	return nil
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

var madeLine = regexp.MustCompile(`msg="member made" .*member=(\S+) link_ms=\S+ port_ms=(\S+)`)

// probePortTimes reads the daemon's "member made" lines: the probes' OVS
// port times by how many fillers were joined before them.
func probePortTimes(path string) (map[int][]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[int][]float64{}
	fillers := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := madeLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if m[1] != "probe" {
			fillers++
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		out[fillers] = append(out[fillers], v)
	}
	return out, sc.Err()
}

func median(v []float64) float64 { return quantile(v, 0.5) }

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

func medP90(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f ms (%.1f)", median(v), quantile(v, 0.9))
}

func msOrDash(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f ms", v)
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
