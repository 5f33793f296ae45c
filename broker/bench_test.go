package broker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchRecords is how many records each timed round produces and then consumes.
const benchRecords = 1_000_000

// benchWarmupRecords is the size of the untimed round each side runs once per benchmark before anything is
// timed, so neither side pays the process's cold start (heap growth, first connections) in its numbers.
const benchWarmupRecords = 100_000

// benchTarget starts one side of a comparison, ready to take records on topic "bench", and returns its seed
// addresses and a function that stops it.
type benchTarget func(b *testing.B) (addrs []string, stop func())

// benchRun produces then consumes n records against addrs and returns how long each phase took.
type benchRun func(b *testing.B, addrs []string, value []byte, n int) (produce, consume time.Duration)

// BenchmarkProduceConsume1M produces then consumes 1M records of 100 B with franz-go (defaults: acks=all,
// idempotent) against this node and against franz-go's in-memory kfake in the same run, and reports both
// rates and the ratios (this node / kfake; above 1 is faster). Run with -benchtime=1x.
//
//	go test ./broker/ -run XXX -bench ProduceConsume1M -benchtime 1x
func BenchmarkProduceConsume1M(b *testing.B) {
	ours := func(b *testing.B) ([]string, func()) {
		tn := startTestNode(b)
		tn.createTopic("bench", 1, nil)
		return []string{tn.Addr()}, tn.Kill
	}
	fake := func(b *testing.B) ([]string, func()) {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "bench"))
		if err != nil {
			b.Fatal(err)
		}
		return c.ListenAddrs(), c.Close
	}
	compareRates(b, ours, fake, benchOnePartition)
}

// BenchmarkReplicated3Nodes produces then consumes 1M records of 100 B with franz-go (acks=all, idempotent) on
// a 6-partition topic against a 3-node cluster with replication factor 3, and against franz-go's kfake with
// 3 brokers in the same run, and reports both rates and the ratios (this cluster / kfake; above 1 is faster).
//
//	go test ./broker/ -run XXX -bench Replicated3Nodes -benchtime 1x
func BenchmarkReplicated3Nodes(b *testing.B) {
	ours := func(b *testing.B) ([]string, func()) {
		c, err := StartCluster(ClusterConfig{Nodes: 3, Dir: b.TempDir(), Logger: testLogger()})
		if err != nil {
			b.Fatal(err)
		}
		adm, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...))
		if err != nil {
			b.Fatal(err)
		}
		defer adm.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if resp, err := kadm.NewClient(adm).CreateTopic(ctx, 6, 3, nil, "bench"); err != nil || resp.Err != nil {
			b.Fatalf("creating the topic: %v / %v", err, resp.Err)
		}
		// kfake's seeded topic is ready when it starts; here every node must have applied the new topic (and
		// its leaders and ISR) first, or the producer's first metadata answer may lack it and franz-go waits
		// out a metadata retry inside the timed round.
		for deadline := time.Now().Add(time.Minute); !benchTopicReady(c, 6, 3); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("the bench topic is not led and fully in sync on every node after a minute")
			}
		}
		return c.Bootstrap(), func() {
			if err := c.Close(); err != nil {
				b.Fatal(err)
			}
		}
	}
	fake := func(b *testing.B) ([]string, func()) {
		c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, "bench"))
		if err != nil {
			b.Fatal(err)
		}
		return c.ListenAddrs(), c.Close
	}
	compareRates(b, ours, fake, benchAllPartitions)
}

// benchTopicReady reports whether every node of c hosts every partition of topic "bench", knows its leader,
// and sees the leader's ISR holding all replicas.
func benchTopicReady(c *Cluster, partitions int32, replicas int) bool {
	for _, id := range c.IDs() {
		for p := range partitions {
			st, err := c.Replica(id, "bench", p)
			if err != nil || st.Leader < 0 || st.IsLeader && len(st.ISR) != replicas {
				return false
			}
		}
	}
	return true
}

