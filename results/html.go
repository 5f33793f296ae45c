package results

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kafkatrial/kafkatrial/checker"
)

// HTML writes report.html: one self-contained page (inline CSS and SVG, no network) with the claims table,
// figures, plots with fault intervals shaded, anomaly examples and links to the porcupine pages.
func (r *Run) HTML(w io.Writer) error {
	return pageTmpl.Execute(w, r.view(""))
}

// HTMLMulti writes one page with several runs side by side (kafkatrial report dirA dirB ...). Each run's links
// (its report.html, its porcupine pages) point into that run's directory, relative to the page's directory:
// the directory of the file when w is an *os.File, else the current directory. WriteCompare names the page's
// path explicitly.
func HTMLMulti(w io.Writer, runs []*Run) error {
	pageDir := "."
	if f, ok := w.(*os.File); ok && !strings.HasPrefix(f.Name(), "/dev/") {
		pageDir = filepath.Dir(f.Name())
	}
	return htmlMulti(w, runs, pageDir)
}

// WriteCompare writes the side-by-side page of runs to path, with every link relative to path's directory.
func WriteCompare(path string, runs []*Run) error {
	var buf bytes.Buffer
	if err := htmlMulti(&buf, runs, filepath.Dir(path)); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing the side-by-side report: %w", err)
	}
	return nil
}

func htmlMulti(w io.Writer, runs []*Run, pageDir string) error {
	if len(runs) == 0 {
		return errors.New("side-by-side report: no runs")
	}
	views := make([]runView, len(runs))
	for i, r := range runs {
		views[i] = r.view(pageDir)
	}
	return multiTmpl.Execute(w, views)
}

// linkFrom returns the link from a page in pageDir to the file rel (slash-separated, relative to runDir).
func linkFrom(pageDir, runDir, rel string) string {
	target := filepath.Join(runDir, filepath.FromSlash(rel))
	absTarget, err1 := filepath.Abs(target)
	absPage, err2 := filepath.Abs(pageDir)
	if err1 != nil || err2 != nil {
		return filepath.ToSlash(target)
	}
	if r, err := filepath.Rel(absPage, absTarget); err == nil {
		return filepath.ToSlash(r)
	}
	return filepath.ToSlash(absTarget)
}

type runView struct {
	Run      *Run
	Headline string
	Passed   bool
	// Report links to the run's report.html from a side-by-side page; empty on the run's own page.
	Report   string
	Linear   []linearView
	Claims   []claimView
	Figures  []figureView
	Examples []exampleView
	Counts   [][2]string
	Figs     [][2]string
}

type claimView struct {
	checker.Claim
	Mark  string
	Class string
}

// linearView is one partition's porcupine result with the link to its page from the page being written.
type linearView struct {
	checker.PartitionLinearized
	Href string
}

type figureView struct {
	Title string
	SVG   template.HTML
}

type exampleView struct {
	Name     string
	Count    int
	Examples []checker.Example
	More     int
}

// view prepares r for a template. pageDir is the directory of the page being written when it is not the run's
// own directory (a side-by-side page), so links into the run directory are made relative to it.
func (r *Run) view(pageDir string) runView {
	v := r.Verdict
	rv := runView{Run: r, Headline: Headline(v), Passed: v.Outcome() == checker.Passed}
	link := func(rel string) string { return rel }
	if pageDir != "" {
		link = func(rel string) string { return linkFrom(pageDir, r.Dir, rel) }
		rv.Report = link(ReportHTMLFile)
	}
	for _, p := range v.Linearizability.Partitions {
		lv := linearView{PartitionLinearized: p}
		if p.Visualization != "" {
			lv.Href = link(p.Visualization)
		}
		rv.Linear = append(rv.Linear, lv)
	}
	for _, c := range v.Claims {
		class := "bad"
		switch c.Status {
		case checker.StatusHeld, checker.StatusReproduced:
			class = "good"
		case checker.StatusReported:
			class = "info"
		case checker.StatusUnknown:
			class = "unknown"
		}
		rv.Claims = append(rv.Claims, claimView{Claim: c, Mark: statusMark(c), Class: class})
	}
	for _, f := range r.Figures() {
		// The SVG is produced by our own plotting code from numbers, never from user text beyond titles, which
		// gonum escapes.
		rv.Figures = append(rv.Figures, figureView{Title: f.Title, SVG: template.HTML(stripXMLHeader(f.SVG))})
	}
	for _, name := range checker.AnomalyNames {
		a := v.Anomalies[name]
		if a == nil {
			continue
		}
		rv.Counts = append(rv.Counts, [2]string{name, fmt.Sprint(a.Count)})
		if a.Count > 0 {
			rv.Examples = append(rv.Examples, exampleView{Name: name, Count: a.Count, Examples: a.Examples, More: a.Count - len(a.Examples)})
		}
	}
	s := v.Stats
	rv.Figs = [][2]string{
		{"sends ok / fail / info", fmt.Sprintf("%d / %d / %d", s.SendsOK, s.SendsFail, s.SendsInfo)},
		{"unacked lost in crashed producers' buffers", fmt.Sprint(s.UnackedLostInBuffer)},
		{"throughput (ok sends/s)", fmt.Sprintf("%.1f", s.ThroughputPerS)},
		{"latency p50 / p99 (ms)", fmt.Sprintf("%.1f / %.1f", s.LatencyMsP50, s.LatencyMsP99)},
		{"unavailable (s)", fmt.Sprintf("%.2f", s.UnavailableS)},
		{"linearizability", fmt.Sprintf("%s (%d partitions, %.2fs)", v.Linearizability.Result, v.Linearizability.PartitionsChecked, v.Linearizability.Seconds)},
	}
	return rv
}

