package cmdline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Parse reads kernel, the content of /proc/cmdline, and file, the content
// of the optional config file (one key=value a line, '#' comments). Kernel
// flags win per key: if the kernel line has any ip=, the file's ip= lines
// are ignored, and likewise for every other key, even when the kernel's
// value turns out to be malformed. Unknown keys are ignored, except unknown
// nodenet.* keys, which are warned about as likely typos. A malformed value
// is skipped with a warning in Config.Warnings; Parse never fails.
func Parse(kernel, file string) Config {
	var c Config
	kflags, fflags := splitKernel(kernel), splitFile(file)
	onKernel := make(map[string]bool, len(kflags))
	for _, f := range kflags {
		onKernel[f.key] = true
	}
	for _, f := range kflags {
		c.apply(f)
	}
	for _, f := range fflags {
		if !onKernel[f.key] {
			c.apply(f)
		}
	}
	return c
}

// ParseFiles reads the kernel command line and the config file and parses
// them. A missing kernel command line is an error. A missing config file,
// or an empty configPath, means no file; one that cannot be read is
// reported in Warnings, since networking must still come up without it.
func ParseFiles(cmdlinePath, configPath string) (Config, error) {
	kernel, err := os.ReadFile(cmdlinePath)
	if err != nil {
		return Config{}, fmt.Errorf("read kernel command line: %w", err)
	}
	file, warning := readConfig(configPath)
	c := Parse(string(kernel), file)
	if warning != "" {
		c.Warnings = append([]string{warning}, c.Warnings...)
	}
	return c, nil
}

func readConfig(path string) (content, warning string) {
	if path == "" {
		return "", ""
	}
	// Stat first: opening a FIFO for reading would block start-up.
	fi, err := os.Stat(path)
	switch {
	case path == os.DevNull: // the way to say "no config file"
		return "", ""
	case errors.Is(err, fs.ErrNotExist):
		return "", ""
	case err != nil:
		return "", fmt.Sprintf("config file ignored: %v", err)
	case !fi.Mode().IsRegular():
		return "", fmt.Sprintf("config file %s ignored: not a regular file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Sprintf("config file ignored: %v", err)
	}
	return string(b), ""
}

// flag is one key[=value] from the kernel line or the config file.
type flag struct {
	key, val string
	eq       bool   // written with '='
	where    string // "" on the kernel line, "config line N" in the file
}

// String renders the flag for a warning, quoted when it holds bytes that
// would make the warning ambiguous or span lines.
func (f flag) String() string {
	s := f.key
	if f.eq {
		s += "=" + f.val
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r == ' ' || r == '"' || !strconv.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}

// aliases maps old names to the key they stand for; nfsroot.rst keeps
// nfsaddrs= as an alias of ip=.
var aliases = map[string]string{"nfsaddrs": "ip"}

func newFlag(key, val string, eq bool, where string) flag {
	if k, ok := aliases[key]; ok {
		key = k
	}
	if strings.HasPrefix(key, "nodenet.") {
		// The kernel treats '-' and '_' in parameter names alike.
		key = strings.ReplaceAll(key, "_", "-")
	}
	return flag{key: key, val: val, eq: eq, where: where}
}

// splitKernel splits a command line as the kernel's next_arg does: at
// whitespace outside double quotes. The quotes themselves are dropped, so
// foo="a b" and "foo=a b" both give foo = "a b".
func splitKernel(s string) []flag {
	var flags []flag
	for {
		s = strings.TrimLeft(s, " \t\n\v\f\r")
		if s == "" {
			return flags
		}
		i, quoted := 0, false
		for ; i < len(s); i++ {
			if s[i] == '"' {
				quoted = !quoted
			} else if !quoted && isSpace(s[i]) {
				break
			}
		}
		key, val, eq := strings.Cut(strings.ReplaceAll(s[:i], `"`, ""), "=")
		flags = append(flags, newFlag(key, val, eq, ""))
		s = s[i:]
	}
}

// splitFile reads one key=value a line. '#' starts a comment at the start
// of a line or after whitespace (no value contains one); blank lines are
// skipped; a value may be wrapped in double quotes.
func splitFile(s string) []flag {
	var flags []flag
	for n, line := range strings.Split(s, "\n") {
		for i := 0; i < len(line); i++ {
			if line[i] == '#' && (i == 0 || isSpace(line[i-1])) {
				line = line[:i]
				break
			}
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		key, val, eq := strings.Cut(line, "=")
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		flags = append(flags, newFlag(strings.TrimSpace(key), val, eq, fmt.Sprintf("config line %d", n+1)))
	}
	return flags
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\v' || b == '\f' || b == '\r'
}

// apply dispatches one flag to its handler and records what it rejects.
func (c *Config) apply(f flag) {
	h, ok := handlers[f.key]
	switch {
	case !ok && strings.HasPrefix(f.key, "nodenet."):
		c.warn(f, errors.New("unknown nodenet flag"))
		return
	case !ok:
		return
	case f.val == "" && f.key != "nodenet.debug":
		c.warn(f, errors.New("missing value"))
		return
	}
	err := h(c, f.val)
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			c.warn(f, e)
		}
	} else if err != nil {
		c.warn(f, err)
	}
}

func (c *Config) warn(f flag, err error) {
	w := fmt.Sprintf("%s: %v", f, err)
	if f.where != "" {
		w = f.where + ": " + w
	}
	c.Warnings = append(c.Warnings, w)
}
