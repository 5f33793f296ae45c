package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkProduceConsume1M produces then consumes 1M records of 100 B with franz-go (defaults: acks=all,
// idempotent) against this node and against franz-go's in-memory kfake in the same run, and reports both
// rates and the ratios (this node / kfake; above 1 is faster). Run with -benchtime=1x.
//
//	go test ./broker/ -run XXX -bench ProduceConsume1M -benchtime 1x
func BenchmarkProduceConsume1M(b *testing.B) {
	const records = 1_000_000
	value := make([]byte, 100)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	var ktP, ktC, kfP, kfC float64
	for range b.N {
		tn := startTestNode(b)
		tn.createTopic("bench", 1, nil)
		p, c := benchTarget(b, tn.Addr(), value, records)
		ktP, ktC = ktP+p, ktC+c
		tn.Kill()

		fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "bench"))
		if err != nil {
			b.Fatal(err)
		}
		p, c = benchTarget(b, fake.ListenAddrs()[0], value, records)
		kfP, kfC = kfP+p, kfC+c
		fake.Close()
	}
	n := float64(b.N)
	b.ReportMetric(ktP/n, "kafkatrial-produce-rec/s")
	b.ReportMetric(kfP/n, "kfake-produce-rec/s")
	b.ReportMetric(ktP/kfP, "produce-ratio")
	b.ReportMetric(ktC/n, "kafkatrial-consume-rec/s")
	b.ReportMetric(kfC/n, "kfake-consume-rec/s")
	b.ReportMetric(ktC/kfC, "consume-ratio")
	b.ReportMetric(0, "ns/op")
}

// benchTarget produces and consumes records against addr and returns both rates in records per second.
func benchTarget(b *testing.B, addr string, value []byte, records int) (produce, consume float64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pcl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("bench"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer pcl.Close()
	if err := pcl.Ping(ctx); err != nil {
		b.Fatal(err)
	}
	_ = kadm.NewClient(pcl)
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
	produce = float64(records) / time.Since(start).Seconds()

	ccl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"bench": {0: kgo.NewOffset().AtStart()}}), kgo.FetchMaxBytes(50<<20))
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
	consume = float64(records) / time.Since(start).Seconds()
	return produce, consume
}

// BenchmarkReplicated3Nodes produces then consumes 1M records of 100 B with franz-go (acks=all, idempotent) on
// a 6-partition topic against a 3-node cluster with replication factor 3, and against franz-go's kfake with
// 3 brokers in the same run, and reports both rates and the ratios (this cluster / kfake; above 1 is faster).
//
//	go test ./broker/ -run XXX -bench Replicated3Nodes -benchtime 1x
func BenchmarkReplicated3Nodes(b *testing.B) {
	const records = 1_000_000
	value := make([]byte, 100)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	var ktP, ktC, kfP, kfC float64
	for range b.N {
		c, err := StartCluster(ClusterConfig{Nodes: 3, Dir: b.TempDir(), Logger: testLogger()})
		if err != nil {
			b.Fatal(err)
		}
		adm, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...))
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if resp, err := kadm.NewClient(adm).CreateTopic(ctx, 6, 3, nil, "bench"); err != nil || resp.Err != nil {
			b.Fatalf("creating the topic: %v / %v", err, resp.Err)
		}
		cancel()
		adm.Close()
		p, cn := benchTopic(b, c.Bootstrap(), value, records)
		ktP, ktC = ktP+p, ktC+cn
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}

		fake, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(6, "bench"))
		if err != nil {
			b.Fatal(err)
		}
		p, cn = benchTopic(b, fake.ListenAddrs(), value, records)
		kfP, kfC = kfP+p, kfC+cn
		fake.Close()
	}
	n := float64(b.N)
	b.ReportMetric(ktP/n, "kafkatrial-produce-rec/s")
	b.ReportMetric(kfP/n, "kfake-produce-rec/s")
	b.ReportMetric(ktP/kfP, "produce-ratio")
	b.ReportMetric(ktC/n, "kafkatrial-consume-rec/s")
	b.ReportMetric(kfC/n, "kfake-consume-rec/s")
	b.ReportMetric(ktC/kfC, "consume-ratio")
	b.ReportMetric(0, "ns/op")
}

// benchTopic produces records over every partition of topic "bench" (franz-go's default partitioner) and
// consumes them all, returning both rates in records per second.
func benchTopic(b *testing.B, addrs []string, value []byte, records int) (produce, consume float64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pcl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("bench"), kgo.ProducerBatchMaxBytes(1<<20))
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
	produce = float64(records) / time.Since(start).Seconds()

	ccl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("bench"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(50<<20))
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
	consume = float64(records) / time.Since(start).Seconds()
	return produce, consume
}
