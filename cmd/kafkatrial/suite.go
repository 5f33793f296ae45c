package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kafkatrial/kafkatrial/results"
	"github.com/kafkatrial/kafkatrial/scenarios"
)

func init() {
	var f runFlags
	var seeds int
	var junit string
	cmd := &cobra.Command{
		Use:   "suite [claims|<dir>]",
		Short: "Run every scenario of a suite, one run directory each, plus summary.json and summary.md",
		Long: "Run a suite: the bundled claims suite (one scenario per row of claims.md) or a directory of\n" +
			"scenario YAML files. Exit code: the worst of its runs (3 over 2 over 1 over 0).",
		Example: "  kafkatrial suite claims --out out/claims --junit out/claims/junit.xml\n" +
			"  kafkatrial suite ./my-scenarios --seeds 10",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "claims"
			if len(args) == 1 {
				name = args[0]
			}
			suite, err := scenarios.Suite(name)
			if err != nil {
				return withCode(exitUsage, err)
			}
			for _, s := range suite {
				if err := f.prepare(s); err != nil {
					return withCode(exitUsage, fmt.Errorf("%s: %w", s.ID, err))
				}
			}
			ctx, stop := interruptible()
			defer stop()
			sum, err := scenarios.RunSuite(ctx, name, suite, scenarios.SuiteOptions{Out: f.out, Seeds: seeds, Seed: f.seed, Run: f.options(cmd.OutOrStdout())})
			if err != nil {
				return withCode(exitCannotRun, err)
			}
			out := f.out
			if out == "" {
				out = filepath.Join("out", filepath.Base(name))
			}
			if junit != "" {
				if err := writeSuiteJUnit(junit, sum); err != nil {
					return withCode(exitCannotRun, err)
				}
			}
			sum.Markdown(cmd.OutOrStdout())
			fmt.Fprintf(cmd.OutOrStdout(), "\nsummary: %s\n", filepath.Join(out, "summary.md"))
			if sum.ExitCode != exitOK {
				return withCode(sum.ExitCode, fmt.Errorf("suite %s: not every claim held", name))
			}
			return nil
		},
	}
	f.register(cmd, true, "out/<suite name>, each run in <id>-<seed>/ under it")
	cmd.Flags().IntVar(&seeds, "seeds", 1, "run each scenario with this many seeds (seed, seed+1, ...)")
	cmd.Flags().StringVar(&junit, "junit", "", "write one JUnit file for the whole suite here")
	rootCmd.AddCommand(cmd)
}

// writeSuiteJUnit writes one JUnit file with a testsuite per run and a testcase per claim.
func writeSuiteJUnit(path string, sum *results.Summary) error {
	var runs []*results.Run
	for _, row := range sum.Rows {
		if r, err := scenarios.LoadRun(row.Dir); err == nil {
			runs = append(runs, r)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing junit: %w", err)
	}
	defer f.Close()
	return results.WriteJUnit(f, runs)
}