// compareRates runs both sides on fresh targets and reports their produce and consume rates and the ratios
// (ours / fake; above 1 is faster). Both sides get the same treatment: one untimed warm-up round each, then
// per iteration four pairs of timed rounds, ours first in every other pair. The machine's load drifts over
// seconds (other processes share it), so each ratio is the median over pairs of the two back-to-back rounds'
// ratio, and each rate is the side's records per round over its median round time: one round stalled by
// something outside the benchmark does not decide the result.
func compareRates(b *testing.B, ours, fake benchTarget, run benchRun) {
	value := make([]byte, 100)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	round := func(target benchTarget, n int) (time.Duration, time.Duration) {
		addrs, stop := target(b)
		defer stop()
		return run(b, addrs, value, n)
	}
	round(ours, benchWarmupRecords)
	round(fake, benchWarmupRecords)
	var ourP, ourC, fakeP, fakeC []time.Duration
	for i := range 4 * b.N {
		if i%2 == 0 {
			p, c := round(ours, benchRecords)
			ourP, ourC = append(ourP, p), append(ourC, c)
		}
		p, c := round(fake, benchRecords)
		fakeP, fakeC = append(fakeP, p), append(fakeC, c)
		if i%2 == 1 {
			p, c := round(ours, benchRecords)
			ourP, ourC = append(ourP, p), append(ourC, c)
		}
	}
	rate := func(ds []time.Duration) float64 { return benchRecords / median(ds).Seconds() }
	// A pair's ratio of rates is the fake's round time over ours.
	ratio := func(our, fake []time.Duration) float64 {
		rs := make([]time.Duration, len(our))
		for i := range our {
			rs[i] = time.Duration(float64(time.Second) * fake[i].Seconds() / our[i].Seconds())
		}
		return median(rs).Seconds()
	}
	b.ReportMetric(rate(ourP), "kafkatrial-produce-rec/s")
	b.ReportMetric(rate(fakeP), "kfake-produce-rec/s")
	b.ReportMetric(ratio(ourP, fakeP), "produce-ratio")
	b.ReportMetric(rate(ourC), "kafkatrial-consume-rec/s")
	b.ReportMetric(rate(fakeC), "kfake-consume-rec/s")
	b.ReportMetric(ratio(ourC, fakeC), "consume-ratio")
	b.ReportMetric(0, "ns/op")
}

// median is the middle of ds (the mean of the middle two for an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// benchOnePartition produces records to partition 0 of topic "bench" and consumes them from the start.
func benchOnePartition(b *testing.B, addrs []string, value []byte, records int) (produce, consume time.Duration) {
	return benchProduceConsume(b, value, records,
		[]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("bench"),
			kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1 << 20)},
		[]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			"bench": {0: kgo.NewOffset().AtStart()}}), kgo.FetchMaxBytes(50 << 20)})
}

// benchAllPartitions produces records over every partition of topic "bench" (franz-go's default partitioner)
// and consumes them all from the start.
func benchAllPartitions(b *testing.B, addrs []string, value []byte, records int) (produce, consume time.Duration) {
	return benchProduceConsume(b, value, records,
		[]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("bench"), kgo.ProducerBatchMaxBytes(1 << 20)},
		[]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("bench"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(50 << 20)})
}

// benchProduceConsume produces records with a client made of produceOpts, then consumes them all with one
// made of consumeOpts, and returns how long each phase took.
func benchProduceConsume(b *testing.B, value []byte, records int, produceOpts, consumeOpts []kgo.Opt) (produce, consume time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pcl, err := kgo.NewClient(produceOpts...)
	if err != nil {
		b.Fatal(err)
	}
	defer pcl.Close()
	if err := pcl.Ping(ctx); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	fail := make(chan error, 1)
	for range records {
		pcl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case fail <- err:
				default:
				}
			}
		})
	}
	if err := pcl.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case err := <-fail:
		b.Fatal(err)
	default:
	}
	produce = time.Since(start)

	ccl, err := kgo.NewClient(consumeOpts...)
	if err != nil {
		b.Fatal(err)
	}
	defer ccl.Close()
	start = time.Now()
	got := 0
	for got < records {
		fs := ccl.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatalf("consumed %d of %d", got, records)
		}
		got += fs.NumRecords()
	}
	return produce, time.Since(start)
}
