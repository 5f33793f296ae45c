package workloads

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/history"
)

// benchRecords is the number of records each measured round produces in each mode.
const benchRecords = 50000

// BenchmarkProduceRecordedVsRaw measures, against the same broker in the same run, raw franz-go producing
// (the same client options, values and in-flight window, no history) and the recorded Producer (history file,
// wire tap, invoke and completion per send), alternating rounds so drift hits both alike. It reports both rates
// and the overhead in percent: (raw rate / recorded rate - 1) * 100, in aggregate and as the median of the
// per-round ratios.
func BenchmarkProduceRecordedVsRaw(b *testing.B) {
	seeds := startClusterB(b, 3)
	cfg := DefaultProducerConfig(testTopic, 3)
	cfg.Rate, cfg.Count = 0, benchRecords
	f, err := os.Create(filepath.Join(b.TempDir(), "history.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := history.NewWriter(f, time.Now())
	defer w.Close()
	rec := NewRecorder(w)

	var raw, recorded time.Duration
	ratios := make([]float64, 0, b.N)
	b.ResetTimer()
	for range b.N {
		r := produceRaw(b, seeds, cfg)
		d := produceRecorded(b, seeds, rec, cfg)
		raw += r
		recorded += d
		ratios = append(ratios, float64(d)/float64(r))
		if os.Getenv("BENCH_VERBOSE") != "" {
			b.Logf("raw %v recorded %v", r, d)
		}
	}
	b.StopTimer()
	rawRate := float64(b.N*benchRecords) / raw.Seconds()
	recRate := float64(b.N*benchRecords) / recorded.Seconds()
	slices.Sort(ratios)
	b.ReportMetric(rawRate, "raw-rec/s")
	b.ReportMetric(recRate, "recorded-rec/s")
	b.ReportMetric((rawRate/recRate-1)*100, "overhead-%")
	// The machine is shared: a neighbour's burst lands in one round of one mode. The median of the per-round
	// ratios (each pair measured back to back) is the figure such bursts do not move.
	b.ReportMetric((ratios[len(ratios)/2]-1)*100, "median-overhead-%")
	if err := rec.Err(); err != nil {
		b.Fatal(err)
	}
}

// produceRaw produces benchRecords values with a bare kgo client and the producer's options.
func produceRaw(b *testing.B, seeds []string, cfg ProducerConfig) time.Duration {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DisableClientMetrics()}, cfg.kgoOpts()...)...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Ping(context.Background()); err != nil {
		b.Fatal(err)
	}
	slots := make(chan struct{}, cfg.MaxPending)
	var failed error
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed = err
		}
		<-slots
	}
	start := time.Now()
	for seq := range int64(benchRecords) {
		slots <- struct{}{}
		v := history.Value(0, seq)
		cl.Produce(context.Background(), &kgo.Record{Partition: int32(seq % 3), Value: []byte(v)}, promise)
	}
	if err := cl.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	if failed != nil {
		b.Fatal(failed)
	}
	return d
}

// produceRecorded produces benchRecords values with a recorded Producer.
func produceRecorded(b *testing.B, seeds []string, rec *Recorder, cfg ProducerConfig) time.Duration {
	p, err := NewProducer(rec, seeds, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := p.cl.Ping(context.Background()); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	if err := p.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	if st := p.Stats(); st.OK != benchRecords {
		b.Fatalf("recorded producer: %+v", st)
	}
	return d
}
