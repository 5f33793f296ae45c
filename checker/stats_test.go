package checker

import (
	"math"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/history"
)

// sendSpec is one send for stats tests: invoke and completion times in milliseconds.
type sendSpec struct {
	call, done float64
	typ        history.Type
}

func sendHistory(specs []sendSpec, crashBuffered int) []history.Op {
	type ev struct {
		t  int64
		op history.Op
	}
	var evs []ev
	for i, s := range specs {
		v := history.Value(1, int64(i))
		evs = append(evs, ev{int64(s.call * 1e6), history.Op{Process: 1, Type: history.Invoke, F: history.Send, Topic: "t", Value: v}})
		if s.typ != "" {
			evs = append(evs, ev{int64(s.done * 1e6), history.Op{Process: 1, Type: s.typ, F: history.Send, Topic: "t", Value: v, Offset: int64(i)}})
		}
	}
	if crashBuffered > 0 {
		last := evs[len(evs)-1].t
		evs = append(evs, ev{last + 1, history.Op{Process: 1, Type: history.Invoke, F: history.Crash}},
			ev{last + 1, history.Op{Process: 1, Type: history.Info, F: history.Crash, Buffered: crashBuffered}})
	}
	// Stable insertion sort: histories are small.
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].t < evs[j-1].t; j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
	ops := make([]history.Op, len(evs))
	for i, e := range evs {
		ops[i] = e.op
		ops[i].Index, ops[i].Time = int64(i), e.t
	}
	return ops
}

func TestUnavailability(t *testing.T) {
	tests := []struct {
		name  string
		sends []sendSpec
		want  []Interval
	}{
		{"steady", []sendSpec{{0, 10, history.OK}, {500, 510, history.OK}, {1000, 1010, history.OK}}, []Interval{}},
		{"outage with sends failing", []sendSpec{
			{0, 10, history.OK}, {20, 1020, history.Fail}, {1030, 2030, history.Info}, {2040, 3500, history.OK},
		}, []Interval{{0.020, 3.500}}},
		{"idle producer is not an outage", []sendSpec{{0, 10, history.OK}, {5000, 5010, history.OK}}, []Interval{}},
		{"outage starts at the first attempt after idling", []sendSpec{
			{0, 10, history.OK}, {3000, 4000, history.Fail}, {4000, 5500, history.OK},
		}, []Interval{{3.000, 5.500}}},
		{"never available", []sendSpec{{0, 2000, history.Fail}, {2000, 4000, history.Info}}, []Interval{{0, 4.000}}},
		{"tail outage until the last attempt", []sendSpec{{0, 10, history.OK}, {20, 3020, history.Info}}, []Interval{{0.020, 3.020}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := buildFacts(sendHistory(tc.sends, 0), nil)
			got := f.unavailability(time.Second)
			if len(got) != len(tc.want) {
				t.Fatalf("intervals %v, want %v", got, tc.want)
			}
			for i := range got {
				if math.Abs(got[i].StartS-tc.want[i].StartS) > 1e-9 || math.Abs(got[i].EndS-tc.want[i].EndS) > 1e-9 {
					t.Errorf("interval %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestStatsFigures(t *testing.T) {
	var specs []sendSpec
	for i := 0; i < 100; i++ { // latencies 1..100 ms
		specs = append(specs, sendSpec{float64(i * 10), float64(i*10 + i + 1), history.OK})
	}
	specs = append(specs, sendSpec{1000, 1001, history.Fail}, sendSpec{1000, 1002, history.Info}, sendSpec{1000, 0, ""})
	v, err := Check(sendHistory(specs, 7), Options{LinearizabilityTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	s := v.Stats
	if s.SendsOK != 100 || s.SendsFail != 1 || s.SendsInfo != 2 || s.SendsUnfinished != 1 || s.UnackedLostInBuffer != 7 {
		t.Errorf("counts %+v", s)
	}
	if s.LatencyMsP50 != 50 || s.LatencyMsP99 != 99 || s.LatencyMsMax != 100 {
		t.Errorf("latency p50 %v p99 %v max %v, want 50 99 100", s.LatencyMsP50, s.LatencyMsP99, s.LatencyMsMax)
	}
	// 100 ok sends from t=0 to the last ok completion at 1090 ms.
	if want := 100 / 1.090; math.Abs(s.ThroughputPerS-want) > 1e-6 {
		t.Errorf("throughput %v, want %v", s.ThroughputPerS, want)
	}
	if n := len(v.Series.SendsOK); n != 2 || v.Series.SendsOK[0]+v.Series.SendsOK[1] != 100 || v.Series.SendsFail[1] != 1 {
		t.Errorf("series %+v", v.Series)
	}
}
