package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kafkatrial/kafkatrial/results"
	"github.com/kafkatrial/kafkatrial/scenarios"
)

func init() { rootCmd.AddCommand(newReportCmd()) }

func newReportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report <run-dir or suite-dir>...",
		Short: "(Re)render report.html and report.md; several directories side by side",
		Long: "Re-render the reports of run directories from their verdict.json, nemesis.jsonl and history.jsonl.\n" +
			"A suite directory stands for every run directory in it. With more than one run, also write one page\n" +
			"with all of them side by side (--out, default report-compare.html).",
		Example: "  kafkatrial report out/acks1-leader-kill-42\n" +
			"  kafkatrial report out/matrix-acks-tradeoff --out compare.html",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var runs []*results.Run
			for _, dir := range args {
				dirs, err := runDirs(dir)
				if err != nil {
					return withCode(exitUsage, err)
				}
				for _, d := range dirs {
					r, err := scenarios.LoadRun(d)
					if err != nil {
						return withCode(exitUsage, err)
					}
					if err := r.WriteReports(); err != nil {
						return withCode(exitUsage, err)
					}
					fmt.Fprintln(cmd.OutOrStdout(), filepath.Join(d, results.ReportHTMLFile))
					runs = append(runs, r)
				}
			}
			if len(runs) > 1 {
				if out == "" {
					out = "report-compare.html"
				}
				// --out may name a folder that does not exist yet, as run's --out may.
				if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
					return withCode(exitUsage, fmt.Errorf("--out %s: %w", out, err))
				}
				if err := results.WriteCompare(out, runs); err != nil {
					return withCode(exitUsage, err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "where to write the side-by-side page when several runs are given")
	return cmd
}

// runDirs returns dir itself if it is a run directory, else its subdirectories that are.
func runDirs(dir string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, results.VerdictFile)); err == nil {
		return []string{dir}, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join(dir, e.Name(), results.VerdictFile)); err == nil {
				out = append(out, filepath.Join(dir, e.Name()))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("report: %s holds no verdict.json, nor do its subdirectories", dir)
	}
	return out, nil
}
