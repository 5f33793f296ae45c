package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafkatrial/kafkatrial/checker"
	"github.com/kafkatrial/kafkatrial/scenarios"
)

const faultedGuarantee = `id: faulted
seed: 9
duration: 10s
workload: {producers: [{count: 3}]}
nemesis:
  schedule: [{at: 1s, fault: kill, target: leader(trial/0), duration: 1s}]
expect:
  lost-write: none
`

func writeFile(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCheckKeepsWhatTheRunKnew: check keeps the run's notes and reproduce line (run.json), notes every fault
// that was not injected (nemesis.jsonl), and a run none of whose faults was injected is undecided, not a pass.
func TestCheckKeepsWhatTheRunKnew(t *testing.T) {
	failed := `{"time":1000000000,"fault":"kill","targets":[],"phase":"start","error":"finding the leader of trial/0: no leader"}` + "\n"
	injected := `{"time":4000000000,"fault":"kill","targets":["node-2"],"phase":"start"}` + "\n"
	run := `{"reproduce":"kafkatrial run sc/faulted.yaml --seed 9 --set acks=all","notes":["the run was interrupted before the workload's time was up"]}`

	dir := runDir(t, golden(t, "lost-write-near-miss"), faultedGuarantee)
	writeFile(t, dir, "nemesis.jsonl", failed)
	writeFile(t, dir, "run.json", run)
	var stdout, stderr bytes.Buffer
	err := runCheck(&stdout, &stderr, dir, 0)
	ee, ok := err.(*exitError)
	if !ok || ee.code != exitCannotRun || !strings.Contains(err.Error(), "none of the scheduled faults was injected") {
		t.Fatalf("no fault injected: %v", err)
	}
	v, err := checker.ReadVerdict(filepath.Join(dir, "verdict.json"))
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(v.Notes, "\n")
	for _, want := range []string{"fault kill at 1.0s was not injected: finding the leader of trial/0: no leader", "interrupted"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q: %s", want, notes)
		}
	}
	if v.Claims[0].Status != checker.StatusUnknown {
		t.Errorf("claim %+v, want unknown", v.Claims[0])
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(md), "kafkatrial run sc/faulted.yaml --seed 9 --set acks=all") {
		t.Errorf("report.md lost the run's reproduce line:\n%s", md)
	}

	// With one fault injected, the missed one is a note and the claims stand.
	writeFile(t, dir, "nemesis.jsonl", failed+injected)
	if err := runCheck(&stdout, &stderr, dir, 0); err != nil {
		t.Fatalf("one fault injected: %v", err)
	}
	v, _ = checker.ReadVerdict(filepath.Join(dir, "verdict.json"))
	if v.Claims[0].Status != checker.StatusHeld || !strings.Contains(strings.Join(v.Notes, "\n"), "was not injected") {
		t.Errorf("claims %+v, notes %v", v.Claims, v.Notes)
	}

	// `report` re-renders with the same line.
	writeFile(t, dir, "report.md", "")
	if code := execute([]string{"report", dir}); code != exitOK {
		t.Fatalf("report: exit %d", code)
	}
	if md, _ := os.ReadFile(filepath.Join(dir, "report.md")); !strings.Contains(string(md), "--set acks=all") {
		t.Errorf("report lost the run's reproduce line:\n%s", md)
	}
}

// TestCheckUsesTheScenariosLinearizabilityTimeout: without the flag, check gives porcupine the budget the
// run had; the flag overrides it.
func TestCheckUsesTheScenariosLinearizabilityTimeout(t *testing.T) {
	scenario := "id: lin\nseed: 1\nlinearizability_timeout: 1ns\nworkload: {producers: [{}]}\nexpect: {nonlinearizable: none}\n"
	dir := runDir(t, golden(t, "nonlinearizable-near-miss"), scenario)
	cmd, _, err := rootCmd.Find([]string{"check"})
	if err != nil {
		t.Fatal(err)
	}
	flag := cmd.Flags().Lookup("linearizability-timeout")
	t.Cleanup(func() { flag.Changed = false; _ = flag.Value.Set("0s") })
	if code := execute([]string{"check", dir}); code != exitCannotRun {
		t.Errorf("1ns budget from scenario.yaml: exit %d, want %d (Unknown)", code, exitCannotRun)
	}
	v, _ := checker.ReadVerdict(filepath.Join(dir, "verdict.json"))
	if v.Linearizability.Result != checker.ResultUnknown {
		t.Errorf("linearizability %s, want Unknown under a 1ns budget", v.Linearizability.Result)
	}
	if code := execute([]string{"check", "--linearizability-timeout", "1m", dir}); code != exitOK {
		t.Errorf("--linearizability-timeout 1m: exit %d, want 0", code)
	}
	if code := execute([]string{"check", "--linearizability-timeout", "-1s", dir}); code != exitUsage {
		t.Errorf("negative budget: exit %d, want 2", code)
	}
}

// TestReproduceArgs: the reproduce line repeats every flag that shaped the scenario.
func TestReproduceArgs(t *testing.T) {
	f := runFlags{sets: []string{"acks=1", "image=apache/kafka:3.9.0"}, bootstrap: []string{"k1:9092", "k2:9092"}, externalConfig: "faults.yaml"}
	got := strings.Join(f.reproduceArgs(), " ")
	want := "--set acks=1 --set image=apache/kafka:3.9.0 --bootstrap k1:9092,k2:9092 --external-config faults.yaml"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	s, err := scenarios.Load("getting-started")
	if err != nil {
		t.Fatal(err)
	}
	if line := scenarios.ReproduceLine(s, 3, "external", f.reproduceArgs()); !strings.HasPrefix(line, "kafkatrial run getting-started --seed 3 --target external --set acks=1") {
		t.Errorf("line %q", line)
	}
}

// TestUsageErrorsBeforeRunning: mistakes that can be seen before a trial are exit 2, and nothing runs.
func TestUsageErrorsBeforeRunning(t *testing.T) {
	out := filepath.Join(t.TempDir(), "mx")
	if code := execute([]string{"matrix", "getting-started", "--vary", "acks=1,all", "--vary", "acks=0", "--out", out}); code != exitUsage {
		t.Errorf("a --vary key twice: exit %d, want 2", code)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the matrix ran despite the usage error")
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, filepath.Dir(bad), "bad.yaml", strings.Replace(faultedGuarantee, "leader(trial/0)", "leader(nope/0)", 1))
	if code := execute([]string{"run", bad, "--out", filepath.Join(t.TempDir(), "r")}); code != exitUsage {
		t.Errorf("a fault target naming no topic: exit %d, want 2", code)
	}
	dock := filepath.Join(t.TempDir(), "dock.yaml")
	writeFile(t, filepath.Dir(dock), "dock.yaml", strings.Replace(faultedGuarantee, "fault: kill", "fault: latency", 1))
	if code := execute([]string{"run", dock, "--target", "docker", "--out", filepath.Join(t.TempDir(), "r")}); code != exitUsage {
		t.Errorf("latency on docker: exit %d, want 2", code)
	}
}

func TestHelpNamesTheOutDefaults(t *testing.T) {
	for cmd, want := range map[string]string{"run": "out/<id>-<seed>", "suite": "out/<suite name>", "matrix": "out/matrix-<id>"} {
		c, _, err := rootCmd.Find([]string{cmd})
		if err != nil {
			t.Fatal(err)
		}
		if usage := c.Flags().Lookup("out").Usage; !strings.Contains(usage, want) {
			t.Errorf("%s --out: %q lacks %q", cmd, usage, want)
		}
	}
}
