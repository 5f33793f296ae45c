package checker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Anomaly names: the vocabulary of claims.md, as verdict.json spells them.
const (
	LostWrite           = "lost-write"
	Duplicate           = "duplicate"
	InconsistentOffset  = "inconsistent-offset"
	Reorder             = "reorder"
	Phantom             = "phantom"
	PollSkip            = "poll-skip"
	NonmonotonicPoll    = "nonmonotonic-poll"
	Nonlinearizable     = "nonlinearizable"
	ProcessedLoss       = "processed-loss"
	DuplicateProcessing = "duplicate-processing"
)

// AnomalyNames lists every anomaly in the order claims.md gives them; verdict.json keeps that order.
var AnomalyNames = []string{
	LostWrite, Duplicate, InconsistentOffset, Reorder, Phantom, PollSkip, NonmonotonicPoll, Nonlinearizable,
	ProcessedLoss, DuplicateProcessing,
}

// MaxExamples bounds the examples kept per anomaly; Count still counts every occurrence.
const MaxExamples = 16

// Verdict is the checker's judgement of one history; its JSON is verdict.json (contract.md). Fields after
// Stats are extensions the contract allows.
type Verdict struct {
	Scenario string `json:"scenario"`
	Seed     int64  `json:"seed"`
	// Valid is true when no guarantee (expect: none) was violated (contract.md). It says nothing of claims left
	// unknown or demonstrations not reproduced: Outcome (and the exit code) does.
	Valid           bool            `json:"valid"`
	Anomalies       Anomalies       `json:"anomalies"`
	Claims          []Claim         `json:"claims"`
	Linearizability Linearizability `json:"linearizability"`
	Stats           Stats           `json:"stats"`

	// Unavailability lists the intervals counted in Stats.UnavailableS (see unavailability in stats.go).
	Unavailability []Interval `json:"unavailability"`
	// Series holds per-bucket counts over the run, for plots.
	Series Series `json:"series"`
	// Notes explain what could not be judged and why (no final read of a partition, a torn history line, ...).
	Notes []string `json:"notes"`
}

// Anomalies maps every anomaly name to its count and examples. It marshals in AnomalyNames order.
type Anomalies map[string]*Anomaly

// Anomaly is one anomaly's count and up to MaxExamples examples.
type Anomaly struct {
	Count    int       `json:"count"`
	Examples []Example `json:"examples"`
	// Unjudged names the partitions (topic/partition) on which this anomaly could not be judged, e.g. for lack
	// of a final read. A zero count with unjudged partitions is not evidence of absence.
	Unjudged []string `json:"unjudged,omitempty"`
}

// Example is one concrete occurrence, with what a person needs to find it in history.jsonl: Ops are history
// indexes ("index" field), TimeNs the time of the first of them.
type Example struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Offsets   []int64  `json:"offsets,omitempty"`
	Values    []string `json:"values,omitempty"`
	Processes []int    `json:"processes,omitempty"`
	Group     string   `json:"group,omitempty"`
	Ops       []int64  `json:"ops"`
	TimeNs    int64    `json:"time_ns"`
	Detail    string   `json:"detail"`
}

// Claim statuses. StatusUnknown extends the contract's set: the anomaly counted zero but the evidence was
// incomplete (a linearizability check that ran out of time, a partition without a final read), so a guarantee
// cannot be shown as held nor a demonstration as not reproduced. It is never a pass.
const (
	StatusHeld          = "held"
	StatusViolated      = "violated"
	StatusReproduced    = "reproduced"
	StatusNotReproduced = "not-reproduced"
	StatusReported      = "reported"
	StatusUnknown       = "unknown"
)

// Expectations a scenario may state for an anomaly.
const (
	ExpectNone = "none" // a guarantee: one occurrence fails the run
	ExpectSome = "some" // a demonstration: the fault must provoke it
	ExpectAny  = "any"  // reported, not judged
)