func stripXMLHeader(svg string) string {
	if i := strings.Index(svg, "<svg"); i > 0 {
		return svg[i:]
	}
	return svg
}

const css = `body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
h1{font-size:1.5em}h1.pass{color:#2e7d32}h1.fail{color:#c62828}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
tr.good td{background:#e8f5e9}tr.bad td{background:#ffebee}tr.unknown td{background:#fff8e1}tr.info td{background:#f5f5f5}
code{background:#f3f3f3;padding:.1em .3em}.fig svg{max-width:100%;height:auto}.side{display:flex;gap:2em;flex-wrap:wrap}
.side>div{flex:1;min-width:420px}small{color:#666}`

const runBody = `{{define "run"}}
<h1 class="{{if .Passed}}pass{{else}}fail{{end}}">{{.Run.Meta.Scenario}}: {{.Headline}}</h1>
<p>Reproduce: <code>{{.Run.Meta.Reproduce}}</code>{{with .Run.Meta.Target}} &middot; target {{.}}{{end}}</p>
{{with .Run.Meta.Description}}<blockquote>{{.}}</blockquote>{{end}}
<h2>Claims</h2>
<table><tr><th>anomaly</th><th>expect</th><th>observed</th><th>status</th></tr>
{{range .Claims}}<tr class="{{.Class}}"><td>{{.Anomaly}}</td><td>{{.Expect}}</td><td>{{.Observed}}</td><td>{{.Mark}} {{.Status}}{{with .Reason}} <small>({{.}})</small>{{end}}</td></tr>
{{else}}<tr><td colspan="4">no claims: anomalies only</td></tr>{{end}}</table>
<div class="side"><div><h2>Figures</h2><table>{{range .Figs}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td></tr>{{end}}</table></div>
<div><h2>Anomaly counts</h2><table>{{range .Counts}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td></tr>{{end}}</table></div>
{{with .Run.Meta.Settings}}<div><h2>Settings</h2><table>{{range .}}<tr><td>{{index . 0}}</td><td>{{index . 1}}</td></tr>{{end}}</table></div>{{end}}</div>
{{range .Figures}}<div class="fig">{{.SVG}}</div>{{end}}
{{with .Run.Faults}}<h2>Faults</h2><table><tr><th>time (s)</th><th>phase</th><th>fault</th><th>targets</th><th>detail</th></tr>
{{range .}}<tr><td>{{printf "%.2f" (secs .Time)}}</td><td>{{.Phase}}</td><td>{{.Fault}}</td><td>{{join .Targets}}</td><td>{{.Detail}}{{with .Error}} error: {{.}}{{end}}</td></tr>{{end}}</table>{{end}}
{{with .Examples}}<h2>Examples</h2><p><small>ops are <code>index</code> values in history.jsonl</small></p>
{{range .}}<h3>{{.Name}} ({{.Count}})</h3><ul>{{range .Examples}}<li>{{.Topic}}/{{.Partition}}: {{.Detail}} <small>(ops {{ints .Ops}})</small></li>{{end}}
{{if gt .More 0}}<li>... and {{.More}} more</li>{{end}}</ul>{{end}}{{end}}
{{with .Linear}}<h2>Linearizability</h2><table><tr><th>partition</th><th>result</th><th>operations</th><th>seconds</th><th>page</th></tr>
{{range .}}<tr><td>{{.Topic}}/{{.Partition}}</td><td>{{.Result}}</td><td>{{.Operations}}</td><td>{{printf "%.2f" .Seconds}}</td><td>{{with .Href}}<a href="{{.}}">{{.}}</a>{{end}}</td></tr>{{end}}</table>{{end}}
{{with .Run.Verdict.Notes}}<h2>Notes</h2><ul>{{range .}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{end}}`

var funcs = template.FuncMap{
	"secs": func(ns int64) float64 { return float64(ns) / 1e9 },
	"join": func(xs []string) string { return strings.Join(xs, ", ") },
	"ints": joinInts,
}

var pageTmpl = template.Must(template.New("page").Funcs(funcs).Parse(runBody + `<!doctype html>
<html><head><meta charset="utf-8"><title>{{.Run.Meta.Scenario}}: kafkatrial</title><style>` + css + `</style></head>
<body>{{template "run" .}}</body></html>
`))

var multiTmpl = template.Must(template.New("multi").Funcs(funcs).Parse(runBody + `<!doctype html>
<html><head><meta charset="utf-8"><title>kafkatrial: {{len .}} runs</title><style>` + css + `</style></head>
<body><h1>{{len .}} runs side by side</h1>
<table><tr><th>scenario</th><th>seed</th><th>outcome</th>{{range (index . 0).Counts}}<th>{{index . 0}}</th>{{end}}</tr>
{{range .}}<tr class="{{if .Passed}}good{{else}}bad{{end}}"><td>{{with .Report}}<a href="{{.}}">{{end}}{{.Run.Meta.Scenario}}{{with .Report}}</a>{{end}}</td><td>{{.Run.Meta.Seed}}</td><td>{{.Headline}}</td>{{range .Counts}}<td>{{index . 1}}</td>{{end}}</tr>{{end}}</table>
<div class="side">{{range .}}<div>{{template "run" .}}</div>{{end}}</div></body></html>
`))
