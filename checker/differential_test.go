package checker

import (
	"fmt"
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/history"
)

// injected is one fault planted in a correct generated history.
type injected struct {
	name string
	// apply plants the fault in ops and reports whether the history offered a place for it.
	apply func(r *rand.Rand, ops []history.Op) bool
	// fires are the counters that must count it.
	fires []string
	// linearizable is porcupine's expected answer. The counters and porcupine agree (nonlinearizable iff a
	// counter fires) on every fault except drop-acked-hole: a final read with a gap does not constrain the gap
	// (Kafka logs have control records consumers never see), so the dropped value's own send fills it and only
	// lost-write sees the loss. The converse (porcupine alone) is the real-time violation of
	// testdata/nonlinearizable.jsonl, and the counter-only reorder of concurrent sends is testdata/reorder.jsonl.
	linearizable bool
}

var injectedFaults = []injected{
	{name: "drop-acked-renumber", apply: dropAcked(true), fires: []string{LostWrite}},
	{name: "drop-acked-hole", apply: dropAcked(false), fires: []string{LostWrite}, linearizable: true},
	{name: "swap-adjacent", apply: swapAdjacent, fires: []string{InconsistentOffset}},
	{name: "store-twice", apply: storeTwice, fires: []string{Duplicate}},
	{name: "other-value-at-acked-offset", apply: otherValueAtAck, fires: []string{InconsistentOffset, LostWrite, Phantom}},
	{name: "ack-names-other-offset", apply: ackOtherOffset, fires: []string{InconsistentOffset, Duplicate}},
}

func TestDifferentialPorcupineAgreesWithCounters(t *testing.T) {
	const histories = 60
	planted := make(map[string]int)
	for seed := int64(1); seed <= histories; seed++ {
		r := rand.New(rand.NewSource(seed))
		c := genConfig{
			partitions: 1 + r.Intn(2), producers: 1 + r.Intn(3), sends: 3 + r.Intn(10), inflight: 1 + r.Intn(3),
			consumers: 1, maxPoll: 1 + r.Intn(4), failRate: 0.1, infoRate: 0.15,
		}
		base := genHistory(r, c)
		v := mustCheck(t, base)
		if fired := firing(v); len(fired) > 0 || v.Linearizability.Result != ResultOk {
			t.Fatalf("seed %d: correct history judged %s with %v; %+v", seed, v.Linearizability.Result, fired, examplesOf(v, fired))
		}
		for _, fault := range injectedFaults {
			ops := cloneOps(base)
			if !fault.apply(r, ops) {
				continue
			}
			planted[fault.name]++
			v := mustCheck(t, ops)
			fired := firing(v)
			for _, want := range fault.fires {
				if v.Anomalies[want].Count == 0 {
					t.Errorf("seed %d %s: %s did not fire (fired: %v)", seed, fault.name, want, fired)
				}
			}
			wantResult := ResultIllegal
			if fault.linearizable {
				wantResult = ResultOk
			}
			if v.Linearizability.Result != wantResult {
				t.Errorf("seed %d %s: linearizability %s, want %s (counters fired: %v)", seed, fault.name,
					v.Linearizability.Result, wantResult, fired)
			}
			if !fault.linearizable && len(fired) == 0 {
				t.Errorf("seed %d %s: porcupine Illegal but no counter fired", seed, fault.name)
			}
		}
	}
	for _, fault := range injectedFaults {
		if planted[fault.name] < histories/4 {
			t.Errorf("%s planted in only %d of %d histories", fault.name, planted[fault.name], histories)
		}
	}
}

