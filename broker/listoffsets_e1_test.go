package broker

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// listOffsetAt asks partition 0's leader for the offset at ts (a timestamp, or -1/-2/-3) as a consumer does,
// with the highest version both sides speak, and returns the partition's answer and the version used.
func listOffsetAt(t *testing.T, cl *kgo.Client, topic string, ts int64) (kmsg.ListOffsetsResponseTopicPartition, int16) {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.CurrentLeaderEpoch = 0, ts, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatalf("ListOffsets %s at %d: %v", topic, ts, err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("ListOffsets %s at %d: answer of %d topics", topic, ts, len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0], resp.Version
}

// batchCount is the number of batches in the partition's log on the node.
func batchCount(t *testing.T, n *Node, topic string) int {
	t.Helper()
	v, ok := n.partition(topic, 0).view()
	if !ok {
		t.Fatalf("no partition %s-0 on node %d", topic, n.cfg.NodeID)
	}
	count := 0
	if err := v.log.ScanBatches(0, func(storage.BatchHeader) bool { count++; return true }); err != nil {
		t.Fatal(err)
	}
	return count
}

// produceAt produces one record per timestamp to partition 0 and waits for them all: with a long linger they
// travel as one batch.
func produceAt(t *testing.T, cl *kgo.Client, topic string, stamps []time.Time) {
	t.Helper()
	errs := make(chan error, len(stamps))
	for i, ts := range stamps {
		cl.Produce(testCtx(t), &kgo.Record{Topic: topic, Partition: 0, Timestamp: ts, Value: fmt.Appendf(nil, "v%d", i)},
			func(_ *kgo.Record, err error) { errs <- err })
	}
	for range stamps {
		if err := <-errs; err != nil {
			t.Fatalf("producing to %s: %v", topic, err)
		}
	}
}

// offsetCase is one ListOffsets question and Kafka's answer.
type offsetCase struct {
	name       string
	ts         int64
	wantOffset int64
	wantTS     int64
}

func checkOffsets(t *testing.T, cl *kgo.Client, topic string, wantEpoch int32, cases []offsetCase) {
	t.Helper()
	for _, c := range cases {
		sp, version := listOffsetAt(t, cl, topic, c.ts)
		if version < 7 {
			t.Fatalf("ListOffsets negotiated v%d; v7 (max-timestamp) must be served", version)
		}
		if sp.ErrorCode != 0 || sp.Offset != c.wantOffset || sp.Timestamp != c.wantTS {
			t.Errorf("%s: %s (timestamp %d) -> offset %d timestamp %d error %d; want offset %d timestamp %d",
				topic, c.name, c.ts, sp.Offset, sp.Timestamp, sp.ErrorCode, c.wantOffset, c.wantTS)
		}
		if c.wantOffset >= 0 && c.ts != -2 && sp.LeaderEpoch != wantEpoch {
			t.Errorf("%s: %s: leader epoch %d, want %d", topic, c.name, sp.LeaderEpoch, wantEpoch)
		}
	}
}

// Kafka answers a timestamp search with the first record (in offset order) whose timestamp is at or after
// the target, and that record's timestamp, even inside one batch, compressed or not (acceptance report item
// 3: the batch's base offset was answered, with the batch's max timestamp).
func TestListOffsetsByTimestampFindsTheRecordInsideTheBatch(t *testing.T) {
	tn := startTestNode(t)
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
	}{
		{"none", kgo.NoCompression()}, {"gzip", kgo.GzipCompression()}, {"snappy", kgo.SnappyCompression()},
		{"lz4", kgo.Lz4Compression()}, {"zstd", kgo.ZstdCompression()},
	}
	t0 := time.UnixMilli(time.Now().UnixMilli() - 3_600_000)
	ms := func(d int64) int64 { return t0.UnixMilli() + d }
	written := map[string]int32{} // the leader epoch each topic's records were written in
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			topic := "ts-" + c.name
			tn.createTopic(topic, 1, nil)
			cl := tn.client(kgo.ProducerBatchCompression(c.codec), kgo.ProducerLinger(300*time.Millisecond),
				kgo.RecordPartitioner(kgo.ManualPartitioner()))
			// Offsets 0-4 at t0, +100, ..., +400; offset 5 back at +50 (a late record).
			var stamps []time.Time
			for _, d := range []int64{0, 100, 200, 300, 400, 50} {
				stamps = append(stamps, time.UnixMilli(ms(d)))
			}
			produceAt(t, cl, topic, stamps)
			if n := batchCount(t, tn.Node, topic); n != 1 {
				t.Fatalf("the records went out as %d batches; the test needs them in one", n)
			}
			latest, _ := listOffsetAt(t, cl, topic, -1)
			epoch := latest.LeaderEpoch
			written[topic] = epoch
			checkOffsets(t, cl, topic, epoch, []offsetCase{
				{"long before", ms(-5000), 0, ms(0)},
				{"the first record's time", ms(0), 0, ms(0)},
				{"just after it", ms(1), 1, ms(100)},
				{"between records", ms(150), 2, ms(200)},
				{"between later records", ms(250), 3, ms(300)},
				{"before the late record's time, which comes later in offset order", ms(40), 1, ms(100)},
				{"the last record's time", ms(400), 4, ms(400)},
				{"after every record", ms(401), -1, -1},
				{"max-timestamp", -3, 4, ms(400)},
				{"earliest", -2, 0, -1},
				{"latest", -1, 6, -1},
			})
			adm := kadm.NewClient(cl)
			listed, err := adm.ListOffsetsAfterMilli(testCtx(t), ms(150), topic)
			if err != nil {
				t.Fatal(err)
			}
			if lo, _ := listed.Lookup(topic, 0); lo.Err != nil || lo.Offset != 2 || lo.Timestamp != ms(200) {
				t.Fatalf("kadm ListOffsetsAfterMilli(t0+150) = offset %d timestamp %d err %v; want offset 2 at t0+200",
					lo.Offset, lo.Timestamp, lo.Err)
			}
			maxed, err := adm.ListMaxTimestampOffsets(testCtx(t), topic)
			if err != nil {
				t.Fatal(err)
			}
			if lo, _ := maxed.Lookup(topic, 0); lo.Err != nil || lo.Offset != 4 || lo.Timestamp != ms(400) {
				t.Fatalf("kadm ListMaxTimestampOffsets = offset %d timestamp %d err %v; want offset 4 at t0+400",
					lo.Offset, lo.Timestamp, lo.Err)
			}

			// A second batch: a search past the first batch's records lands on the second's first record.
			produceAt(t, cl, topic, []time.Time{time.UnixMilli(ms(1000)), time.UnixMilli(ms(900)), time.UnixMilli(ms(1100))})
			checkOffsets(t, cl, topic, epoch, []offsetCase{
				{"past the first batch", ms(401), 6, ms(1000)},
				{"inside the second batch", ms(1001), 8, ms(1100)},
				{"max-timestamp moved", -3, 8, ms(1100)},
				{"still inside the first batch", ms(150), 2, ms(200)},
			})
		})
	}

	// After a restart the time index is rebuilt from the log: the same answers, with the epoch the records
	// were written in (their batches'), not the new leader epoch.
	tn.Kill()
	tn.start()
	cl := tn.client()
	repWait(t, 30*time.Second, "the restarted node leading ts-zstd", func() error {
		if sp, _ := listOffsetAt(t, cl, "ts-zstd", -1); sp.ErrorCode != 0 {
			return errors.New("not leading yet")
		}
		return nil
	})
	if latest, _ := listOffsetAt(t, cl, "ts-zstd", -1); latest.LeaderEpoch == written["ts-zstd"] {
		t.Fatalf("the restart did not move the leader epoch (%d): the epoch check below would prove nothing", latest.LeaderEpoch)
	}
	checkOffsets(t, cl, "ts-zstd", written["ts-zstd"], []offsetCase{
		{"between records after restart", ms(150), 2, ms(200)},
		{"second batch after restart", ms(1001), 8, ms(1100)},
		{"max-timestamp after restart", -3, 8, ms(1100)},
	})

	if _, err := exec.LookPath("kcat"); err == nil {
		// librdkafka's offsets-for-times sees the same answer.
		out := kcat(t, "", "-b", tn.Addr(), "-Q", "-t", fmt.Sprintf("ts-none:0:%d", ms(150)))
		if !strings.Contains(out, "offset 2") {
			t.Fatalf("kcat -Q at t0+150 = %q, want offset 2", out)
		}
	}
}

