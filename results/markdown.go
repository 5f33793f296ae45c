package results

import (
	"fmt"
	"io"
	"strings"

	"github.com/kafkatrial/kafkatrial/checker"
)

// Markdown writes report.md: the same story as report.html without plots, for a CI step summary.
func (r *Run) Markdown(w io.Writer) error {
	v := r.Verdict
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %s\n\n", r.Meta.Scenario, Headline(v))
	fmt.Fprintf(&b, "Reproduce: `%s`\n\n", r.Meta.Reproduce)
	if r.Meta.Description != "" {
		fmt.Fprintf(&b, "> %s\n\n", strings.TrimSpace(r.Meta.Description))
	}
	b.WriteString("## Claims\n\n| anomaly | expect | observed | status |\n|---|---|---:|---|\n")
	for _, c := range v.Claims {
		status := c.Status
		if c.Reason != "" {
			status += " (" + c.Reason + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s %s |\n", c.Anomaly, c.Expect, c.Observed, statusMark(c), status)
	}
	if len(v.Claims) == 0 {
		b.WriteString("| (no claims: anomalies only) | | | |\n")
	}
	b.WriteString("\n## Anomaly counts\n\n| anomaly | count |\n|---|---:|\n")
	for _, name := range checker.AnomalyNames {
		if a := v.Anomalies[name]; a != nil {
			fmt.Fprintf(&b, "| %s | %d |\n", name, a.Count)
		}
	}
	s := v.Stats
	b.WriteString("\n## Figures\n\n| figure | value |\n|---|---:|\n")
	for _, kv := range [][2]string{
		{"sends ok / fail / info", fmt.Sprintf("%d / %d / %d", s.SendsOK, s.SendsFail, s.SendsInfo)},
		{"unacked records lost in crashed producers' buffers", fmt.Sprint(s.UnackedLostInBuffer)},
		{"throughput (ok sends/s)", fmt.Sprintf("%.1f", s.ThroughputPerS)},
		{"latency p50 / p99 (ms)", fmt.Sprintf("%.1f / %.1f", s.LatencyMsP50, s.LatencyMsP99)},
		{"unavailable (s)", fmt.Sprintf("%.2f", s.UnavailableS)},
		{"linearizability", fmt.Sprintf("%s (%d partitions, %.2fs)", v.Linearizability.Result, v.Linearizability.PartitionsChecked, v.Linearizability.Seconds)},
	} {
		fmt.Fprintf(&b, "| %s | %s |\n", kv[0], kv[1])
	}
	if len(r.Meta.Settings) > 0 {
		b.WriteString("\n## Settings\n\n| setting | value |\n|---|---|\n")
		for _, kv := range r.Meta.Settings {
			fmt.Fprintf(&b, "| %s | %s |\n", kv[0], kv[1])
		}
	}
	if len(r.Faults) > 0 {
		b.WriteString("\n## Faults\n\n| time (s) | phase | fault | targets | detail |\n|---:|---|---|---|---|\n")
		for _, e := range r.Faults {
			detail := e.Detail
			if e.Error != "" {
				detail = strings.TrimSpace(detail + " error: " + e.Error)
			}
			fmt.Fprintf(&b, "| %.2f | %s | %s | %s | %s |\n", float64(e.Time)/1e9, e.Phase, e.Fault, strings.Join(e.Targets, ", "), mdCell(detail))
		}
	}
	first := true
	for _, name := range checker.AnomalyNames {
		a := v.Anomalies[name]
		if a == nil || a.Count == 0 {
			continue
		}
		if first {
			b.WriteString("\n## Examples\n\nOps are `index` values in history.jsonl.\n")
			first = false
		}
		fmt.Fprintf(&b, "\n### %s (%d)\n\n", name, a.Count)
		for _, e := range a.Examples {
			fmt.Fprintf(&b, "- %s/%d: %s (ops %s)\n", e.Topic, e.Partition, mdCell(e.Detail), joinInts(e.Ops))
		}
		if a.Count > len(a.Examples) {
			fmt.Fprintf(&b, "- ... and %d more\n", a.Count-len(a.Examples))
		}
	}
	var pages []string
	for _, p := range v.Linearizability.Partitions {
		if p.Visualization != "" {
			pages = append(pages, fmt.Sprintf("- %s/%d: %s, [%s](%s)", p.Topic, p.Partition, p.Result, p.Visualization, p.Visualization))
		}
	}
	if len(pages) > 0 {
		b.WriteString("\n## Linearizability pages\n\n" + strings.Join(pages, "\n") + "\n")
	}
	if len(v.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range v.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func statusMark(c checker.Claim) string {
	switch c.Status {
	case checker.StatusHeld, checker.StatusReproduced:
		return "✅"
	case checker.StatusReported:
		return "ℹ️"
	case checker.StatusUnknown:
		return "❔"
	}
	return "❌"
}

func mdCell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

func joinInts(xs []int64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ", ")
}
