package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafkatrial/kafkatrial/checker"
)

// runDir makes a run directory with the given history (copied from the checker's golden histories or given
// inline) and scenario.yaml (omitted when empty).
func runDir(t *testing.T, historyText, scenario string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "history.jsonl"), []byte(historyText), 0o644); err != nil {
		t.Fatal(err)
	}
	if scenario != "" {
		if err := os.WriteFile(filepath.Join(dir, "scenario.yaml"), []byte(scenario), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "checker", "testdata", name+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const lostWriteGuarantee = `id: acksall-safe-leader-kill
seed: 42
duration: 10s
workload: {producers: [{count: 3}]}
expect:
  lost-write: none
  nonlinearizable: none
`

func TestCheckCommandExitCodes(t *testing.T) {
	corrupt := golden(t, "lost-write")
	lines := strings.SplitAfter(corrupt, "\n")
	lines[2] = `{"index":2,"time":"soon"}` + "\n"
	tests := []struct {
		name     string
		dir      func(t *testing.T) string
		code     int
		stderr   string // must appear in the error
		verdict  bool   // verdict.json written
		scenario string
	}{
		{"good", func(t *testing.T) string { return runDir(t, golden(t, "lost-write-near-miss"), lostWriteGuarantee) }, exitOK, "", true, "acksall-safe-leader-kill"},
		{"violating", func(t *testing.T) string { return runDir(t, golden(t, "lost-write"), lostWriteGuarantee) }, exitViolated, "lost-write violated", true, "acksall-safe-leader-kill"},
		{"demonstration-not-reproduced", func(t *testing.T) string {
			return runDir(t, golden(t, "lost-write-near-miss"), "id: acks1\nworkload: {producers: [{}]}\nexpect: {lost-write: some}\n")
		}, exitViolated, "not-reproduced", true, "acks1"},
		{"no-scenario", func(t *testing.T) string { return runDir(t, golden(t, "lost-write"), "") }, exitOK, "", true, ""},
		{"undecided", func(t *testing.T) string { return runDir(t, golden(t, "no-final-read"), lostWriteGuarantee) }, exitCannotRun, "undecided", true, "acksall-safe-leader-kill"},
		{"corrupt", func(t *testing.T) string { return runDir(t, strings.Join(lines, ""), lostWriteGuarantee) }, exitUsage, "line 3", false, ""},
		{"torn-tail", func(t *testing.T) string {
			return runDir(t, golden(t, "lost-write-near-miss")+`{"index":99,"ti`, lostWriteGuarantee)
		}, exitOK, "", true, "acksall-safe-leader-kill"},
		{"missing-dir", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, exitUsage, "run directory", false, ""},
		{"missing-history", func(t *testing.T) string { return t.TempDir() }, exitUsage, "history.jsonl", false, ""},
		{"bad-expect", func(t *testing.T) string {
			return runDir(t, golden(t, "lost-write"), "id: x\nworkload: {producers: [{}]}\nexpect: {lost-writes: none}\n")
		}, exitUsage, "unknown anomaly", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			var stdout, stderr bytes.Buffer
			err := runCheck(&stdout, &stderr, dir, 0)
			code := exitOK
			if err != nil {
				code = exitUsage
				if ee, ok := err.(*exitError); ok {
					code = ee.code
				}
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d (err %v)\n%s", code, tc.code, err, stdout.String())
			}
			if tc.stderr != "" && (err == nil || !strings.Contains(err.Error(), tc.stderr)) {
				t.Errorf("error %v does not mention %q", err, tc.stderr)
			}
			_, statErr := os.Stat(filepath.Join(dir, "verdict.json"))
			if tc.verdict != (statErr == nil) {
				t.Fatalf("verdict.json written = %v, want %v", statErr == nil, tc.verdict)
			}
			if !tc.verdict {
				return
			}
			v, err := checker.ReadVerdict(filepath.Join(dir, "verdict.json"))
			if err != nil {
				t.Fatal(err)
			}
			if v.Scenario != tc.scenario {
				t.Errorf("scenario %q, want %q", v.Scenario, tc.scenario)
			}
			if tc.name == "torn-tail" && !strings.Contains(strings.Join(v.Notes, "\n"), "torn") {
				t.Errorf("torn tail not noted: %v", v.Notes)
			}
		})
	}
}

// TestCheckCommandInProcess runs the registered cobra command end to end and checks verdict.json's shape.
func TestCheckCommandInProcess(t *testing.T) {
	dir := runDir(t, golden(t, "lost-write"), lostWriteGuarantee)
	if code := execute([]string{"check", dir}); code != exitViolated {
		t.Fatalf("exit %d, want %d", code, exitViolated)
	}
	if code := execute([]string{"check"}); code != exitUsage {
		t.Fatalf("check without a directory: exit %d, want %d", code, exitUsage)
	}
	b, err := os.ReadFile(filepath.Join(dir, "verdict.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"scenario", "seed", "valid", "anomalies", "claims", "linearizability", "stats"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("verdict.json lacks %q", k)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "linearizability", "trial-0.html")); err != nil {
		t.Errorf("no visualization of the Illegal partition: %v", err)
	}
}
