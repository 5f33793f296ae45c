package results

import (
	"bytes"
	"encoding/xml"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafkatrial/kafkatrial/checker"
	"github.com/kafkatrial/kafkatrial/history"
	"github.com/kafkatrial/kafkatrial/nemesis"
)

var rewrite = flag.Bool("rewrite", false, "rewrite golden files")

// sampleRun is a run with one reproduced demonstration, one violated guarantee and one unknown claim.
func sampleRun() *Run {
	v := &checker.Verdict{Scenario: "acks1-leader-kill", Seed: 42, Anomalies: checker.Anomalies{}}
	for _, n := range checker.AnomalyNames {
		v.Anomalies[n] = &checker.Anomaly{Examples: []checker.Example{}}
	}
	v.Anomalies[checker.LostWrite] = &checker.Anomaly{Count: 2, Examples: []checker.Example{
		{Topic: "trial", Partition: 0, Offsets: []int64{7}, Values: []string{"1-7"}, Ops: []int64{13, 14}, Detail: "1-7 acked at offset 7, absent from the final read"},
	}}
	v.Anomalies[checker.Duplicate] = &checker.Anomaly{Count: 1, Examples: []checker.Example{
		{Topic: "trial", Partition: 0, Offsets: []int64{3, 4}, Values: []string{"2-1"}, Ops: []int64{20}, Detail: "2-1 stored at offsets 3 and 4"},
	}}
	v.Claims = []checker.Claim{
		{Anomaly: "lost-write", Expect: "some", Observed: 2, Held: true, Status: checker.StatusReproduced},
		{Anomaly: "duplicate", Expect: "none", Observed: 1, Held: false, Status: checker.StatusViolated},
		{Anomaly: "nonlinearizable", Expect: "none", Observed: 0, Held: false, Status: checker.StatusUnknown, Reason: "porcupine timed out"},
	}
	v.Linearizability = checker.Linearizability{Result: checker.ResultUnknown, PartitionsChecked: 1, Seconds: 1.5,
		Partitions: []checker.PartitionLinearized{{Topic: "trial", Partition: 0, Result: "Unknown", Operations: 30, Seconds: 1.5, Visualization: "linearizability/trial-0.html"}}}
	v.Stats = checker.Stats{SendsOK: 20, SendsFail: 1, SendsInfo: 2, ThroughputPerS: 10, LatencyMsP50: 3, LatencyMsP99: 40, UnavailableS: 0.5, DurationS: 3}
	v.Series = checker.Series{BucketS: 1, SendsOK: []int{8, 2, 10}, SendsFail: []int{0, 1, 0}, SendsInfo: []int{0, 2, 0}, LatencyMsP99: []float64{3, 40, 4}}
	v.Notes = []string{"history ended with a torn line"}
	ops := []history.Op{
		{Index: 13, Time: 1.2e9, Process: 1, Type: history.Invoke, F: history.Send, Topic: "trial", Value: "1-7"},
		{Index: 14, Time: 1.3e9, Process: 1, Type: history.OK, F: history.Send, Topic: "trial", Value: "1-7", Offset: 7},
		{Index: 15, Time: 1.4e9, Process: 1, Type: history.OK, F: history.Send, Topic: "trial", Value: "1-8", Offset: 8},
		{Index: 30, Time: 2.9e9, Process: 9, Type: history.OK, F: history.FinalRead, Partitions: []history.Position{{Topic: "trial"}},
			Records: []history.Record{{Topic: "trial", Offset: 7, Value: "2-9"}, {Topic: "trial", Offset: 8, Value: "1-8"}}},
	}
	return &Run{Meta: Meta{Scenario: "acks1-leader-kill", Seed: 42, Target: "builtin", Reproduce: ReproduceLine("acks1-leader-kill", 42),
		Description: "acks=1 loses what only the leader had.", Settings: [][2]string{{"acks", "1"}, {"min.insync.replicas", "1"}}},
		Verdict: v, Ops: ops, Faults: []nemesis.Event{
			{Time: 1e9, Fault: nemesis.Kill, Targets: []string{"node-2"}, Phase: nemesis.PhaseStart},
			{Time: 2e9, Fault: nemesis.Kill, Targets: []string{"node-2"}, Phase: nemesis.PhaseStop, Detail: "restarted"},
		}}
}

func TestMarkdownGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleRun().Markdown(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "report.golden.md")
	if *rewrite {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (go test ./results -run Golden -rewrite)", err)
	}
	if buf.String() != string(want) {
		t.Errorf("report.md differs from %s:\n%s", golden, buf.String())
	}
}

func TestHTMLSelfContained(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleRun().HTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{"<svg", "FAIL: duplicate violated", "kafkatrial run acks1-leader-kill --seed 42",
		"1-7 acked at offset 7", `href="linearizability/trial-0.html"`, "Sends per second", "acked offsets over time"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	for _, banned := range []string{"<script src", "<link ", "https://", "http://cdn"} {
		if strings.Contains(page, banned) {
			t.Errorf("report.html is not self-contained: contains %q", banned)
		}
	}
}

func TestJUnitOneCasePerClaim(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnit(&buf, []*Run{sampleRun()}); err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("junit.xml does not parse: %v\n%s", err, buf.String())
	}
	if got.Tests != 3 || got.Failures != 1 || got.Errors != 1 || len(got.Suites[0].Cases) != 3 {
		t.Fatalf("want 3 cases, 1 failure (violated), 1 error (unknown); got %+v", got)
	}
	if c := got.Suites[0].Cases[1]; c.Failure == nil || !strings.Contains(c.Failure.Text, "2-1 stored at offsets 3 and 4") {
		t.Errorf("the failure should carry the examples: %+v", c)
	}
}

func TestWriteAndLoadRunDir(t *testing.T) {
	dir := t.TempDir()
	r := sampleRun()
	r.Dir = dir
	if err := r.Verdict.WriteFile(filepath.Join(dir, VerdictFile)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, ScenarioFile), []byte("id: acks1-leader-kill\ndescription: d\nworkload:\n  producers:\n    - acks: \"1\"\n    - acks: all\n"), 0o644)
	if err := r.WriteReports(); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Meta.Description != "d" || len(loaded.Meta.Settings) != 1 || loaded.Meta.Settings[0][1] != "1 / all" {
		t.Errorf("scenario.yaml not summarised: %+v", loaded.Meta)
	}
	for _, f := range []string{ReportHTMLFile, ReportMarkdownFile, JUnitFile} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	s := &Summary{Suite: "claims", Rows: []Row{RowFor(loaded, 1, 2.5)}}
	if err := s.Write(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteMatrix(dir); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	if !strings.Contains(string(md), "0 of 1 passed") || !strings.Contains(string(md), "lost-write 2") {
		t.Errorf("summary.md:\n%s", md)
	}
	csv, _ := os.ReadFile(filepath.Join(dir, "matrix.csv"))
	if !strings.HasPrefix(string(csv), "combination,verdict,lost-write") {
		t.Errorf("matrix.csv header: %s", csv)
	}
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "verdict") {
		t.Errorf("Load of an empty dir should name the missing verdict: %v", err)
	}
}
