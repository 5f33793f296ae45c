package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/kafkatrial/kafkatrial/checker"
	"github.com/kafkatrial/kafkatrial/history"
)

func init() {
	rootCmd.AddCommand(newCheckCmd())
}

func newCheckCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "check <run-dir>",
		Short: "Re-check a stored history offline and rewrite verdict.json",
		Long: `Re-judges <run-dir>/history.jsonl: every anomaly with examples, porcupine linearizability (pages in
<run-dir>/linearizability/), and, when <run-dir>/scenario.yaml is present, the scenario's claims.
Exit codes: 0 every claim held; 1 a claim failed (a guarantee violated or a demonstration not reproduced);
2 bad usage (missing directory, corrupt history line, bad scenario); 3 could not run or could not decide
(a linearizability check that ran out of time is Unknown, never a pass).`,
		Example: "  kafkatrial check runs/acks1-leader-kill-42\n" +
			"  kafkatrial check --linearizability-timeout 10m runs/acksall-safe-leader-kill-7",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "linearizability-timeout", checker.DefaultLinearizabilityTimeout,
		"time budget of the porcupine check over all partitions; past it the result is Unknown")
	return cmd
}

// runCheck re-judges one run directory and maps the verdict to an exit code.
func runCheck(stdout, stderr io.Writer, dir string, timeout time.Duration) error {
	if st, err := os.Stat(dir); err != nil {
		return withCode(exitUsage, fmt.Errorf("check: run directory: %w", err))
	} else if !st.IsDir() {
		return withCode(exitUsage, fmt.Errorf("check: %s is not a directory", dir))
	}
	res, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil {
		var le *history.LineError
		if errors.As(err, &le) || errors.Is(err, fs.ErrNotExist) {
			return withCode(exitUsage, fmt.Errorf("check: %w", err))
		}
		return withCode(exitCannotRun, fmt.Errorf("check: %w", err))
	}
	opts := checker.Options{LinearizabilityTimeout: timeout, VisualizeDir: dir}
	scenarioPath := filepath.Join(dir, "scenario.yaml")
	if _, err := os.Stat(scenarioPath); err == nil {
		head, err := readScenarioHead(scenarioPath)
		if err != nil {
			return withCode(exitUsage, fmt.Errorf("check: %w", err))
		}
		if err := checker.ValidateExpect(head.Expect); err != nil {
			return withCode(exitUsage, fmt.Errorf("check: %s: %w", scenarioPath, err))
		}
		opts.Scenario, opts.Seed, opts.Expect = head.ID, head.Seed, head.Expect
		if opts.Scenario == "" {
			opts.Scenario = head.Name
		}
	}
	if err := removeStalePages(filepath.Join(dir, "linearizability")); err != nil {
		return withCode(exitCannotRun, fmt.Errorf("check: %w", err))
	}
	v, err := checker.Check(res.Ops, opts)
	if err != nil {
		return withCode(exitCannotRun, fmt.Errorf("check: %w", err))
	}
	if res.TornTail {
		note := "history.jsonl: the last line was torn (the writer stopped mid-line) and was dropped"
		v.Notes = append(v.Notes, note)
		fmt.Fprintln(stderr, "kafkatrial: note:", note)
	}
	out := filepath.Join(dir, "verdict.json")
	if err := v.WriteFile(out); err != nil {
		return withCode(exitCannotRun, fmt.Errorf("check: %w", err))
	}
	printVerdict(stdout, v, len(res.Ops), out)
	switch v.Outcome() {
	case checker.Failed:
		return withCode(exitViolated, fmt.Errorf("check: claims failed: %s", failedClaims(v)))
	case checker.Undecided:
		return withCode(exitCannotRun, fmt.Errorf("check: undecided: %s", failedClaims(v)))
	}
	return nil
}

// scenarioHead is the part of scenario.yaml the checker needs. The scenarios package owns the full format;
// this reads only these keys, ignoring the rest, so it can be swapped for that package's decoder.
type scenarioHead struct {
	ID     string            `yaml:"id"`
	Name   string            `yaml:"name"`
	Seed   int64             `yaml:"seed"`
	Expect map[string]string `yaml:"expect"`
}

func readScenarioHead(path string) (scenarioHead, error) {
	var h scenarioHead
	b, err := os.ReadFile(path)
	if err != nil {
		return h, fmt.Errorf("reading scenario: %w", err)
	}
	if err := yaml.Unmarshal(b, &h); err != nil {
		return h, fmt.Errorf("reading scenario %s: %w", path, err)
	}
	return h, nil
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

func printVerdict(w io.Writer, v *checker.Verdict, ops int, path string) {
	fmt.Fprintf(w, "history: %d operations; sends ok %d, fail %d, info %d\n", ops, v.Stats.SendsOK, v.Stats.SendsFail, v.Stats.SendsInfo)
	var found []string
	for _, n := range checker.AnomalyNames {
		if c := v.Anomalies[n].Count; c > 0 {
			found = append(found, fmt.Sprintf("%s %d", n, c))
		}
	}
	if len(found) == 0 {
		found = []string{"none"}
	}
	fmt.Fprintf(w, "anomalies: %s\n", strings.Join(found, ", "))
	l := v.Linearizability
	fmt.Fprintf(w, "linearizability: %s (%d partitions, %.2fs)\n", l.Result, l.PartitionsChecked, l.Seconds)
	for _, c := range v.Claims {
		fmt.Fprintf(w, "claim %-22s expect %-4s observed %-6d %s\n", c.Anomaly, c.Expect, c.Observed, c.Status)
	}
	for _, n := range v.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "verdict: %s\n", path)
}

func failedClaims(v *checker.Verdict) string {
	var out []string
	for _, c := range v.Claims {
		switch c.Status {
		case checker.StatusViolated, checker.StatusNotReproduced, checker.StatusUnknown:
			s := fmt.Sprintf("%s %s (observed %d, expect %s)", c.Anomaly, c.Status, c.Observed, c.Expect)
			if c.Reason != "" {
				s += ": " + c.Reason
			}
			out = append(out, s)
		}
	}
	return strings.Join(out, "; ")
}
