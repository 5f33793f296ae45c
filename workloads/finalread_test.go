package workloads

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/history"
)

// TestFinalReadReportsNoAgreement: while a producer keeps the high watermark moving, no two passes agree; the
// final read says so (ErrNoAgreement, Agreed false) and records its ops as info.
func TestFinalReadReportsNoAgreement(t *testing.T) {
	seeds := startCluster(t, 1)
	h := newTestHistory(t)
	cfg := DefaultProducerConfig(testTopic, 1)
	cfg.Rate = 0 // the high watermark never rests
	p, err := NewProducer(h.rec, seeds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	waitFor(t, "the producer to run", func() bool { return p.Stats().OK > 0 })
	res, err := FinalRead(testCtx(t), h.rec, seeds, FinalReadConfig{Topics: []string{testTopic}, Timeout: time.Second})
	stop()
	<-done
	_ = p.Close(context.Background())
	if !errors.Is(err, ErrNoAgreement) || res.Agreed {
		t.Fatalf("final read under a moving high watermark: %v, agreed %v", err, res.Agreed)
	}
	infos := 0
	for _, op := range h.ops() {
		if op.F == history.FinalRead && op.Type == history.Info {
			infos++
		}
	}
	if infos != 1 {
		t.Fatalf("%d info final-read ops, want 1", infos)
	}
}
