package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func fetchReq(topic string, offset int64, wait time.Duration, minBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = 12, -1, int32(wait.Milliseconds()), minBytes, 1<<20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset, rp.PartitionMaxBytes = offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func TestFetchLongPollIsWokenByAppend(t *testing.T) {
	tn := startTestNode(t)
	tn.createTopic("poll", 1, nil)
	// Nothing to read and a short wait: an empty answer, no error.
	rc := dialRaw(t, tn.Addr())
	resp := rc.roundTrip(fetchReq("poll", 0, 100*time.Millisecond, 1)).(*kmsg.FetchResponse)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
		t.Fatalf("empty fetch: code %d, %d bytes, hw %d", p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
	}
	// A long poll of 60 s must be answered by the append, long before its wait ends.
	done := make(chan *kmsg.FetchResponse, 1)
	go func() {
		rc := dialRaw(t, tn.Addr())
		done <- rc.roundTrip(fetchReq("poll", 0, 60*time.Second, 1)).(*kmsg.FetchResponse)
	}()
	time.Sleep(200 * time.Millisecond) // let the fetch start waiting; correctness does not depend on it
	if err := tn.producer("poll").ProduceSync(testCtx(t), kgo.StringRecord("wake")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-done:
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.HighWatermark != 1 || !strings.Contains(string(p.RecordBatches), "wake") {
			t.Fatalf("woken fetch: code %d hw %d, %d bytes", p.ErrorCode, p.HighWatermark, len(p.RecordBatches))
		}
	case <-time.After(45 * time.Second):
		t.Fatal("long poll not woken by the append")
	}
	// Out of range offsets are refused.
	resp = rc.roundTrip(fetchReq("poll", 5, 0, 0)).(*kmsg.FetchResponse)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 1 {
		t.Fatalf("fetch past the log end: code %d, want OFFSET_OUT_OF_RANGE (1)", code)
	}
}