// Claim is one expectation of the scenario, judged.
type Claim struct {
	Anomaly  string `json:"anomaly"`
	Expect   string `json:"expect"`
	Observed int    `json:"observed"`
	Held     bool   `json:"held"` // true for held and reproduced only
	Status   string `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// Linearizability results. Result is Ok only if every partition was checked to completion and found Ok.
type Linearizability struct {
	Result            string                `json:"result"` // Ok, Illegal or Unknown
	PartitionsChecked int                   `json:"partitions_checked"`
	Seconds           float64               `json:"seconds"`
	Partitions        []PartitionLinearized `json:"partitions"`
}

// Linearizability result values (porcupine's).
const (
	ResultOk      = "Ok"
	ResultIllegal = "Illegal"
	ResultUnknown = "Unknown"
)

// PartitionLinearized is the porcupine result of one topic-partition.
type PartitionLinearized struct {
	Topic         string  `json:"topic"`
	Partition     int32   `json:"partition"`
	Result        string  `json:"result"`
	Operations    int     `json:"operations"`
	Seconds       float64 `json:"seconds"`
	Visualization string  `json:"visualization,omitempty"` // path relative to the run directory
}

// Stats are the reported figures of contract.md plus extensions.
type Stats struct {
	SendsOK             int     `json:"sends_ok"`
	SendsFail           int     `json:"sends_fail"`
	SendsInfo           int     `json:"sends_info"` // includes sends never completed (SendsUnfinished)
	UnackedLostInBuffer int     `json:"unacked_lost_in_buffer"`
	ThroughputPerS      float64 `json:"throughput_per_s"`
	LatencyMsP50        float64 `json:"latency_ms_p50"`
	LatencyMsP99        float64 `json:"latency_ms_p99"`
	UnavailableS        float64 `json:"unavailable_s"`

	SendsUnfinished int     `json:"sends_unfinished"`
	LatencyMsMax    float64 `json:"latency_ms_max"`
	Operations      int     `json:"operations"`
	DurationS       float64 `json:"duration_s"`
	Crashes         int     `json:"crashes"`
	Polls           int     `json:"polls"`
	RecordsPolled   int     `json:"records_polled"`
	RecordsFinal    int     `json:"records_final_read"`
}

// Interval is a span of the run in seconds since its start.
type Interval struct {
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
}

// Series are counts per time bucket, bucket i covering [i*BucketS, (i+1)*BucketS) seconds.
type Series struct {
	BucketS      float64   `json:"bucket_s"`
	SendsOK      []int     `json:"sends_ok"`
	SendsFail    []int     `json:"sends_fail"`
	SendsInfo    []int     `json:"sends_info"`
	LatencyMsP99 []float64 `json:"latency_ms_p99"` // of the ok sends completing in the bucket; 0 if none
}

// Outcome classifies a verdict for exit codes.
type Outcome int

const (
	// Passed: every claim held or reproduced (or was only reported).
	Passed Outcome = iota
	// Failed: a guarantee was violated or a demonstration did not reproduce.
	Failed
	// Undecided: nothing failed, but some claim is unknown (e.g. linearizability ran out of time).
	Undecided
)

// Outcome returns Failed if any claim is violated or not reproduced, else Undecided if any is unknown, else
// Passed.
func (v *Verdict) Outcome() Outcome {
	out := Passed
	for _, c := range v.Claims {
		switch c.Status {
		case StatusViolated, StatusNotReproduced:
			return Failed
		case StatusUnknown:
			out = Undecided
		}
	}
	return out
}

// MarshalJSON writes the anomalies in AnomalyNames order, then any others sorted, so verdicts diff cleanly.
func (a Anomalies) MarshalJSON() ([]byte, error) {
	names := make([]string, 0, len(a))
	known := make(map[string]bool, len(AnomalyNames))
	for _, n := range AnomalyNames {
		known[n] = true
		if _, ok := a[n]; ok {
			names = append(names, n)
		}
	}
	var extra []string
	for n := range a {
		if !known[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	names = append(names, extra...)
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(n)
		buf.Write(k)
		buf.WriteByte(':')
		an := a[n]
		if an == nil {
			an = &Anomaly{}
		}
		if an.Examples == nil {
			an.Examples = []Example{}
		}
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(an); err != nil {
			return nil, fmt.Errorf("encoding anomaly %s: %w", n, err)
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// WriteFile writes the verdict as indented JSON to path (normally <run-dir>/verdict.json), atomically: a reader
// never sees half a verdict.
func (v *Verdict) WriteFile(path string) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // details print "->"; keep them readable
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding verdict: %w", err)
	}
	b := buf.Bytes()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".verdict-*.json")
	if err != nil {
		return fmt.Errorf("writing verdict: %w", err)
	}
	// CreateTemp makes the file private (0600); the verdict is as readable as the rest of the run directory.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("writing verdict: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("writing verdict: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing verdict: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing verdict: %w", err)
	}
	return nil
}

// ReadVerdict reads a verdict.json written by WriteFile (for reports and comparisons).
func ReadVerdict(path string) (*Verdict, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading verdict: %w", err)
	}
	var v Verdict
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decoding verdict %s: %w", path, err)
	}
	return &v, nil
}

// newVerdict returns a verdict with every anomaly present at zero and no nil slices, as verdict.json requires.
func newVerdict(opts Options) *Verdict {
	v := &Verdict{
		Scenario:       opts.Scenario,
		Seed:           opts.Seed,
		Anomalies:      make(Anomalies, len(AnomalyNames)),
		Claims:         []Claim{},
		Unavailability: []Interval{},
		Notes:          []string{},
		Linearizability: Linearizability{
			Result: ResultUnknown, Partitions: []PartitionLinearized{},
		},
		Series: Series{SendsOK: []int{}, SendsFail: []int{}, SendsInfo: []int{}, LatencyMsP99: []float64{}},
	}
	for _, n := range AnomalyNames {
		v.Anomalies[n] = &Anomaly{Examples: []Example{}}
	}
	return v
}

// add counts one occurrence of an anomaly, keeping it as an example while fewer than MaxExamples are kept.
func (a *Anomaly) add(e Example) {
	a.Count++
	if len(a.Examples) < MaxExamples {
		if e.Ops == nil {
			e.Ops = []int64{}
		}
		a.Examples = append(a.Examples, e)
	}
}
