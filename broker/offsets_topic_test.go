package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkatrial/kafkatrial/broker/controller"
	"github.com/kafkatrial/kafkatrial/broker/group"
	"github.com/kafkatrial/kafkatrial/broker/storage"
)

// TestOffsetsRecordFormat: a commit is one valid record batch v2 whose records carry Kafka's
// OffsetCommitKey v1 and OffsetCommitValue v3 (v4 with a topic id), and decoding folds batches in order (later commits win, a null
// value deletes, group membership records are skipped, compressed batches are refused).
func TestOffsetsRecordFormat(t *testing.T) {
	at := time.UnixMilli(1700000000123)
	first := map[group.TP]group.Committed{
		{Topic: "b", Partition: 1}: {Offset: 7, LeaderEpoch: 3, Metadata: "m"},
		{Topic: "a", Partition: 0}: {Offset: 5, LeaderEpoch: -1},
	}
	batch, h, err := encodeOffsetCommitBatch("g", first, nil, at)
	if err != nil {
		t.Fatal(err)
	}
	if h.NumRecords != 2 || h.ProducerID != -1 || h.Size() != len(batch) {
		t.Fatalf("header %+v for %d bytes", h, len(batch))
	}
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(batch); err != nil || rb.Magic != 2 {
		t.Fatalf("kmsg reads the batch: %v, magic %d", err, rb.Magic)
	}
	var r kmsg.Record
	if err := r.ReadFrom(rb.Records); err != nil {
		t.Fatal(err)
	}
	var key kmsg.OffsetCommitKey
	var value kmsg.OffsetCommitValue
	if err := key.ReadFrom(r.Key); err != nil || key != (kmsg.OffsetCommitKey{Version: 1, Group: "g", Topic: "a", Partition: 0}) {
		t.Fatalf("first key %+v (%v)", key, err)
	}
	if err := value.ReadFrom(r.Value); err != nil || value.Version != 3 || value.Offset != 5 || value.LeaderEpoch != -1 ||
		value.CommitTimestamp != at.UnixMilli() {
		t.Fatalf("first value %+v (%v)", value, err)
	}

	out := map[string]map[group.TP]group.Committed{}
	if err := decodeOffsetCommitBatch(batch, h, out); err != nil {
		t.Fatal(err)
	}
	id := [16]byte{0xab, 1}
	second, h2, err := encodeOffsetCommitBatch("g", map[group.TP]group.Committed{{Topic: "a", Partition: 0}: {Offset: 9, LeaderEpoch: 4, TopicID: id}}, nil, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeOffsetCommitBatch(second, h2, out); err != nil {
		t.Fatal(err)
	}
	// A tombstone for b-1 and a group metadata record (key version 2), as Kafka would write them.
	tomb := kmsg.OffsetCommitKey{Version: 1, Group: "g", Topic: "b", Partition: 1}
	meta := kmsg.GroupMetadataKey{Version: 2, Group: "g"}
	third := rawBatch(t, kmsg.Record{Key: tomb.AppendTo(nil)}, kmsg.Record{OffsetDelta: 1, Key: meta.AppendTo(nil), Value: []byte{0, 3}})
	h3, err := storage.ParseBatch(third)
	if err != nil {
		t.Fatal(err)
	}
	if err := decodeOffsetCommitBatch(third, h3, out); err != nil {
		t.Fatal(err)
	}
	want := map[group.TP]group.Committed{{Topic: "a", Partition: 0}: {Offset: 9, LeaderEpoch: 4, TopicID: id}}
	if !maps.Equal(out["g"], want) || len(out) != 1 {
		t.Fatalf("decoded %v, want g: %v", out, want)
	}
	// A commit with a topic id is OffsetCommitValue v4 with the id in tagged field 0 (Kafka's format).
	if err := rb.ReadFrom(second); err != nil {
		t.Fatal(err)
	}
	if err := r.ReadFrom(rb.Records); err != nil {
		t.Fatal(err)
	}
	if err := value.ReadFrom(r.Value); err != nil || value.Version != 4 || value.TopicID != id || value.Offset != 9 {
		t.Fatalf("value with a topic id %+v (%v)", value, err)
	}
	// The tombstones written for a deleted topic's offsets: null values, one per partition.
	dels, h5, err := encodeOffsetCommitBatch("g", nil, []group.TP{{Topic: "a", Partition: 0}, {Topic: "a", Partition: 1}}, at)
	if err != nil || h5.NumRecords != 2 {
		t.Fatalf("tombstone batch: %v, header %+v", err, h5)
	}
	if err := decodeOffsetCommitBatch(dels, h5, out); err != nil {
		t.Fatal(err)
	}
	if len(out["g"]) != 0 {
		t.Fatalf("after the tombstones g has %v", out["g"])
	}
	if _, _, err := encodeOffsetCommitBatch("g", nil, nil, at); err == nil {
		t.Fatal("an empty batch was encoded")
	}

	compressed := append([]byte(nil), batch...)
	compressed[22] |= 1 // attributes low byte: gzip
	h4 := h
	h4.Attributes |= 1
	if err := decodeOffsetCommitBatch(compressed, h4, out); !errors.Is(err, errBadOffsetsRecord) {
		t.Fatalf("a compressed batch: %v, want errBadOffsetsRecord", err)
	}
}

// rawBatch frames records (Length filled in) as an uncompressed record batch v2 with a correct CRC.
func rawBatch(t *testing.T, records ...kmsg.Record) []byte {
	t.Helper()
	var body []byte
	for _, r := range records {
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		body = r.AppendTo(body)
	}
	rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(records) - 1),
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(records)), Records: body}
	b := rb.AppendTo(nil)
	resignBatch(b)
	return b
}