func mustCheck(t *testing.T, ops []history.Op) *Verdict {
	t.Helper()
	v, err := Check(ops, Options{LinearizabilityTimeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// firing lists the counters (every anomaly but nonlinearizable) with a nonzero count.
func firing(v *Verdict) []string {
	var out []string
	for _, n := range AnomalyNames {
		if n != Nonlinearizable && v.Anomalies[n].Count > 0 {
			out = append(out, n)
		}
	}
	return out
}

func examplesOf(v *Verdict, names []string) []Example {
	var out []Example
	for _, n := range names {
		out = append(out, v.Anomalies[n].Examples...)
	}
	return out
}

// ackedFinalRecords returns the positions in the final read's records whose value was acked at that offset.
func ackedFinalRecords(ops []history.Op) (*history.Op, []int) {
	fin := finalOp(ops)
	acked := ackedOffsets(ops)
	var idx []int
	for i, rec := range fin.Records {
		if acked[history.Position{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}] == rec.Value {
			idx = append(idx, i)
		}
	}
	return fin, idx
}

// dropAcked removes one acked record from the final read; with renumber the later records of its partition
// move down one offset (a log that lost the record and was rewritten), without it a gap is left.
func dropAcked(renumber bool) func(r *rand.Rand, ops []history.Op) bool {
	return func(r *rand.Rand, ops []history.Op) bool {
		fin, idx := ackedFinalRecords(ops)
		if !renumber {
			// Keep records that have a later record in their partition, so the gap is inside the log.
			var inner []int
			for _, i := range idx {
				if i+1 < len(fin.Records) && fin.Records[i+1].Partition == fin.Records[i].Partition {
					inner = append(inner, i)
				}
			}
			idx = inner
		}
		if len(idx) == 0 {
			return false
		}
		i := idx[r.Intn(len(idx))]
		part := fin.Records[i].Partition
		recs := append(fin.Records[:i:i], fin.Records[i+1:]...)
		if renumber {
			for j := i; j < len(recs) && recs[j].Partition == part; j++ {
				recs[j].Offset--
			}
		}
		fin.Records = recs
		return true
	}
}

func swapAdjacent(r *rand.Rand, ops []history.Op) bool {
	fin, idx := ackedFinalRecords(ops)
	var ok []int
	for _, i := range idx {
		if i+1 < len(fin.Records) && fin.Records[i+1].Partition == fin.Records[i].Partition {
			ok = append(ok, i)
		}
	}
	if len(ok) == 0 {
		return false
	}
	i := ok[r.Intn(len(ok))]
	fin.Records[i].Value, fin.Records[i+1].Value = fin.Records[i+1].Value, fin.Records[i].Value
	return true
}

func storeTwice(r *rand.Rand, ops []history.Op) bool {
	fin, idx := ackedFinalRecords(ops)
	if len(idx) == 0 {
		return false
	}
	rec := fin.Records[idx[r.Intn(len(idx))]]
	last := int64(-1)
	for _, x := range fin.Records {
		if x.Partition == rec.Partition {
			last = max(last, x.Offset)
		}
	}
	rec.Offset = last + 1
	fin.Records = append(fin.Records, rec)
	sort.SliceStable(fin.Records, func(a, b int) bool { return fin.Records[a].Partition < fin.Records[b].Partition })
	return true
}

func otherValueAtAck(r *rand.Rand, ops []history.Op) bool {
	fin, idx := ackedFinalRecords(ops)
	if len(idx) == 0 {
		return false
	}
	fin.Records[idx[r.Intn(len(idx))]].Value = history.Value(424242, r.Int63n(1000))
	return true
}

// ackOtherOffset makes one ok send's ack name an offset that holds another value.
func ackOtherOffset(r *rand.Rand, ops []history.Op) bool {
	fin := finalOp(ops)
	var sends []int
	for i, o := range ops {
		if o.F == history.Send && o.Type == history.OK {
			sends = append(sends, i)
		}
	}
	r.Shuffle(len(sends), func(a, b int) { sends[a], sends[b] = sends[b], sends[a] })
	for _, i := range sends {
		for _, rec := range fin.Records {
			if rec.Partition == ops[i].Partition && rec.Value != ops[i].Value {
				ops[i].Offset = rec.Offset
				return true
			}
		}
	}
	return false
}

func TestInjectedFaultNamesAreUnique(t *testing.T) {
	seen := make(map[string]bool)
	for _, f := range injectedFaults {
		if seen[f.name] {
			t.Fatal(fmt.Sprintf("duplicate fault %s", f.name))
		}
		seen[f.name] = true
	}
}