// As in Kafka, a record above the high watermark is not an answer to a consumer's search: the record with
// the searched (or the max) timestamp sits on the leader but not yet on a follower still in the ISR.
func TestListOffsetsByTimestampStopsAtTheHighWatermark(t *testing.T) {
	rc := startRepCluster(t, func(tm *Timing) { tm.ReplicaLagTimeMax = time.Minute })
	rc.createTopic("hwts", nil)
	l := rc.waitLeader("hwts", -1)
	one := rc.client(kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	produceAt(t, one, "hwts", []time.Time{t0})
	repWait(t, 30*time.Second, "high watermark 1", func() error {
		if sp, _ := listOffsetAt(t, one, "hwts", -1); sp.Offset != 1 {
			return fmt.Errorf("high watermark %d", sp.Offset)
		}
		return nil
	})

	before, _ := listOffsetAt(t, one, "hwts", -1)
	rc.net.cutOff(l, rc.others(l)[0])
	produceAt(t, one, "hwts", []time.Time{t0.Add(time.Second)})
	if st, _ := rc.c.Node(l).PartitionState("hwts", 0); st.LogEndOffset != 2 {
		t.Fatalf("leader log end %d, want 2", st.LogEndOffset)
	}
	later := t0.Add(500 * time.Millisecond).UnixMilli()
	checkOffsets(t, one, "hwts", before.LeaderEpoch, []offsetCase{
		{"record above the high watermark", later, -1, -1},
		{"max-timestamp above the high watermark", -3, -1, -1},
		{"latest is the high watermark", -1, 1, -1},
	})

	rc.net.heal()
	repWait(t, 60*time.Second, "high watermark 2", func() error {
		if sp, _ := listOffsetAt(t, one, "hwts", -1); sp.Offset != 2 {
			return fmt.Errorf("high watermark %d", sp.Offset)
		}
		return nil
	})
	sp, _ := listOffsetAt(t, one, "hwts", later)
	if sp.Offset != 1 || sp.Timestamp != t0.Add(time.Second).UnixMilli() {
		t.Fatalf("after the follower caught up: offset %d timestamp %d, want offset 1 at t0+1s", sp.Offset, sp.Timestamp)
	}
}
