package checker

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/history"
)

// goldenExpect is testdata/<name>.expect.json: the exact count of every anomaly (absent means zero) and the
// linearizability result.
type goldenExpect struct {
	Comment         string         `json:"comment"`
	Counts          map[string]int `json:"counts"`
	Linearizability string         `json:"linearizability"`
}

func TestGoldenHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2*len(AnomalyNames) {
		t.Fatalf("found %d golden histories, want a showing and a near miss for each of %d anomalies", len(files), len(AnomalyNames))
	}
	shown := make(map[string]bool)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".jsonl")
		t.Run(name, func(t *testing.T) {
			var want goldenExpect
			b, err := os.ReadFile(strings.TrimSuffix(file, ".jsonl") + ".expect.json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			res, err := history.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			v, err := Check(res.Ops, Options{LinearizabilityTimeout: time.Minute, VisualizeDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range AnomalyNames {
				a := v.Anomalies[n]
				if a.Count != want.Counts[n] {
					t.Errorf("%s: count %d, want %d; examples: %+v", n, a.Count, want.Counts[n], a.Examples)
				}
				if len(a.Examples) != min(a.Count, MaxExamples) {
					t.Errorf("%s: %d examples for count %d", n, len(a.Examples), a.Count)
				}
				for _, e := range a.Examples {
					checkExampleRefs(t, n, e, res.Ops)
				}
				if a.Count > 0 && !strings.Contains(name, "near-miss") {
					shown[n] = true
				}
			}
			if v.Linearizability.Result != want.Linearizability {
				t.Errorf("linearizability %s, want %s (notes %v)", v.Linearizability.Result, want.Linearizability, v.Notes)
			}
			for _, p := range v.Linearizability.Partitions {
				if p.Result == ResultIllegal && p.Visualization == "" {
					t.Errorf("Illegal partition %s/%d has no visualization", p.Topic, p.Partition)
				}
				if p.Visualization != "" {
					if _, err := os.Stat(filepath.Join(dir, p.Visualization)); err != nil {
						t.Errorf("visualization: %v", err)
					}
				}
			}
		})
	}
	for _, n := range AnomalyNames {
		if !shown[n] {
			t.Errorf("no golden history shows %s", n)
		}
	}
}

// checkExampleRefs asserts an example points at real ops of the history, so a person can find it.
func checkExampleRefs(t *testing.T, anomaly string, e Example, ops []history.Op) {
	t.Helper()
	if e.Detail == "" || e.Topic == "" {
		t.Errorf("%s: example without detail or topic: %+v", anomaly, e)
	}
	for _, op := range e.Ops {
		if op < 0 || op >= int64(len(ops)) {
			t.Errorf("%s: example names op %d, history has %d: %+v", anomaly, op, len(ops), e)
		}
	}
}

func TestNoFinalReadIsNotJudged(t *testing.T) {
	res, err := history.ReadFile("testdata/no-final-read.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	v, err := Check(res.Ops, Options{Expect: map[string]string{LostWrite: ExpectNone, Duplicate: ExpectNone}})
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Anomalies[LostWrite].Unjudged; len(got) != 1 || got[0] != "trial/0" {
		t.Errorf("lost-write unjudged = %v, want [trial/0]", got)
	}
	if !v.Valid {
		t.Error("valid false with nothing violated: an unjudged guarantee is unknown, not violated")
	}
	want := map[string]string{LostWrite: StatusUnknown, Duplicate: StatusHeld}
	for _, c := range v.Claims {
		if c.Status != want[c.Anomaly] {
			t.Errorf("claim %s: status %s, want %s", c.Anomaly, c.Status, want[c.Anomaly])
		}
	}
	if v.Outcome() != Undecided {
		t.Errorf("outcome %v, want Undecided", v.Outcome())
	}
}

// TestBadHistoryIsNotAnAnomaly replays the acceptance audit's corrupt copies of a good history: a duplicated ok
// line once made porcupine report nonlinearizable, and a deleted invoke or a time going backwards passed in
// silence. Each must be refused, by Read with the line and by Check, never judged.
func TestBadHistoryIsNotAnAnomaly(t *testing.T) {
	res, err := history.ReadFile("testdata/lost-write-near-miss.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	good := res.Ops
	renumber := func(ops []history.Op) []history.Op {
		for i := range ops {
			ops[i].Index = int64(i)
		}
		return ops
	}
	okSend := slices.IndexFunc(good, func(o history.Op) bool { return o.F == history.Send && o.Type == history.OK })
	tests := []struct {
		name string
		ops  []history.Op
		want string
	}{
		{"ok send duplicated", renumber(slices.Insert(slices.Clone(good), okSend+1, good[okSend])), "second completion"},
		{"first invoke deleted", renumber(slices.Clone(good[1:])), "without an invoke"},
		{"time backwards", func() []history.Op {
			ops := slices.Clone(good)
			ops[len(ops)/2].Time = 1
			return ops
		}(), "time must never go backwards"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Check(tc.ops, Options{Expect: map[string]string{Nonlinearizable: ExpectNone}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: err %v (verdict %+v), want an error saying %q", err, v, tc.want)
			}
			var buf bytes.Buffer
			for i := range tc.ops {
				buf.Write(history.AppendJSON(nil, &tc.ops[i]))
				buf.WriteByte('\n')
			}
			var le *history.LineError
			if _, err := history.Read(&buf); !errors.As(err, &le) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Read: %v, want a line error saying %q", err, tc.want)
			}
		})
	}
	if _, err := Check(good, Options{}); err != nil {
		t.Fatalf("the good history: %v", err)
	}
}
