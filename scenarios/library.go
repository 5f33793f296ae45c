package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

//go:embed claims/*.yaml examples/*.yaml
var bundled embed.FS

// Bundled returns every bundled scenario, sorted by id within each suite: the claims suite (one scenario per
// row of claims.md) and the getting-started examples.
func Bundled() ([]*Scenario, error) {
	var out []*Scenario
	for _, dir := range []string{"claims", "examples"} {
		ss, err := loadDir(bundled, dir, dir, "")
		if err != nil {
			return nil, err
		}
		out = append(out, ss...)
	}
	return out, nil
}

// Suite returns the scenarios of a suite: "claims" (bundled) or a directory of YAML files.
func Suite(name string) ([]*Scenario, error) {
	if name == "claims" || name == "examples" {
		return loadDir(bundled, name, name, "")
	}
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("suite %q: neither a bundled suite (claims, examples) nor a directory: %w", name, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("suite %q: not a directory", name)
	}
	return loadDir(os.DirFS(name), ".", name, name)
}

// Load finds a scenario by bundled id or reads a YAML file.
func Load(idOrFile string) (*Scenario, error) {
	if strings.HasSuffix(idOrFile, ".yaml") || strings.HasSuffix(idOrFile, ".yml") || strings.ContainsRune(idOrFile, os.PathSeparator) {
		s, err := ParseFile(idOrFile)
		if err == nil {
			s.Source = idOrFile
		}
		return s, err
	}
	for _, dir := range []string{"claims", "examples"} {
		p := path.Join(dir, idOrFile+".yaml")
		if data, err := bundled.ReadFile(p); err == nil {
			s, err := Parse(data, p)
			if err == nil {
				s.Source = idOrFile
			}
			return s, err
		}
	}
	all, _ := Bundled()
	ids := make([]string, len(all))
	for i, s := range all {
		ids[i] = s.ID
	}
	return nil, fmt.Errorf("no bundled scenario %q and no such .yaml file (bundled: %s)", idOrFile, strings.Join(ids, ", "))
}

// loadDir parses every .yaml file of dir in fsys. name is the suite as the user named it (for messages);
// fileDir is where its files are on disk ("" for bundled ones, which are rerun by id).
func loadDir(fsys fs.FS, dir, name, fileDir string) ([]*Scenario, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading suite %s: %w", name, err)
	}
	var out []*Scenario
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		p := path.Join(dir, e.Name())
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		src := p
		if fileDir != "" {
			src = filepath.Join(fileDir, e.Name())
		}
		s, err := Parse(data, src)
		if err != nil {
			return nil, err
		}
		s.Source = s.ID
		if fileDir != "" {
			s.Source = src
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("suite %s has no .yaml scenarios", name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
