package replica

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The scenario files in testdata are scripts in the style of etcd-io/raft's datadriven tests: a command line,
// a "----" line, then the output the command must print, ending at a blank line. Lines starting with # are
// comments. Each file runs against a fresh world (see world_test.go). `go test ./broker/replica -run
// TestScenarios -args -rewrite` regenerates the expected outputs; review the diff before keeping it.
var rewrite = flag.Bool("rewrite", false, "rewrite the expected outputs in testdata/*.txt with the actual ones")

// maxScriptBytes bounds a scenario file so a runaway rewrite cannot produce something unreadable.
const maxScriptBytes = 1 << 20

type scriptCase struct {
	pre  string // comments and blank lines before the command, kept on rewrite
	line int    // 1-based line of the command
	cmd  string
	want string
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenario files in testdata")
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) { runScript(t, path) })
	}
}

func runScript(t *testing.T, path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > maxScriptBytes {
		t.Fatalf("%s: %d bytes, more than the %d a scenario may have", path, len(raw), maxScriptBytes)
	}
	cases, tail, err := parseScript(string(raw))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	w := newWorld()
	var out strings.Builder
	for _, c := range cases {
		got, err := w.run(c.cmd)
		if err != nil {
			t.Fatalf("%s:%d: %s: %v", path, c.line, c.cmd, err)
		}
		got = strings.TrimRight(got, "\n")
		if strings.Contains(got, "\n\n") || got == "" {
			t.Fatalf("%s:%d: %s: output must be non-empty without blank lines, got %q", path, c.line, c.cmd, got)
		}
		if !*rewrite && got != c.want {
			t.Errorf("%s:%d: %s\n--- want\n%s\n--- got\n%s", path, c.line, c.cmd, c.want, got)
		}
		fmt.Fprintf(&out, "%s%s\n----\n%s\n", c.pre, c.cmd, got)
	}
	out.WriteString(tail)
	if *rewrite {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// parseScript splits a scenario file into cases. tail is whatever follows the last case (comments).
func parseScript(text string) (cases []scriptCase, tail string, err error) {
	lines := strings.Split(text, "\n")
	var pre strings.Builder
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if trimmed := strings.TrimSpace(line); trimmed == "" || strings.HasPrefix(trimmed, "#") {
			if i == len(lines)-1 && line == "" {
				break // the file's final newline
			}
			pre.WriteString(line + "\n")
			continue
		}
		c := scriptCase{pre: pre.String(), line: i + 1, cmd: strings.TrimSpace(line)}
		pre.Reset()
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "----" {
			return nil, "", fmt.Errorf("line %d: command %q must be followed by a ---- line", i+1, c.cmd)
		}
		i += 2
		var want []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		c.want = strings.Join(want, "\n")
		cases = append(cases, c)
		if i < len(lines)-1 {
			pre.WriteString("\n") // the blank line that ended the output
		}
	}
	return cases, pre.String(), nil
}

// args is a parsed command: a name and key=value arguments. Every argument must be used, so a typo in a
// script fails instead of silently taking a default.
type args struct {
	name string
	kv   map[string]string
	used map[string]bool
	err  error
}

func parseArgs(cmd string) *args {
	fields := strings.Fields(cmd)
	a := &args{name: fields[0], kv: map[string]string{}, used: map[string]bool{}}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		if _, dup := a.kv[k]; dup {
			a.fail(fmt.Errorf("argument %q given twice", k))
		}
		a.kv[k] = v
	}
	return a
}

func (a *args) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

func (a *args) has(k string) bool {
	_, ok := a.kv[k]
	a.used[k] = true
	return ok
}

func (a *args) str(k string) string {
	v, ok := a.kv[k]
	a.used[k] = true
	if !ok {
		a.fail(fmt.Errorf("missing argument %q", k))
	}
	return v
}

func (a *args) i64(k string) int64 {
	s := a.str(k)
	if a.err != nil {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		a.fail(fmt.Errorf("argument %s=%q: %w", k, s, err))
	}
	return v
}

func (a *args) i32(k string) int32 {
	v := a.i64(k)
	if v < -1<<31 || v > 1<<31-1 {
		a.fail(fmt.Errorf("argument %s=%d out of int32 range", k, v))
	}
	return int32(v)
}

func (a *args) i64Or(k string, def int64) int64 {
	if !a.has(k) {
		return def
	}
	return a.i64(k)
}

func (a *args) ids(k string) []int32 {
	s := a.str(k)
	if s == "" {
		return nil
	}
	var out []int32
	for _, p := range strings.Split(s, ",") {
		v, err := strconv.ParseInt(p, 10, 32)
		if err != nil {
			a.fail(fmt.Errorf("argument %s=%q: %w", k, s, err))
			return nil
		}
		out = append(out, int32(v))
	}
	return out
}

func (a *args) dur(k string) time.Duration {
	s := a.str(k)
	if a.err != nil {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		a.fail(fmt.Errorf("argument %s=%q: %w", k, s, err))
	}
	return d
}

// done reports a parse error or an argument the command did not use.
func (a *args) done() error {
	if a.err != nil {
		return a.err
	}
	for k := range a.kv {
		if !a.used[k] {
			return fmt.Errorf("unknown argument %q for %s", k, a.name)
		}
	}
	return nil
}

func TestParseScriptRejectsMissingSeparator(t *testing.T) {
	if _, _, err := parseScript("tick t=1s\nhw=0\n"); err == nil {
		t.Fatal("a command without ---- must be rejected")
	}
}

func TestParseScriptRoundTrip(t *testing.T) {
	text := "# intro\n\ncmd a=1\n----\nout1\nout2\n\n# between\ncmd2\n----\nx\n\n# trailing\n"
	cases, tail, err := parseScript(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 || cases[0].want != "out1\nout2" || cases[1].cmd != "cmd2" || cases[1].line != 9 {
		t.Fatalf("parsed %+v", cases)
	}
	var b strings.Builder
	for _, c := range cases {
		fmt.Fprintf(&b, "%s%s\n----\n%s\n", c.pre, c.cmd, c.want)
	}
	b.WriteString(tail)
	if b.String() != text {
		t.Fatalf("round trip changed the file:\n%q\n%q", text, b.String())
	}
}
