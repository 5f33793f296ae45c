package results

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/kafkatrial/kafkatrial/checker"
	"github.com/kafkatrial/kafkatrial/history"
	"github.com/kafkatrial/kafkatrial/nemesis"
)

// The files of a run directory (contract.md).
const (
	ScenarioFile       = "scenario.yaml"
	HistoryFile        = "history.jsonl"
	NemesisFile        = "nemesis.jsonl"
	VerdictFile        = "verdict.json"
	ReportHTMLFile     = "report.html"
	ReportMarkdownFile = "report.md"
	JUnitFile          = "junit.xml"
	LinearizabilityDir = "linearizability"
	NodesDir           = "nodes"
)

// Run is one run directory loaded for reporting.
type Run struct {
	Dir     string
	Meta    Meta
	Verdict *checker.Verdict
	Faults  []nemesis.Event
	// Ops is the history, when loaded; plots that need single operations are left out without it.
	Ops []history.Op
}

// Meta describes a run for its reports.
type Meta struct {
	Scenario    string
	Description string
	Seed        int64
	Target      string
	// Reproduce is the command line that reruns the trial.
	Reproduce string
	// Settings are the Kafka settings worth showing beside the verdict, in order.
	Settings [][2]string
}

// ReproduceLine is the command that reruns a scenario with a seed (contract.md).
func ReproduceLine(scenario string, seed int64) string {
	return fmt.Sprintf("kafkatrial run %s --seed %d", scenario, seed)
}

// Load reads a run directory: verdict.json is required; scenario.yaml, nemesis.jsonl and history.jsonl are used
// when present.
func Load(dir string) (*Run, error) {
	v, err := checker.ReadVerdict(filepath.Join(dir, VerdictFile))
	if err != nil {
		return nil, fmt.Errorf("run directory %s: %w", dir, err)
	}
	r := &Run{Dir: dir, Verdict: v, Meta: Meta{Scenario: v.Scenario, Seed: v.Seed}}
	r.Meta.Reproduce = ReproduceLine(v.Scenario, v.Seed)
	if data, err := os.ReadFile(filepath.Join(dir, ScenarioFile)); err == nil {
		r.Meta.Description, r.Meta.Target, r.Meta.Settings = describeScenario(data)
	}
	if ev, err := nemesis.ReadEvents(filepath.Join(dir, NemesisFile)); err == nil {
		r.Faults = ev
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if res, err := history.ReadFile(filepath.Join(dir, HistoryFile)); err == nil {
		r.Ops = res.Ops
	}
	return r, nil
}

// WriteReports renders report.html, report.md and junit.xml into the run directory.
func (r *Run) WriteReports() error {
	var md, html, junit bytes.Buffer
	if err := r.Markdown(&md); err != nil {
		return err
	}
	if err := r.HTML(&html); err != nil {
		return err
	}
	if err := WriteJUnit(&junit, []*Run{r}); err != nil {
		return err
	}
	for name, b := range map[string][]byte{ReportMarkdownFile: md.Bytes(), ReportHTMLFile: html.Bytes(), JUnitFile: junit.Bytes()} {
		if err := os.WriteFile(filepath.Join(r.Dir, name), b, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}

// shownSettings are the settings a report lists, in this order, when the scenario sets them anywhere.
var shownSettings = []string{"nodes", "timing", "partitions", "replication.factor", "min.insync.replicas",
	"unclean.leader.election.enable", "log.flush.interval.messages", "log.flush.interval.ms",
	"replica.lag.time.max.ms", "acks", "enable.idempotence", "retries", "max.in.flight.requests.per.connection",
	"linger.ms", "request.timeout.ms", "mode", "rate", "enable.auto.commit", "auto.commit.interval.ms", "commit",
	"processing"}

// describeScenario pulls the description, target and notable settings out of a scenario.yaml without
// depending on the scenarios package (which depends on this one). Settings seen with several values are
// joined with "/".
func describeScenario(data []byte) (desc, target string, settings [][2]string) {
	var doc map[string]any
	if yaml.Unmarshal(data, &doc) != nil {
		return "", "", nil
	}
	desc, _ = doc["description"].(string)
	target, _ = doc["target"].(string)
	seen := map[string][]string{}
	var walk func(key string, v any)
	walk = func(key string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, vv := range x {
				walk(k, vv)
			}
		case []any:
			for _, vv := range x {
				walk(key, vv)
			}
		default:
			s := strings.TrimSpace(fmt.Sprint(x))
			for _, have := range seen[key] {
				if have == s {
					return
				}
			}
			seen[key] = append(seen[key], s)
		}
	}
	for k, v := range doc {
		if k != "expect" && k != "nemesis" && k != "description" {
			walk(k, v)
		}
	}
	for _, k := range shownSettings {
		if vs, ok := seen[k]; ok {
			sort.Strings(vs)
			settings = append(settings, [2]string{k, strings.Join(vs, " / ")})
		}
	}
	return desc, target, settings
}

// Headline is the one-line outcome of a verdict, worded as its exit code: PASS (0), FAIL (1) naming the claims
// violated or not reproduced, UNDECIDED (3) naming the claims that could not be judged.
func Headline(v *checker.Verdict) string {
	switch v.Outcome() {
	case checker.Passed:
		return "PASS: every claim held"
	case checker.Undecided:
		return "UNDECIDED: a claim could not be judged (" + strings.Join(claimsWith(v, false, checker.StatusUnknown), ", ") + ")"
	}
	return "FAIL: " + strings.Join(claimsWith(v, false, checker.StatusViolated, checker.StatusNotReproduced), ", ")
}

// VerdictError is the error a command reports for a run that did not pass, worded like Headline and the exit
// code, so stderr never contradicts the report: nil when the verdict passed; otherwise "<id>: FAIL: ..." or
// "<id>: UNDECIDED: ...", with each claim's observed count, expectation and reason, and where the report is.
func VerdictError(id, dir string, v *checker.Verdict) error {
	var word string
	var claims []string
	switch v.Outcome() {
	case checker.Passed:
		return nil
	case checker.Undecided:
		word, claims = "UNDECIDED: a claim could not be judged:", claimsWith(v, true, checker.StatusUnknown)
	default:
		word, claims = "FAIL:", claimsWith(v, true, checker.StatusViolated, checker.StatusNotReproduced)
	}
	return fmt.Errorf("%s: %s %s (see %s)", id, word, strings.Join(claims, "; "), filepath.Join(dir, ReportMarkdownFile))
}

// claimsWith names the claims of v with one of statuses, as "lost-write violated", or with detail as
// "lost-write violated (observed 3, expect none): reason".
func claimsWith(v *checker.Verdict, detail bool, statuses ...string) []string {
	var out []string
	for _, c := range v.Claims {
		for _, s := range statuses {
			if c.Status != s {
				continue
			}
			text := c.Anomaly + " " + c.Status
			if detail {
				text += fmt.Sprintf(" (observed %d, expect %s)", c.Observed, c.Expect)
				if c.Reason != "" {
					text += ": " + c.Reason
				}
			}
			out = append(out, text)
		}
	}
	return out
}