// FuzzDecodeOffsetCommitBatch: whatever a log holds, decoding a batch that passes the CRC check never panics.
func FuzzDecodeOffsetCommitBatch(f *testing.F) {
	seed, _, err := encodeOffsetCommitBatch("g", map[group.TP]group.Committed{{Topic: "t", Partition: 2}: {Offset: 1, Metadata: "x"}}, nil, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= storage.BatchHeaderSize {
			resignBatch(b)
		}
		h, err := storage.ParseBatch(b)
		if err != nil || h.Size() != len(b) {
			return
		}
		_ = decodeOffsetCommitBatch(b, h, map[string]map[group.TP]group.Committed{})
	})
}

// TestOffsetsCommitWaitsForISR: a commit appended to the offsets partition is acknowledged only once every
// ISR member has it (acks=all), and only then is it served or loaded: with a follower paused (kept in the ISR
// and unfenced by long timeouts), an OffsetCommit is not answered and OffsetFetch still serves the previous
// commit; a commit appended directly waits until REQUEST_TIMED_OUT and a load does not see it; once the
// follower resumes, the same commit completes and loads.
func TestOffsetsCommitWaitsForISR(t *testing.T) {
	ctl := controller.TrialTiming()
	ctl.SessionTimeout = time.Minute
	c := startClusterWith(t, ClusterConfig{Nodes: 3, Timing: Timing{ReplicaLagTimeMax: time.Minute, Controller: ctl}})
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.RetryTimeout(groupWait))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// A first commit creates the offsets topic and proves the partition's coordinator works.
	const groupID = "g-isr"
	adm := kadm.NewClient(cl)
	if resp, err := adm.CreateTopic(ctx, 1, 3, nil, "t"); err != nil || resp.Err != nil {
		t.Fatalf("CreateTopic: %v / %v", err, resp.Err)
	}
	waitTopicEverywhere(t, c, "t")
	offs := kadm.Offsets{}
	offs.AddOffset("t", 0, 1, -1)
	if resp, err := adm.CommitOffsets(ctx, groupID, offs); err != nil || resp.Error() != nil {
		t.Fatalf("CommitOffsets: %v %v", err, resp.Error())
	}
	part := offsetsPartitionFor(groupID, DefaultOffsetsTopicPartitions)
	mp := c.Image().Topics[OffsetsTopic].Partitions[part]
	leader := c.Node(mp.Leader)
	var follower int32 = -1
	for _, r := range mp.Replicas {
		if r != mp.Leader {
			follower = r
		}
	}
	st, ok := leader.PartitionState(OffsetsTopic, part)
	if !ok || !st.IsLeader || len(st.ISR) != 3 {
		t.Fatalf("leader %d of %s-%d: %+v", mp.Leader, OffsetsTopic, part, st)
	}
	store := &offsetsStore{n: leader, partition: part, epoch: st.LeaderEpoch, timeout: time.Minute}
	loadedAt := func() int64 {
		t.Helper()
		got, err := store.Load()
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return got[groupID][group.TP{Topic: "t", Partition: 0}].Offset
	}
	if got := loadedAt(); got != 1 {
		t.Fatalf("loaded offset %d, want the first commit's 1", got)
	}

	if err := c.Pause(follower); err != nil {
		t.Fatal(err)
	}
	// Through the coordinator: a commit the ISR does not have is neither answered nor visible to OffsetFetch.
	offs.AddOffset("t", 0, 3, -1)
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = adm.CommitOffsets(short, groupID, offs)
	cancelShort()
	if err == nil {
		t.Fatal("CommitOffsets answered while an ISR member is paused")
	}
	fetched, err := adm.FetchOffsets(ctx, groupID)
	if err != nil || fetched.Error() != nil {
		t.Fatalf("FetchOffsets: %v %v", err, fetched.Error())
	}
	if o, _ := fetched.Lookup("t", 0); o.At != 1 {
		t.Fatalf("OffsetFetch serves %d while the commit of 3 is not replicated, want 1", o.At)
	}
	pending, err := store.Append(groupID, map[group.TP]group.Committed{{Topic: "t", Partition: 0}: {Offset: 2, LeaderEpoch: -1}})
	if err != nil {
		t.Fatalf("Append with a paused follower: %v", err)
	}
	short, cancelShort = context.WithTimeout(ctx, 300*time.Millisecond)
	err = pending.Wait(short)
	cancelShort()
	if !errors.Is(err, kerr.RequestTimedOut) {
		t.Fatalf("Wait with a paused ISR member: %v, want REQUEST_TIMED_OUT", err)
	}
	if got := loadedAt(); got != 1 {
		t.Fatalf("loaded offset %d while the commit is not replicated, want 1", got)
	}
	if err := c.Resume(follower); err != nil {
		t.Fatal(err)
	}
	if err := pending.Wait(ctx); err != nil {
		t.Fatalf("Wait after the follower resumed: %v", err)
	}
	if got := loadedAt(); got != 2 {
		t.Fatalf("loaded offset %d after the commit replicated, want 2", got)
	}
}

// resignBatch sets a batch's length and CRC-32C after its bytes changed.
func resignBatch(b []byte) {
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
}

// waitTopicEverywhere waits until every running node's image has topic: a commit to a topic the coordinator
// does not know yet gets UNKNOWN_TOPIC_OR_PARTITION, as in Kafka.
func waitTopicEverywhere(t *testing.T, c *Cluster, topic string) {
	t.Helper()
	repWait(t, groupWait, "every node knows topic "+topic, func() error {
		for _, id := range c.IDs() {
			if n := c.Node(id); n != nil && n.image().Topics[topic] == nil {
				return fmt.Errorf("node %d does not", id)
			}
		}
		return nil
	})
}
