package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kafkatrial/kafkatrial/checker"
	"github.com/kafkatrial/kafkatrial/scenarios"
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
			if !cmd.Flags().Changed("linearizability-timeout") {
				timeout = 0 // the scenario's linearizability_timeout, as the run used
			} else if timeout <= 0 {
				return withCode(exitUsage, fmt.Errorf("--linearizability-timeout %v: want a positive duration like 10m", timeout))
			}
			return runCheck(cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "linearizability-timeout", 0,
		fmt.Sprintf("time budget of the porcupine check over all partitions; past it the result is Unknown (default: the run's linearizability_timeout from scenario.yaml, else %v)", checker.DefaultLinearizabilityTimeout))
	return cmd
}

// runCheck re-judges one run directory (scenarios.Recheck) and maps the verdict to an exit code. timeout 0
// takes the scenario's linearizability_timeout.
func runCheck(stdout, stderr io.Writer, dir string, timeout time.Duration) error {
	rc, err := scenarios.Recheck(dir, timeout)
	if err != nil {
		var ee *scenarios.ExitError
		if errors.As(err, &ee) {
			return withCode(ee.Code, ee.Err)
		}
		return withCode(exitCannotRun, err)
	}
	v := rc.Verdict
	for _, n := range v.Notes {
		if strings.Contains(n, "torn") {
			fmt.Fprintln(stderr, "kafkatrial: note:", n)
		}
	}
	printVerdict(stdout, v, rc.Ops, filepath.Join(dir, "verdict.json"))
	switch rc.ExitCode {
	case exitViolated:
		return withCode(exitViolated, fmt.Errorf("check: claims failed: %s", failedClaims(v)))
	case exitCannotRun:
		why := failedClaims(v)
		if rc.NoFaultInjected {
			why = "none of the scheduled faults was injected (see nemesis.jsonl); " + why
		}
		return withCode(exitCannotRun, fmt.Errorf("check: undecided: %s", strings.TrimSuffix(why, "; ")))
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
