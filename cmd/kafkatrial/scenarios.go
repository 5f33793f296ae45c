package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kafkatrial/kafkatrial/scenarios"
)

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:     "scenarios",
		Short:   "List the bundled scenarios with their settings and claims",
		Example: "  kafkatrial scenarios",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := scenarios.Bundled()
			if err != nil {
				return withCode(exitUsage, err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSETTINGS\tFAULTS\tCLAIMS")
			for _, s := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, settingsLine(s), faultsLine(s), claimsLine(s))
			}
			return tw.Flush()
		},
	})
}

func settingsLine(s *scenarios.Scenario) string {
	var parts []string
	if len(s.Topics) > 0 {
		t := s.Topics[0]
		parts = append(parts, fmt.Sprintf("rf=%d", t.ReplicationFactor))
		for _, k := range []string{"min.insync.replicas", "unclean.leader.election.enable", "log.flush.interval.messages"} {
			if v, ok := t.Configs[k]; ok {
				parts = append(parts, k+"="+v)
			}
		}
	}
	if len(s.Workload.Producers) > 0 {
		p := s.Workload.Producers[0]
		parts = append(parts, "acks="+p.Acks, fmt.Sprintf("idempotence=%v", *p.EnableIdempotence))
		if p.MaxInFlightRequestsPerConnection != 5 {
			parts = append(parts, fmt.Sprintf("max.in.flight=%d", p.MaxInFlightRequestsPerConnection))
		}
	}
	if len(s.Workload.Consumers) > 0 {
		c := s.Workload.Consumers[0]
		parts = append(parts, "commit="+c.Commit, "processing="+c.Processing)
	}
	return strings.Join(parts, " ")
}

func faultsLine(s *scenarios.Scenario) string {
	seen := map[string]bool{}
	var out []string
	for _, st := range s.Nemesis.Schedule {
		if !seen[string(st.Fault)] {
			seen[string(st.Fault)] = true
			out = append(out, string(st.Fault))
		}
	}
	if r := s.Nemesis.Random; r != nil {
		for _, k := range r.Faults {
			out = append(out, "random "+string(k))
		}
	}
	return strings.Join(out, ",")
}

func claimsLine(s *scenarios.Scenario) string {
	keys := make([]string, 0, len(s.Expect))
	for k := range s.Expect {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ":" + s.Expect[k]
	}
	return strings.Join(parts, " ")
}
