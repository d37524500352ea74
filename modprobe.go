package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"nodenet/boot"
)

// runModprobe serves the kernel's module requests when nodenet is the
// system's modprobe: `modprobe -q -- NAME` (request_module's call), or
// `modprobe NAME...` by hand. Names may be aliases. Options other than -q
// are accepted and ignored; there is no removal.
func runModprobe(args []string, stderr io.Writer) int {
	quiet := false
	var names []string
	for i, a := range args {
		if a == "--" {
			names = append(names, args[i+1:]...)
			break
		}
		if strings.HasPrefix(a, "-") {
			quiet = quiet || a == "-q" || a == "--quiet"
			continue
		}
		names = append(names, a)
	}
	if len(names) == 0 {
		fmt.Fprintln(stderr, "usage: modprobe [-q] [--] MODULE...")
		return 2
	}
	l := &boot.ModuleLoader{}
	if !quiet {
		l.Log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	status := 0
	for _, name := range names {
		if err := l.Load(context.Background(), name); err != nil {
			if !quiet {
				fmt.Fprintln(stderr, "modprobe:", err)
			}
			status = 1
		}
	}
	return status
}
