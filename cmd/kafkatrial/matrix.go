package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kafkatrial/kafkatrial/scenarios"
)

func init() {
	var f runFlags
	var vary []string
	cmd := &cobra.Command{
		Use:   "matrix <scenario> --vary key=v1,v2 [--vary ...]",
		Short: "Run a scenario once per combination of settings and write a tradeoff table",
		Long: "Run the scenario once per combination of the varied settings (Kafka names, as --set takes them) and\n" +
			"write matrix.md, matrix.html and matrix.csv: a row per combination, a column per anomaly, throughput,\n" +
			"latency p50/p99 and unavailable seconds.",
		Example: "  kafkatrial matrix acks-tradeoff --vary acks=0,1,all\n" +
			"  kafkatrial matrix acks1-leader-kill --vary acks=1,all --vary min.insync.replicas=1,2",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.load(args[0])
			if err != nil {
				return err
			}
			var vs []scenarios.Vary
			for _, v := range vary {
				pv, err := scenarios.ParseVary(v)
				if err != nil {
					return withCode(exitUsage, err)
				}
				for _, seen := range vs {
					if seen.Key == pv.Key {
						return withCode(exitUsage, fmt.Errorf("--vary %s given twice: list every value in one --vary %s=v1,v2,...", pv.Key, pv.Key))
					}
				}
				vs = append(vs, pv)
			}
			ctx, stop := interruptible()
			defer stop()
			out := f.out
			if out == "" {
				out = filepath.Join("out", "matrix-"+s.ID)
			}
			sum, err := scenarios.RunMatrix(ctx, s, vs, scenarios.SuiteOptions{Out: out, Seed: f.seed, Run: f.options(cmd.OutOrStdout())})
			if err != nil {
				if sum == nil {
					return withCode(exitUsage, err)
				}
				return withCode(exitCannotRun, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tradeoff table: %s\n", filepath.Join(out, "matrix.md"))
			if sum.ExitCode != exitOK {
				return withCode(sum.ExitCode, fmt.Errorf("matrix %s: not every claim held in every combination", s.ID))
			}
			return nil
		},
	}
	f.register(cmd, true, "out/matrix-<id>, each combination in NN-<key>-<value>/ under it")
	cmd.Flags().StringArrayVar(&vary, "vary", nil, "a setting and its values, key=v1,v2 (repeatable)")
	rootCmd.AddCommand(cmd)
}
