package broker

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceAll sends values to topic/partition 0 and fails on any error.
func produceAll(t *testing.T, cl *kgo.Client, topic string, n int, prefix string) {
	t.Helper()
	ctx := testCtx(t)
	errs := make(chan error, 1)
	for i := range n {
		r := &kgo.Record{Topic: topic, Partition: 0, Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatalf("flush: %v", err)
	}
	select {
	case err := <-errs:
		t.Fatalf("produce: %v", err)
	default:
	}
}

// consumeAll reads n records of partition 0 from the start and returns their values in order.
func consumeAll(t *testing.T, tn *testNode, topic string, n int) []string {
	t.Helper()
	cl := tn.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	ctx := testCtx(t)
	var out []string
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records before timeout", len(out), n)
		}
		fs.EachError(func(tp string, p int32, err error) {
			if err != context.DeadlineExceeded {
				t.Logf("fetch error %s/%d: %v", tp, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

func TestFranzGoProduceConsume(t *testing.T) {
	tn := startTestNode(t)
	const n = 100_000
	cases := []struct {
		name string
		opts []kgo.Opt
	}{
		{"acks-all-idempotent", []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}},
		{"acks-1", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}},
		{"acks-0", []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			topic := "t-" + c.name
			tn.createTopic(topic, 1, nil)
			cl := tn.client(append([]kgo.Opt{kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner())}, c.opts...)...)
			produceAll(t, cl, topic, n, c.name)
			got := consumeAll(t, tn, topic, n)
			if len(got) != n {
				t.Fatalf("read %d records, want %d", len(got), n)
			}
			for i, v := range got {
				if want := fmt.Sprintf("%s-%d", c.name, i); v != want {
					t.Fatalf("record %d = %q, want %q", i, v, want)
				}
			}
		})
	}
}
