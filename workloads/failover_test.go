package workloads

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/broker"
	"github.com/kafkatrial/kafkatrial/history"
)

// failoverRig is a three-node built-in cluster with one rf=3, min.insync.replicas=2 partition and a sync
// acks=all idempotent producer on it (the trial's safe settings), recording into an in-memory history.
type failoverRig struct {
	tb      testing.TB
	c       *broker.Cluster
	w       *history.Writer
	buf     *lockedBuffer
	p       *Producer
	stopRun func()
	kills   []int64 // history times of the leader kills
}

const failoverTopic = "failover"

func startFailoverRig(tb testing.TB, cfg ProducerConfig) *failoverRig {
	tb.Helper()
	c, err := broker.StartCluster(broker.ClusterConfig{Nodes: 3, Dir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("starting the cluster: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	adm, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...))
	if err != nil {
		tb.Fatalf("admin client: %v", err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	two := "2"
	resp, err := kadm.NewClient(adm).CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &two}, failoverTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		tb.Fatalf("creating topic %s: %v", failoverTopic, err)
	}
	r := &failoverRig{tb: tb, c: c, buf: &lockedBuffer{}}
	r.waitFullISR()
	r.w = history.NewWriter(r.buf, time.Now())
	tb.Cleanup(func() { r.w.Close() })
	r.p, err = NewProducer(NewRecorder(r.w), c.Bootstrap(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.p.Run(runCtx)
	}()
	// A sync Run waits out its outstanding send unless the producer closes, so Close goes first.
	r.stopRun = func() {
		stop()
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := r.p.Close(cctx); err != nil {
			tb.Errorf("closing the producer: %v", err)
		}
		<-done
	}
	return r
}

// waitFullISR waits until the partition has a leader and all three replicas in sync.
func (r *failoverRig) waitFullISR() {
	r.tb.Helper()
	r.waitFor("a leader with all three replicas in sync", func() error {
		im := r.c.Image()
		if im == nil || im.Topics[failoverTopic] == nil {
			return fmt.Errorf("no topic yet")
		}
		p := im.Topics[failoverTopic].Partitions[0]
		if p.Leader < 0 || len(p.ISR) != 3 {
			return fmt.Errorf("leader %d ISR %v", p.Leader, p.ISR)
		}
		return nil
	})
}

// waitOKs waits until the producer has more than n ok sends.
func (r *failoverRig) waitOKs(n int64) {
	r.tb.Helper()
	r.waitFor(fmt.Sprintf("more than %d ok sends", n), func() error {
		if ok := r.p.Stats().OK; ok <= n {
			return fmt.Errorf("%d ok sends", ok)
		}
		return nil
	})
}

func (r *failoverRig) waitFor(what string, cond func() error) {
	r.tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("%s: not within a minute: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killLeader kills the partition's leader once sends flow, waits for sends to succeed again, and restarts
// the victim with the ISR full again, ready for the next round.
func (r *failoverRig) killLeader() {
	r.tb.Helper()
	r.waitOKs(r.p.Stats().OK + 10)
	victim := r.c.Image().Topics[failoverTopic].Partitions[0].Leader
	r.kills = append(r.kills, r.w.Since())
	if err := r.c.Kill(victim); err != nil {
		r.tb.Fatal(err)
	}
	r.waitOKs(r.p.Stats().OK + 10)
	if err := r.c.Restart(victim); err != nil {
		r.tb.Fatal(err)
	}
	r.waitFullISR()
}

// gaps stops the producer and returns, per kill, the time from the kill to the first ok send completing
// after it: how long acks=all sync sends were stalled by the failover.
func (r *failoverRig) gaps() []time.Duration {
	r.tb.Helper()
	r.stopRun()
	if err := r.w.Flush(); err != nil {
		r.tb.Fatal(err)
	}
	res, err := history.Read(bytes.NewReader(r.buf.bytes()))
	if err != nil {
		r.tb.Fatal(err)
	}
	var oks []int64
	for _, op := range res.Ops {
		if op.F == history.Send && op.Type == history.OK {
			oks = append(oks, op.Time)
		}
	}
	slices.Sort(oks)
	out := make([]time.Duration, 0, len(r.kills))
	for _, k := range r.kills {
		i, _ := slices.BinarySearch(oks, k+1)
		if i == len(oks) {
			r.tb.Fatalf("no ok send after the kill at %v", time.Duration(k))
		}
		out = append(out, time.Duration(oks[i]-k))
	}
	return out
}

// syncTrialProducer is the trial's producer on the failover topic: sync, as fast as it goes.
func syncTrialProducer() ProducerConfig {
	cfg := DefaultProducerConfig(failoverTopic, 1)
	cfg.Async, cfg.Rate = false, 0
	cfg.RequestTimeout = 2 * time.Second
	return cfg
}

// A sync acks=all producer with Kafka's default retry.backoff.ms rides through leader kills: every send
// succeeds and sends resume after each kill. The gap is logged, not bounded: it depends on the machine.
func TestSyncProducerResumesAfterLeaderKill(t *testing.T) {
	r := startFailoverRig(t, syncTrialProducer())
	for range 2 {
		r.killLeader()
	}
	gaps := r.gaps()
	st := r.p.Stats()
	if st.Fail != 0 || st.Info != 0 || st.OK != st.Sent {
		t.Fatalf("sends: %+v; want every one ok", st)
	}
	t.Logf("stall of acks=all sync sends after each leader kill: %v", gaps)
}

// BenchmarkLeaderKillGap measures how long a sync acks=all producer stalls when the partition leader is
// killed (one kill per iteration; the built-in cluster's trial timing), with the workload's client settings
// and, for reference in the same run, with franz-go's own metadata refresh limit (kgo.MetadataMinAge 5s)
// that the workloads used to inherit. Run with -benchtime=5x or so: each kill takes a restart.
func BenchmarkLeaderKillGap(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []kgo.Opt
	}{
		{"retry.backoff.ms=100", nil},
		{"franz-go-metadata-min-age-5s", []kgo.Opt{kgo.MetadataMinAge(5 * time.Second)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := syncTrialProducer()
			cfg.Opts = bc.opts
			r := startFailoverRig(b, cfg)
			b.ResetTimer()
			for range b.N {
				r.killLeader()
			}
			b.StopTimer()
			gaps := r.gaps()
			var sum, worst time.Duration
			for _, g := range gaps {
				sum += g
				worst = max(worst, g)
			}
			b.ReportMetric(float64(sum.Milliseconds())/float64(len(gaps)), "gap-ms/kill")
			b.ReportMetric(float64(worst.Milliseconds()), "max-gap-ms")
		})
	}
}
