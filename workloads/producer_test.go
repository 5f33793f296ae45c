package workloads

import (
	"context"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/history"
)

// TestProduceAndFinalReadHealthy: on a healthy cluster every send is acked with a unique offset, and the final
// read returns exactly the acked records at their acked offsets.
func TestProduceAndFinalReadHealthy(t *testing.T) {
	for _, async := range []bool{true, false} {
		seeds := startCluster(t, 3)
		h := newTestHistory(t)
		cfg := DefaultProducerConfig(testTopic, 3)
		cfg.Async = async
		cfg.Rate = 0
		cfg.Count = 300
		p, err := NewProducer(h.rec, seeds, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Run(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		st := p.Stats()
		if st.Sent != 300 || st.OK != 300 {
			t.Fatalf("async=%v: stats %+v, want 300 sent and ok", async, st)
		}
		res, err := FinalRead(testCtx(t), h.rec, seeds, FinalReadConfig{Topics: []string{testTopic}})
		if err != nil {
			t.Fatal(err)
		}
		ops := h.ops()
		final := finalValues(t, res)
		acked := 0
		for v, op := range sendsByValue(ops) {
			if op.Type != history.OK {
				t.Fatalf("send %s: %s (%s) on a healthy cluster", v, op.Type, op.Error)
			}
			acked++
			r, ok := final[v]
			if !ok {
				t.Fatalf("acked %s missing from the final read", v)
			}
			if r.Partition != op.Partition || r.Offset != op.Offset {
				t.Fatalf("acked %s at %d/%d, read at %d/%d", v, op.Partition, op.Offset, r.Partition, r.Offset)
			}
		}
		if acked != 300 || !res.Agreed {
			t.Fatalf("acked %d, agreed %v", acked, res.Agreed)
		}
		finals := 0
		for _, op := range ops {
			if op.F == history.FinalRead && op.Type == history.OK {
				finals++
			}
		}
		if finals != 3 {
			t.Fatalf("%d final-read ops, want one per partition (3)", finals)
		}
	}
}

// TestProducerRateIsHonoured: a target rate spaces sends out (checked on the history's own clock, loosely: the
// last send cannot be invoked before (n-1)/rate).
func TestProducerRateIsHonoured(t *testing.T) {
	seeds := startCluster(t, 1)
	h := newTestHistory(t)
	cfg := DefaultProducerConfig(testTopic, 1)
	cfg.Rate = 50
	cfg.Count = 11
	p, err := NewProducer(h.rec, seeds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	_ = p.Close(context.Background())
	var first, last int64 = -1, 0
	for _, op := range h.ops() {
		if op.F == history.Send && op.Type == history.Invoke {
			if first < 0 {
				first = op.Time
			}
			last = op.Time
		}
	}
	if got := time.Duration(last - first); got < 190*time.Millisecond {
		t.Fatalf("11 sends at 50/s took %v, want at least 200ms", got)
	}
}
