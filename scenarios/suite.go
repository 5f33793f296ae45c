package scenarios

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kafkatrial/kafkatrial/results"
)

// SuiteOptions control a suite or matrix run.
type SuiteOptions struct {
	// Out is the suite directory; each run gets a subdirectory (default out/<suite>).
	Out string
	// Seeds runs each scenario with this many seeds (default 1): Seed, Seed+1, ...
	Seeds int
	// Seed is the first seed (0: each scenario's own seed, or 1).
	Seed int64
	// Run carries the per-run options (Out and Seed are set per run).
	Run Options
}

// RunSuite runs every scenario (with every seed), writing one run directory each plus summary.json and
// summary.md. The suite's exit code is the worst of its runs (3 over 1 over 0; 2 for a bad scenario).
func RunSuite(ctx context.Context, name string, suite []*Scenario, opts SuiteOptions) (*results.Summary, error) {
	if opts.Seeds < 1 {
		opts.Seeds = 1
	}
	if opts.Out == "" {
		opts.Out = filepath.Join("out", filepath.Base(name))
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("creating suite directory: %w", err)
	}
	sum := &results.Summary{Suite: name}
	start := time.Now()
	for _, base := range suite {
		for i := 0; i < opts.Seeds; i++ {
			if ctx.Err() != nil {
				break
			}
			s := *base
			seed := opts.Seed
			if seed == 0 {
				seed = s.Seed
			}
			if seed == 0 {
				seed = 1
			}
			seed += int64(i)
			ro := opts.Run
			ro.Seed = seed
			ro.Out = filepath.Join(opts.Out, fmt.Sprintf("%s-%d", s.ID, seed))
			sum.Rows = append(sum.Rows, runRow(ctx, &s, ro, ""))
			sum.ExitCode = worse(sum.ExitCode, sum.Rows[len(sum.Rows)-1].ExitCode)
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	if err := sum.Write(opts.Out); err != nil {
		return sum, err
	}
	return sum, nil
}

// runRow runs one scenario and summarises it, errors included.
func runRow(ctx context.Context, s *Scenario, ro Options, vary string) results.Row {
	t0 := time.Now()
	res, err := Run(ctx, s, ro)
	if res.Verdict == nil {
		msg := "no verdict"
		if err != nil {
			msg = err.Error()
		}
		return results.Row{Scenario: s.ID, Seed: res.Seed, Dir: res.Dir, Vary: vary, Outcome: results.OutcomeError,
			ExitCode: res.ExitCode, Counts: map[string]int{}, Seconds: time.Since(t0).Seconds(), Error: msg}
	}
	run, lerr := LoadRun(res.Dir)
	if lerr != nil {
		return results.Row{Scenario: s.ID, Seed: res.Seed, Dir: res.Dir, Vary: vary, Outcome: results.OutcomeError,
			ExitCode: ExitCannotRun, Counts: map[string]int{}, Error: lerr.Error()}
	}
	row := results.RowFor(run, res.ExitCode, time.Since(t0).Seconds())
	row.Vary = vary
	if err != nil {
		row.Error = err.Error()
	}
	return row
}

// worse returns the more severe of two exit codes: 3 (could not run) over 2 (bad scenario) over 1 over 0.
func worse(a, b int) int {
	rank := map[int]int{ExitOK: 0, ExitViolated: 1, ExitUsage: 2, ExitCannotRun: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// Vary is one matrix dimension: a key set to each of Values in turn.
type Vary struct {
	Key    string
	Values []string
}

// ParseVary reads "key=v1,v2,...".
func ParseVary(s string) (Vary, error) {
	k, vs, ok := strings.Cut(s, "=")
	if !ok || k == "" || vs == "" {
		return Vary{}, fmt.Errorf("--vary %q: want key=value1,value2", s)
	}
	values := strings.Split(vs, ",")
	for i, v := range values {
		if v == "" {
			return Vary{}, fmt.Errorf("--vary %q: value %d is empty", s, i+1)
		}
		if slices.Contains(values[:i], v) {
			return Vary{}, fmt.Errorf("--vary %q: value %s listed twice", s, v)
		}
	}
	return Vary{Key: k, Values: values}, nil
}

// RunMatrix runs the scenario once per combination of the varied settings and writes the tradeoff table
// (matrix.md, matrix.html, matrix.csv) beside summary.json. A combination the scenario rejects (e.g.
// idempotence with acks=1) is an error before anything runs.
func RunMatrix(ctx context.Context, base *Scenario, vary []Vary, opts SuiteOptions) (*results.Summary, error) {
	if len(vary) == 0 {
		return nil, fmt.Errorf("matrix: give at least one --vary key=v1,v2")
	}
	seen := map[string]bool{}
	for _, v := range vary {
		if seen[v.Key] {
			return nil, fmt.Errorf("--vary %s given twice: list every value in one --vary %s=v1,v2,...", v.Key, v.Key)
		}
		seen[v.Key] = true
	}
	combos := [][][2]string{{}}
	for _, v := range vary {
		var next [][][2]string
		for _, c := range combos {
			for _, val := range v.Values {
				next = append(next, append(append([][2]string(nil), c...), [2]string{v.Key, val}))
			}
		}
		combos = next
	}
	type job struct {
		s    *Scenario
		name string
		args []string // the combination as --set arguments, for the row's reproduce line
	}
	var jobs []job
	for _, c := range combos {
		yml, err := base.Marshal()
		if err != nil {
			return nil, err
		}
		s, err := Parse(yml, base.ID)
		if err != nil {
			return nil, err
		}
		s.Source = base.Source
		var parts, args []string
		for _, kv := range c {
			if err := s.Set(kv[0], kv[1]); err != nil {
				return nil, err
			}
			parts = append(parts, kv[0]+"="+kv[1])
			args = append(args, "--set", kv[0]+"="+kv[1])
		}
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("matrix combination %s: %w", strings.Join(parts, " "), err)
		}
		jobs = append(jobs, job{s, strings.Join(parts, " "), args})
	}
	if opts.Out == "" {
		opts.Out = filepath.Join("out", "matrix-"+base.ID)
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("creating matrix directory: %w", err)
	}
	sum := &results.Summary{Suite: base.ID}
	start := time.Now()
	for i, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		ro := opts.Run
		ro.Args = append(slices.Clone(opts.Run.Args), j.args...)
		ro.Seed = opts.Seed
		if ro.Seed == 0 {
			ro.Seed = max(base.Seed, 1)
		}
		ro.Out = filepath.Join(opts.Out, fmt.Sprintf("%02d-%s", i, strings.NewReplacer(" ", "_", "=", "-", "/", "_").Replace(j.name)))
		row := runRow(ctx, j.s, ro, j.name)
		sum.Rows = append(sum.Rows, row)
		sum.ExitCode = worse(sum.ExitCode, row.ExitCode)
	}
	sum.Seconds = time.Since(start).Seconds()
	if err := sum.Write(opts.Out); err != nil {
		return sum, err
	}
	return sum, sum.WriteMatrix(opts.Out)
}
