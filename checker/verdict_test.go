package checker

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/history"
)

func TestVerdictJSONShape(t *testing.T) {
	v, err := Check(nil, Options{Scenario: "s", Seed: 7, Expect: map[string]string{LostWrite: ExpectAny}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "verdict.json")
	if err := v.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("verdict.json mode: %v %v, want 0644 like the rest of the run directory", fi.Mode(), err)
	}
	back, err := ReadVerdict(path)
	if err != nil {
		t.Fatal(err)
	}
	if back.Scenario != "s" || back.Seed != 7 || len(back.Claims) != 1 {
		t.Errorf("round trip lost fields: %+v", back)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Anomalies       map[string]map[string]json.RawMessage `json:"anomalies"`
		Linearizability map[string]json.RawMessage            `json:"linearizability"`
		Stats           map[string]json.RawMessage            `json:"stats"`
		Claims          json.RawMessage                       `json:"claims"`
	}
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, n := range AnomalyNames {
		a, ok := raw.Anomalies[n]
		if !ok {
			t.Errorf("anomaly %s missing", n)
			continue
		}
		if string(a["count"]) != "0" || string(a["examples"]) != "[]" {
			t.Errorf("anomaly %s = count %s examples %s, want 0 and []", n, a["count"], a["examples"])
		}
	}
	if len(raw.Anomalies) != len(AnomalyNames) {
		t.Errorf("%d anomalies, want %d", len(raw.Anomalies), len(AnomalyNames))
	}
	for _, k := range []string{"result", "partitions_checked", "seconds"} {
		if _, ok := raw.Linearizability[k]; !ok {
			t.Errorf("linearizability.%s missing", k)
		}
	}
	for _, k := range []string{"sends_ok", "sends_fail", "sends_info", "unacked_lost_in_buffer", "throughput_per_s",
		"latency_ms_p50", "latency_ms_p99", "unavailable_s"} {
		if _, ok := raw.Stats[k]; !ok {
			t.Errorf("stats.%s missing", k)
		}
	}
	// Anomalies keep the order of claims.md.
	first := strings.Index(buf.String(), `"lost-write"`)
	last := strings.Index(buf.String(), `"duplicate-processing"`)
	if first < 0 || last < first {
		t.Errorf("anomalies not in claims.md order")
	}
}

func TestClaimStatuses(t *testing.T) {
	tests := []struct {
		name       string
		expect     string
		count      int
		unjudged   bool
		linUnknown bool
		anomaly    string
		status     string
		held       bool
		valid      bool
		outcome    Outcome
	}{
		{"guarantee held", ExpectNone, 0, false, false, LostWrite, StatusHeld, true, true, Passed},
		{"guarantee violated", ExpectNone, 3, false, false, LostWrite, StatusViolated, false, false, Failed},
		{"demonstration reproduced", ExpectSome, 2, false, false, LostWrite, StatusReproduced, true, true, Passed},
		{"demonstration not reproduced", ExpectSome, 0, false, false, LostWrite, StatusNotReproduced, false, true, Failed},
		{"reported", ExpectAny, 5, false, false, Duplicate, StatusReported, false, true, Passed},
		{"guarantee unjudged", ExpectNone, 0, true, false, LostWrite, StatusUnknown, false, true, Undecided},
		{"unjudged but counted", ExpectNone, 1, true, false, LostWrite, StatusViolated, false, false, Failed},
		{"demonstration unjudged", ExpectSome, 0, true, false, LostWrite, StatusUnknown, false, true, Undecided},
		{"linearizability unknown", ExpectNone, 0, false, true, Nonlinearizable, StatusUnknown, false, true, Undecided},
		{"linearizability illegal", ExpectNone, 1, false, false, Nonlinearizable, StatusViolated, false, false, Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerdict(Options{})
			v.Linearizability.Result = ResultOk
			if tc.linUnknown {
				v.Linearizability.Result = ResultUnknown
			}
			a := v.Anomalies[tc.anomaly]
			a.Count = tc.count
			if tc.unjudged {
				a.Unjudged = []string{"trial/0"}
			}
			judgeClaims(v, map[string]string{tc.anomaly: tc.expect})
			c := v.Claims[0]
			if c.Status != tc.status || c.Held != tc.held || v.Valid != tc.valid || v.Outcome() != tc.outcome {
				t.Errorf("got status %s held %v valid %v outcome %v, want %s %v %v %v", c.Status, c.Held, v.Valid,
					v.Outcome(), tc.status, tc.held, tc.valid, tc.outcome)
			}
		})
	}
}

