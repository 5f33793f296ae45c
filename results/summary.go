package results

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kafkatrial/kafkatrial/checker"
)

// Row is one run of a suite or one combination of a matrix.
type Row struct {
	Scenario string `json:"scenario"`
	Seed     int64  `json:"seed"`
	Dir      string `json:"dir"`
	// Vary names the matrix combination (key=value, ...); empty in a suite.
	Vary     string          `json:"vary,omitempty"`
	Outcome  string          `json:"outcome"` // pass, fail, undecided, error
	ExitCode int             `json:"exit_code"`
	Claims   []checker.Claim `json:"claims"`
	Counts   map[string]int  `json:"counts"`
	Stats    checker.Stats   `json:"stats"`
	Seconds  float64         `json:"seconds"`
	Error    string          `json:"error,omitempty"`
	// Reproduce is the command that reruns this row (the run's own line, with its --set arguments).
	Reproduce string `json:"reproduce,omitempty"`
}

// Summary is summary.json of a suite or matrix directory.
type Summary struct {
	Suite    string  `json:"suite"`
	ExitCode int     `json:"exit_code"`
	Seconds  float64 `json:"seconds"`
	Rows     []Row   `json:"runs"`
}

// Outcome names for rows.
const (
	OutcomePass      = "pass"
	OutcomeFail      = "fail"
	OutcomeUndecided = "undecided"
	OutcomeError     = "error"
)

// RowFor summarises a finished run.
func RowFor(r *Run, exitCode int, seconds float64) Row {
	v := r.Verdict
	row := Row{Scenario: r.Meta.Scenario, Seed: r.Meta.Seed, Dir: r.Dir, ExitCode: exitCode, Claims: v.Claims,
		Counts: map[string]int{}, Stats: v.Stats, Seconds: seconds, Reproduce: r.Meta.Reproduce}
	for name, a := range v.Anomalies {
		row.Counts[name] = a.Count
	}
	switch v.Outcome() {
	case checker.Passed:
		row.Outcome = OutcomePass
	case checker.Failed:
		row.Outcome = OutcomeFail
	default:
		row.Outcome = OutcomeUndecided
	}
	return row
}

// Write writes summary.json and summary.md into dir.
func (s *Summary) Write(dir string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding summary: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "summary.json"), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing summary.json: %w", err)
	}
	var md strings.Builder
	s.Markdown(&md)
	if err := os.WriteFile(filepath.Join(dir, "summary.md"), []byte(md.String()), 0o644); err != nil {
		return fmt.Errorf("writing summary.md: %w", err)
	}
	return nil
}

// Markdown writes the suite table: a row per scenario with its claims, counts and verdict.
func (s *Summary) Markdown(w io.Writer) {
	pass := 0
	for _, r := range s.Rows {
		if r.Outcome == OutcomePass {
			pass++
		}
	}
	matrix := false
	for _, r := range s.Rows {
		matrix = matrix || r.Vary != ""
	}
	kind, combo, comboSep := "suite", "", ""
	if matrix {
		kind, combo, comboSep = "matrix", " combination |", "---|"
	}
	fmt.Fprintf(w, "# kafkatrial %s %s: %d of %d passed (%.0fs)\n\n", kind, s.Suite, pass, len(s.Rows), s.Seconds)
	fmt.Fprintf(w, "| scenario |%s seed | verdict | claims | anomalies | ok/fail/info sends | reproduce |\n|---|%s---:|---|---|---|---|---|\n", combo, comboSep)
	for _, r := range s.Rows {
		var claims, counts []string
		for _, c := range r.Claims {
			claims = append(claims, fmt.Sprintf("%s %s: %s (%d)", statusMark(c), c.Anomaly, c.Status, c.Observed))
		}
		for _, name := range checker.AnomalyNames {
			if n := r.Counts[name]; n > 0 {
				counts = append(counts, fmt.Sprintf("%s %d", name, n))
			}
		}
		verdict := r.Outcome
		if r.Error != "" {
			verdict += ": " + mdCell(r.Error)
		}
		cell := ""
		if matrix {
			cell = " " + mdCell(r.Vary) + " |"
		}
		line := r.Reproduce
		if line == "" {
			line = ReproduceLine(r.Scenario, r.Seed)
		}
		fmt.Fprintf(w, "| %s |%s %d | %s | %s | %s | %d/%d/%d | `%s` |\n", r.Scenario, cell, r.Seed, verdict,
			strings.Join(claims, "<br>"), strings.Join(counts, ", "), r.Stats.SendsOK, r.Stats.SendsFail, r.Stats.SendsInfo,
			line)
	}
}

// matrixColumns are the tradeoff table's columns after the combination.
func matrixHeader() []string {
	h := []string{"combination", "verdict"}
	h = append(h, checker.AnomalyNames...)
	return append(h, "throughput_per_s", "latency_ms_p50", "latency_ms_p99", "unavailable_s", "sends_ok", "sends_fail", "sends_info")
}

func matrixRecord(r Row) []string {
	rec := []string{r.Vary, r.Outcome}
	for _, name := range checker.AnomalyNames {
		rec = append(rec, fmt.Sprint(r.Counts[name]))
	}
	s := r.Stats
	return append(rec, fmt.Sprintf("%.1f", s.ThroughputPerS), fmt.Sprintf("%.1f", s.LatencyMsP50), fmt.Sprintf("%.1f", s.LatencyMsP99),
		fmt.Sprintf("%.2f", s.UnavailableS), fmt.Sprint(s.SendsOK), fmt.Sprint(s.SendsFail), fmt.Sprint(s.SendsInfo))
}

// WriteMatrix writes the tradeoff table as matrix.md, matrix.html and matrix.csv into dir.
func (s *Summary) WriteMatrix(dir string) error {
	header := matrixHeader()
	var md strings.Builder
	fmt.Fprintf(&md, "# kafkatrial matrix %s\n\n| %s |\n|%s\n", s.Suite, strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	var rows [][]string
	for _, r := range s.Rows {
		rec := matrixRecord(r)
		rows = append(rows, rec)
		fmt.Fprintf(&md, "| %s |\n", strings.Join(rec, " | "))
	}
	var csvb strings.Builder
	cw := csv.NewWriter(&csvb)
	_ = cw.Write(header)
	_ = cw.WriteAll(rows)
	var html strings.Builder
	if err := matrixTmpl.Execute(&html, map[string]any{"Suite": s.Suite, "Header": header, "Rows": rows}); err != nil {
		return fmt.Errorf("rendering matrix: %w", err)
	}
	for name, body := range map[string]string{"matrix.md": md.String(), "matrix.csv": csvb.String(), "matrix.html": html.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}

var matrixTmpl = template.Must(template.New("matrix").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>kafkatrial matrix {{.Suite}}</title><style>` + css + `</style></head>
<body><h1>Tradeoffs: {{.Suite}}</h1><table><tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table></body></html>
`))
