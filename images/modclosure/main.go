// Command modclosure prints the module files a set of kernel modules needs,
// dependencies and soft dependencies included, from an unpacked kernel's
// modules.dep: what images/build.sh copies into the initramfs. It uses the
// same planner nodenet loads modules with at boot.
package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"nodenet/boot"
)

func main() {
	dir := flag.String("dir", "", "the unpacked kernel's lib/modules/VERSION")
	flag.Parse()
	if *dir == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: modclosure -dir lib/modules/VERSION module...")
		os.Exit(2)
	}
	l := &boot.ModuleLoader{ModulesDir: *dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	files := map[string]bool{}
	for _, name := range flag.Args() {
		steps, err := l.Plan(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "modclosure:", err)
			os.Exit(1)
		}
		for _, s := range steps {
			rel, err := filepath.Rel(*dir, s.Path)
			if err != nil {
				fmt.Fprintln(os.Stderr, "modclosure:", err)
				os.Exit(1)
			}
			files[rel] = true
		}
	}
	var out []string
	for f := range files {
		out = append(out, f)
	}
	sort.Strings(out)
	for _, f := range out {
		fmt.Println(f)
	}
}
