package broker

import (
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestBackToBackProducesAnsweredInOrder sends acks=all produces back to back on one connection to a replicated
// leader, then an acks=1 produce and a Metadata request, without reading in between: every answer comes back
// in request order, the batches sit in the log in request order, and each acks=all answer means the high
// watermark passed the batch.
func TestBackToBackProducesAnsweredInOrder(t *testing.T) {
	rc := startRepCluster(t, nil)
	rc.createTopic("pipe", nil)
	leader := rc.leader("pipe")
	repWait(t, 30*time.Second, "the leader serving the partition with its full ISR", func() error {
		if st, ok := rc.c.Node(leader).PartitionState("pipe", 0); !ok || !st.IsLeader || len(st.ISR) != 3 {
			return fmt.Errorf("leader's state %+v (hosted %v)", st, ok)
		}
		return nil
	})
	addr := rc.c.Bootstrap()[slices.Index(rc.c.IDs(), leader)]
	conn := dialRaw(t, addr)

	var reqs []kmsg.Request
	sizes := []int{3, 2, 4, 1}
	for i, n := range sizes {
		req := produceReq("pipe", idempotentBatch(-1, -1, -1, n))
		if i == len(sizes)-1 {
			req.Acks = 1
		}
		reqs = append(reqs, req)
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 9
	reqs = append(reqs, meta)
	var out []byte
	for i, req := range reqs {
		out = append(out, frame(req, int32(i+1))...)
	}
	if _, err := conn.conn.Write(out); err != nil {
		t.Fatal(err)
	}
	var next int64
	for i, req := range reqs {
		body := conn.readFrame()
		if corr := int32(binary.BigEndian.Uint32(body)); corr != int32(i+1) {
			t.Fatalf("answer %d has correlation id %d: answers out of request order", i+1, corr)
		}
		if req.Key() != kmsg.Produce.Int16() {
			continue
		}
		resp := req.ResponseKind()
		resp.SetVersion(req.GetVersion())
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatalf("decoding answer %d: %v", i+1, err)
		}
		base, code := produceResult(t, resp)
		if code != 0 || base != next {
			t.Fatalf("produce %d: offset %d code %d, want offset %d and no error", i+1, base, code, next)
		}
		if req.(*kmsg.ProduceRequest).Acks == -1 {
			if st, _ := rc.c.Node(leader).PartitionState("pipe", 0); st.HighWatermark < base+int64(sizes[i]) {
				t.Fatalf("acks=all produce %d answered with the high watermark at %d, below its end %d", i+1,
					st.HighWatermark, base+int64(sizes[i]))
			}
		}
		next += int64(sizes[i])
	}
}

// TestFollowerFetchesPartitionAddedDuringLongPoll: a follower whose fetch is parked at a leader (a very long
// replica.fetch.wait.max.ms, nothing to read) still replicates a partition it starts following meanwhile, so
// an acks=all produce to it completes instead of waiting out the parked poll.
func TestFollowerFetchesPartitionAddedDuringLongPoll(t *testing.T) {
	rc := startRepCluster(t, func(tm *Timing) {
		tm.ReplicaLagTimeMax = 20 * time.Minute
		tm.ReplicaFetchWaitMax = 10 * time.Minute
		tm.ReplicaSocketTimeout = 15 * time.Minute
	})
	// Three partitions: every node leads one, so every follower parks a poll at every leader.
	if resp, err := rc.adm.CreateTopic(testCtx(t), 3, 3, nil, "idle"); err != nil || resp.Err != nil {
		t.Fatalf("creating topic idle: %v / %v", err, resp.Err)
	}
	if resp, err := rc.adm.CreateTopic(testCtx(t), 3, 3, nil, "busy"); err != nil || resp.Err != nil {
		t.Fatalf("creating topic busy: %v / %v", err, resp.Err)
	}
	cl := rc.client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range int32(3) {
		r := &kgo.Record{Topic: "busy", Partition: p, Value: []byte("v")}
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatalf("acks=all produce to busy-%d: %v", p, err)
		}
	}
}
