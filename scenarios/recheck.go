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

// Rechecked is the outcome of re-judging a run directory.
type Rechecked struct {
	Verdict *checker.Verdict
	// Ops is the number of operations judged.
	Ops int
	// ExitCode is the run's exit code for this verdict: 0, 1 or 3 (3 also when the scenario's faults were
	// scheduled and none was injected).
	ExitCode int
	// NoFaultInjected says faults were scheduled and none of them was injected.
	NoFaultInjected bool
}

// Recheck re-judges a stored run directory offline: history.jsonl, against the claims of scenario.yaml when it
// is there (anomalies only otherwise). It keeps the run's own notes (run.json) and the faults that were not
// injected (nemesis.jsonl), and rewrites verdict.json, the linearizability pages and the reports.
// linearizabilityTimeout 0 takes the scenario's linearizability_timeout (else the checker's default).
// Errors are *ExitError: 2 for a missing directory, a corrupt history line or a bad scenario (the message
// names the line or key), 3 when the check itself could not run.
func Recheck(dir string, linearizabilityTimeout time.Duration) (*Rechecked, error) {
	usage := func(err error) error { return &ExitError{ExitUsage, fmt.Errorf("check: %w", err)} }
	cannot := func(err error) error { return &ExitError{ExitCannotRun, fmt.Errorf("check: %w", err)} }
	if st, err := os.Stat(dir); err != nil {
		return nil, usage(fmt.Errorf("run directory: %w", err))
	} else if !st.IsDir() {
		return nil, usage(fmt.Errorf("%s is not a directory", dir))
	}
	hres, err := history.ReadFile(filepath.Join(dir, results.HistoryFile))
	if err != nil {
		var le *history.LineError
		if errors.As(err, &le) || errors.Is(err, fs.ErrNotExist) {
			return nil, usage(err)
		}
		return nil, cannot(err)
	}
	var s *Scenario
	if data, err := os.ReadFile(filepath.Join(dir, results.ScenarioFile)); err == nil {
		s, err = Parse(data, filepath.Join(dir, results.ScenarioFile))
		if err != nil {
			return nil, usage(err)
		}
		if linearizabilityTimeout == 0 {
			linearizabilityTimeout = s.LinearizabilityTimeout
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, cannot(err)
	}
	if err := removeStalePages(filepath.Join(dir, results.LinearizabilityDir)); err != nil {
		return nil, cannot(err)
	}
	v, noneInjected, err := judgeOps(dir, hres, s, linearizabilityTimeout)
	if err != nil {
		return nil, cannot(err)
	}
	out := &Rechecked{Verdict: v, Ops: len(hres.Ops), ExitCode: exitCode(v, noneInjected), NoFaultInjected: noneInjected}
	if err := writeVerdictAndReports(dir, v); err != nil {
		return out, cannot(err)
	}
	return out, nil
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
