package scenarios

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kafkatrial/kafkatrial/checker"
	"github.com/kafkatrial/kafkatrial/history"
	"github.com/kafkatrial/kafkatrial/results"
)

// ExitError carries the exit code an error maps to (contract.md).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Recheck re-judges a stored run directory offline: history.jsonl, against the claims of scenario.yaml when it
// is there (anomalies only otherwise). It rewrites verdict.json, the linearizability pages and the reports,
// and returns the verdict with the number of operations judged. Errors are *ExitError: 2 for a missing
// directory, a corrupt history line or a bad scenario (the message names the line or key), 3 when the check
// itself could not run.
func Recheck(dir string, linearizabilityTimeout time.Duration) (*checker.Verdict, int, error) {
	usage := func(err error) error { return &ExitError{ExitUsage, fmt.Errorf("check: %w", err)} }
	cannot := func(err error) error { return &ExitError{ExitCannotRun, fmt.Errorf("check: %w", err)} }
	if st, err := os.Stat(dir); err != nil {
		return nil, 0, usage(fmt.Errorf("run directory: %w", err))
	} else if !st.IsDir() {
		return nil, 0, usage(fmt.Errorf("%s is not a directory", dir))
	}
	hres, err := history.ReadFile(filepath.Join(dir, results.HistoryFile))
	if err != nil {
		var le *history.LineError
		if errors.As(err, &le) || errors.Is(err, fs.ErrNotExist) {
			return nil, 0, usage(err)
		}
		return nil, 0, cannot(err)
	}
	opts := checker.Options{LinearizabilityTimeout: linearizabilityTimeout, VisualizeDir: dir}
	if data, err := os.ReadFile(filepath.Join(dir, results.ScenarioFile)); err == nil {
		s, err := Parse(data, filepath.Join(dir, results.ScenarioFile))
		if err != nil {
			return nil, 0, usage(err)
		}
		opts.Scenario, opts.Seed, opts.Expect = s.ID, s.Seed, s.Expect
		if opts.LinearizabilityTimeout == 0 {
			opts.LinearizabilityTimeout = s.LinearizabilityTimeout
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, cannot(err)
	}
	if err := removeStalePages(filepath.Join(dir, results.LinearizabilityDir)); err != nil {
		return nil, 0, cannot(err)
	}
	v, err := checker.Check(hres.Ops, opts)
	if err != nil {
		return nil, 0, cannot(err)
	}
	if hres.TornTail {
		v.Notes = append(v.Notes, "history.jsonl: the last line was torn (the writer stopped mid-line) and was dropped")
	}
	if err := writeVerdictAndReports(dir, v); err != nil {
		return v, len(hres.Ops), cannot(err)
	}
	return v, len(hres.Ops), nil
}

// removeStalePages deletes the visualizations of an earlier check, so the directory matches the new verdict.
func removeStalePages(dir string) error {
	pages, err := filepath.Glob(filepath.Join(dir, "*.html"))
	if err != nil {
		return fmt.Errorf("listing old linearizability pages: %w", err)
	}
	for _, p := range pages {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("removing old linearizability page: %w", err)
		}
	}
	return nil
}
