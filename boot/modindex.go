package boot

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// moduleIndex is what depmod wrote under a modules directory: each
// module's file and hard dependencies, soft "pre:" dependencies, aliases
// and the modules built into the kernel.
type moduleIndex struct {
	dir     string
	files   map[string]string   // module name → path of its .ko
	deps    map[string][]string // module name → hard dependencies (names)
	softPre map[string][]string // module name → softdep pre: names (may be aliases)
	aliases [][2]string         // pattern, module name; in file order
	builtin map[string]bool
}

// moduleName turns a path or name into the kernel's spelling of a module
// name: no directory, no .ko(.xz|.zst|.gz), '_' for '-'.
func moduleName(s string) string {
	s = filepath.Base(s)
	if i := strings.Index(s, ".ko"); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}

func readModuleIndex(dir string) (*moduleIndex, error) {
	ix := &moduleIndex{dir: dir, files: map[string]string{}, deps: map[string][]string{},
		softPre: map[string][]string{}, builtin: map[string]bool{}}
	// modules.dep is required: without it nothing can be resolved.
	if err := eachLine(filepath.Join(dir, "modules.dep"), ix.addDep); err != nil {
		return nil, err
	}
	for name, add := range map[string]func(string) error{
		"modules.softdep": ix.addSoftdep,
		"modules.alias":   ix.addAlias,
		"modules.builtin": ix.addBuiltin,
	} {
		if err := eachLine(filepath.Join(dir, name), add); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return ix, nil
}

// eachLine calls add for every line that is neither empty nor a comment;
// the error names the file and line.
func eachLine(file string, add func(string) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20) // a dep line of a big module is long
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := add(line); err != nil {
			return fmt.Errorf("%s:%d: %w", file, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", file, err)
	}
	return nil
}

// addDep reads "kernel/a/x.ko: kernel/b/y.ko kernel/c/z.ko".
func (ix *moduleIndex) addDep(line string) error {
	file, deps, ok := strings.Cut(line, ":")
	if !ok {
		return fmt.Errorf("no ':' in %q", line)
	}
	name := moduleName(file)
	ix.files[name] = ix.abs(file)
	for _, d := range strings.Fields(deps) {
		ix.deps[name] = append(ix.deps[name], moduleName(d))
	}
	return nil
}

// addSoftdep reads "softdep libcrc32c pre: crc32c post: x"; post: is not
// needed to load a module and is ignored.
func (ix *moduleIndex) addSoftdep(line string) error {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "softdep" {
		return nil // not a softdep line; modprobe ignores those too
	}
	name, pre := moduleName(f[1]), false
	for _, w := range f[2:] {
		switch w {
		case "pre:":
			pre = true
		case "post:":
			pre = false
		default:
			if pre {
				ix.softPre[name] = append(ix.softPre[name], w)
			}
		}
	}
	return nil
}

// addAlias reads "alias crc32c crc32c_generic" (patterns may hold globs).
func (ix *moduleIndex) addAlias(line string) error {
	f := strings.Fields(line)
	if len(f) == 3 && f[0] == "alias" {
		ix.aliases = append(ix.aliases, [2]string{f[1], moduleName(f[2])})
	}
	return nil
}

// addBuiltin reads "kernel/crypto/crc32c_generic.ko".
func (ix *moduleIndex) addBuiltin(line string) error {
	ix.builtin[moduleName(line)] = true
	return nil
}

func (ix *moduleIndex) abs(file string) string {
	if filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(ix.dir, file)
}

// lookup returns the modules a name stands for: itself when it is a module
// or built in, else every module an alias of that name points to.
func (ix *moduleIndex) lookup(name string) []string {
	if n := moduleName(name); ix.files[n] != "" || ix.builtin[n] {
		return []string{n}
	}
	var out []string
	for _, a := range ix.aliases {
		// Alias patterns are fnmatch globs; path.Match differs only on '/', which aliases lack.
		if ok, _ := path.Match(a[0], name); ok && !slices.Contains(out, a[1]) {
			out = append(out, a[1])
		}
	}
	return out
}