// TestValidMeansNoGuaranteeViolated checks verdict.json's valid against contract.md on runs with several claims:
// an unknown claim, guarantee or demonstration alike, never makes it false, and one violation always does.
func TestValidMeansNoGuaranteeViolated(t *testing.T) {
	tests := []struct {
		name     string
		expect   map[string]string
		counts   map[string]int
		unjudged []string // anomalies without a final read
		linUnk   bool
		valid    bool
		outcome  Outcome
	}{
		{"demonstration unknown (interrupted run, no final read)", map[string]string{LostWrite: ExpectSome},
			nil, []string{LostWrite}, false, true, Undecided},
		{"guarantee unknown (linearizability out of time)", map[string]string{Nonlinearizable: ExpectNone},
			nil, nil, true, true, Undecided},
		{"guarantee held beside an unknown one", map[string]string{Duplicate: ExpectNone, Nonlinearizable: ExpectNone},
			nil, nil, true, true, Undecided},
		{"violated beside an unknown one", map[string]string{Duplicate: ExpectNone, Nonlinearizable: ExpectNone},
			map[string]int{Duplicate: 1}, nil, true, false, Failed},
		{"demonstration not reproduced", map[string]string{LostWrite: ExpectSome, Duplicate: ExpectNone},
			nil, nil, false, true, Failed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerdict(Options{})
			v.Linearizability.Result = ResultOk
			if tc.linUnk {
				v.Linearizability.Result = ResultUnknown
			}
			for n, c := range tc.counts {
				v.Anomalies[n].Count = c
			}
			for _, n := range tc.unjudged {
				v.Anomalies[n].Unjudged = []string{"trial/0"}
			}
			judgeClaims(v, tc.expect)
			if v.Valid != tc.valid || v.Outcome() != tc.outcome {
				t.Errorf("valid %v outcome %v, want %v %v; claims %+v", v.Valid, v.Outcome(), tc.valid, tc.outcome, v.Claims)
			}
		})
	}
}

func TestBadExpectIsAnError(t *testing.T) {
	for _, e := range []map[string]string{{"lost-writes": ExpectNone}, {LostWrite: "never"}} {
		if _, err := Check(nil, Options{Expect: e}); err == nil {
			t.Errorf("expect %v accepted", e)
		}
	}
}

// TestLinearizabilityTimeoutIsUnknown checks that a budget too small to finish gives Unknown, and that a
// nonlinearizable: none claim is then unknown, never held.
func TestLinearizabilityTimeoutIsUnknown(t *testing.T) {
	ops := genHistory(rand.New(rand.NewSource(5)), genConfig{partitions: 3, producers: 3, sends: 50, inflight: 2, consumers: 1, maxPoll: 5})
	v, err := Check(ops, Options{LinearizabilityTimeout: time.Nanosecond, Expect: map[string]string{Nonlinearizable: ExpectNone}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Linearizability.Result != ResultUnknown {
		t.Fatalf("result %s, want Unknown", v.Linearizability.Result)
	}
	if c := v.Claims[0]; c.Status != StatusUnknown || c.Held || v.Outcome() != Undecided {
		t.Errorf("claim %+v outcome %v: an unfinished check shown as a pass", c, v.Outcome())
	}
	if !v.Valid {
		t.Error("valid false with nothing violated (valid is contract.md's \"no guarantee violated\")")
	}
	v, err = Check(ops, Options{Expect: map[string]string{Nonlinearizable: ExpectNone}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Linearizability.Result != ResultOk || !v.Valid || v.Linearizability.PartitionsChecked != 3 {
		t.Errorf("with the default budget: %+v valid %v", v.Linearizability, v.Valid)
	}
}

func TestExamplesAreBounded(t *testing.T) {
	var ops []history.Op
	add := func(o history.Op) {
		o.Index, o.Time = int64(len(ops)), int64(len(ops))*1000
		ops = append(ops, o)
	}
	var recs []history.Record
	for i := 0; i < 100; i++ {
		v := history.Value(1, int64(i))
		add(history.Op{Process: 1, Type: history.Invoke, F: history.Send, Topic: "t", Value: v})
		add(history.Op{Process: 1, Type: history.OK, F: history.Send, Topic: "t", Value: v, Offset: int64(i)})
		if i%2 == 0 {
			recs = append(recs, history.Record{Topic: "t", Offset: int64(i), Value: v})
		}
	}
	add(history.Op{Process: 9, Type: history.Invoke, F: history.FinalRead})
	add(history.Op{Process: 9, Type: history.OK, F: history.FinalRead, Records: recs})
	v, err := Check(ops, Options{LinearizabilityTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	if a := v.Anomalies[LostWrite]; a.Count != 50 || len(a.Examples) != MaxExamples {
		t.Errorf("lost-write count %d with %d examples, want 50 and %d", a.Count, len(a.Examples), MaxExamples)
	}
	if v.Linearizability.Result != ResultUnknown {
		t.Errorf("disabled check gave %s", v.Linearizability.Result)
	}
}

// TestHeapLimitStopsLinearizability checks the heap watchdog: past MaxCheckHeap the check stops and says
// Unknown, never Ok or a made-up Illegal.
func TestHeapLimitStopsLinearizability(t *testing.T) {
	ops := genHistory(rand.New(rand.NewSource(6)), genConfig{partitions: 2, producers: 4, sends: 3000, inflight: 3, consumers: 1, maxPoll: 5})
	old := MaxCheckHeap
	MaxCheckHeap = 1
	defer func() { MaxCheckHeap = old }()
	v, err := Check(ops, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Linearizability.Result != ResultUnknown || v.Anomalies[Nonlinearizable].Count != 0 {
		t.Fatalf("result %s with %d nonlinearizable, want Unknown and 0", v.Linearizability.Result, v.Anomalies[Nonlinearizable].Count)
	}
	if !strings.Contains(strings.Join(v.Notes, "\n"), "heap") {
		t.Errorf("no note about the heap limit: %v", v.Notes)
	}
}
