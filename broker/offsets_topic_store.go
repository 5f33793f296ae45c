package broker

// The group.OffsetStore of one __consumer_offsets partition: commits are real record batches v2 in Kafka's
// own record format (key OffsetCommitKey v1 = group, topic, partition; value OffsetCommitValue v4 = offset,
// leader epoch, metadata, commit timestamp and the topic id as tagged field 0; a null value deletes, as the
// tombstones written for the offsets of deleted topics), appended through the same leader path as an acks=all
// produce, and read back from the log up to the high watermark when a leadership begins.

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkatrial/kafkatrial/broker/group"
	"github.com/kafkatrial/kafkatrial/broker/storage"
)

// offsetsStore stores the commits of one offsets partition while this node leads it at epoch. It holds no
// state of its own: the partition (its log, leader state and high watermark) is the store.
type offsetsStore struct {
	n         *Node
	partition int32
	epoch     int32
	timeout   time.Duration
}

// Limits of the offsets store.
const (
	// maxOffsetCommitBatchBytes bounds one commit's batch, as Kafka's max.message.bytes (1 MiB + overhead)
	// bounds it on __consumer_offsets; a bigger commit gets INVALID_COMMIT_OFFSET_SIZE.
	maxOffsetCommitBatchBytes = 1<<20 + 12
	// offsetsLoadReadBytes is how much of the log one read during a load takes.
	offsetsLoadReadBytes = 1 << 20
	// Record format versions written: Kafka's key for classic groups, and its first value version with the
	// topic id (v3 when the id is unknown).
	offsetCommitKeyVersion   = 1
	offsetCommitValueVersion = 4
	// groupMetadataKeyVersion marks Kafka's group membership records, which this broker never writes.
	groupMetadataKeyVersion = 2
)

// errLeadershipEnded stops a load: the node no longer leads the partition at the load's epoch.
var errLeadershipEnded = errors.New("offsets partition leadership ended")

// Append writes the commit as one batch (so it is atomic: a torn or truncated log loses all of it or none) and
// returns it pending until the ISR has it. The batch is appended only while the ISR meets min.insync.replicas.
func (s *offsetsStore) Append(groupID string, offsets map[group.TP]group.Committed) (group.Pending, error) {
	p := s.n.partition(OffsetsTopic, s.partition)
	if p == nil {
		return nil, fmt.Errorf("committing offsets of group %s: offsets partition %d not hosted: %w", groupID, s.partition, kerr.NotCoordinator)
	}
	batch, h, err := encodeOffsetCommitBatch(groupID, offsets, nil, time.Now())
	if err != nil {
		return nil, err
	}
	return s.append(p, "committing offsets", groupID, batch, h)
}

// Delete writes one batch of tombstones (null values) for group's offsets of tps, pending until the ISR has
// it, as Append.
func (s *offsetsStore) Delete(groupID string, tps []group.TP) (group.Pending, error) {
	p := s.n.partition(OffsetsTopic, s.partition)
	if p == nil {
		return nil, fmt.Errorf("deleting offsets of group %s: offsets partition %d not hosted: %w", groupID, s.partition, kerr.NotCoordinator)
	}
	batch, h, err := encodeOffsetCommitBatch(groupID, nil, tps, time.Now())
	if err != nil {
		return nil, err
	}
	return s.append(p, "deleting offsets", groupID, batch, h)
}

// append appends batch as the partition's leader and returns it pending until the ISR has it.
func (s *offsetsStore) append(p *partition, what, groupID string, batch []byte, h storage.BatchHeader) (group.Pending, error) {
	res, err := p.appendLeader(batch, h, true)
	s.n.sendAlterPartition(p, res.propose)
	if err != nil {
		return nil, fmt.Errorf("%s of group %s to %s-%d: %w (%w)", what, groupID, OffsetsTopic, s.partition, kerr.NotCoordinator, err)
	}
	if res.code != 0 {
		return nil, fmt.Errorf("%s of group %s to %s-%d: %w", what, groupID, OffsetsTopic, s.partition, commitAppendError(res.code))
	}
	return &offsetsCommit{s: s, p: p, base: res.base, target: res.last + 1}, nil
}

// offsetsCommit is a commit appended to the leader's log, durable once the high watermark passes it.
type offsetsCommit struct {
	s      *offsetsStore
	p      *partition
	base   int64
	target int64
}

func (c *offsetsCommit) Position() int64 { return c.base }

// Wait blocks until every ISR member has the commit (acks=all), the leadership at the store's epoch ends
// (NOT_COORDINATOR: an append that landed under a newer leadership is not this coordinator's to acknowledge),
// or offsets.commit.timeout.ms passes (REQUEST_TIMED_OUT).
func (c *offsetsCommit) Wait(ctx context.Context) error {
	code := c.p.waitForHW(ctx, c.target, c.s.epoch, c.s.timeout)
	if code == 0 {
		return nil
	}
	return fmt.Errorf("waiting for the ISR to have the commit at %s-%d offset %d: %w", OffsetsTopic, c.s.partition, c.base, commitAppendError(code))
}

// commitAppendError maps a produce error to what OffsetCommit answers, as Kafka's GroupMetadataManager does.
func commitAppendError(code int16) error {
	switch code {
	case kerr.UnknownTopicOrPartition.Code, kerr.NotEnoughReplicas.Code, kerr.NotEnoughReplicasAfterAppend.Code:
		return kerr.CoordinatorNotAvailable
	case kerr.NotLeaderForPartition.Code, kerr.KafkaStorageError.Code, kerr.FencedLeaderEpoch.Code:
		return kerr.NotCoordinator
	case kerr.MessageTooLarge.Code, kerr.RecordListTooLarge.Code, kerr.InvalidFetchSize.Code:
		return kerr.InvalidCommitOffsetSize
	}
	if err := kerr.ErrorForCode(code); err != nil {
		return err
	}
	return kerr.UnknownServerError
}

// awaitCaughtUp waits until the high watermark reaches the log end this leadership started from: everything
// earlier leaders wrote that this replica holds is then committed, so loading up to the high watermark misses
// no acknowledged commit. Nothing else appends meanwhile (the partition's coordinator is not running yet).
func (s *offsetsStore) awaitCaughtUp(ctx context.Context) error {
	var target int64 = -1
	for {
		st, ok := s.n.PartitionState(OffsetsTopic, s.partition)
		if !ok || !st.IsLeader || st.LeaderEpoch != s.epoch {
			return errLeadershipEnded
		}
		if target < 0 {
			target = st.LogEndOffset
		}
		if st.HighWatermark >= target {
			return nil
		}
		if !sleepCtx(ctx, offsetsLoadPollInterval) {
			return ctx.Err()
		}
	}
}

// Load reads the partition's log from its start to the high watermark and returns the latest commit of
// every group and partition.
func (s *offsetsStore) Load() (map[string]map[group.TP]group.Committed, error) {
	p := s.n.partition(OffsetsTopic, s.partition)
	if p == nil {
		return nil, fmt.Errorf("loading %s-%d: %w", OffsetsTopic, s.partition, errLeadershipEnded)
	}
	v, ok := p.view()
	if !ok {
		return nil, fmt.Errorf("loading %s-%d: %w", OffsetsTopic, s.partition, storage.ErrClosed)
	}
	out := map[string]map[group.TP]group.Committed{}
	for off := v.logStart; off < v.hw; {
		b, err := v.log.Read(off, offsetsLoadReadBytes, v.hw)
		if err != nil {
			return nil, fmt.Errorf("loading %s-%d at offset %d: %w", OffsetsTopic, s.partition, off, err)
		}
		next := off
		err = storage.SplitBatches(b, func(batch []byte, h storage.BatchHeader) error {
			if h.NextOffset() > v.hw {
				return nil
			}
			next = h.NextOffset()
			return decodeOffsetCommitBatch(batch, h, out)
		})
		if err != nil {
			return nil, fmt.Errorf("loading %s-%d at offset %d: %w", OffsetsTopic, s.partition, off, err)
		}
		if next <= off {
			break // the rest is above the high watermark
		}
		off = next
	}
	return out, nil
}

// encodeOffsetCommitBatch builds the record batch v2 of one commit (offsets) or one deletion (tombstones for
// deleted): one record per partition, sorted, with Kafka's key and value formats, a producer id of -1 (not
// idempotent) and a correct CRC-32C.
func encodeOffsetCommitBatch(groupID string, offsets map[group.TP]group.Committed, deleted []group.TP, now time.Time) ([]byte, storage.BatchHeader, error) {
	byTP := func(a, b group.TP) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	}
	tps := slices.SortedFunc(maps.Keys(offsets), byTP)
	tps = append(tps, slices.SortedFunc(slices.Values(deleted), byTP)...)
	if len(tps) == 0 {
		return nil, storage.BatchHeader{}, fmt.Errorf("encoding a record batch of group %s: no partitions", groupID)
	}
	ms := now.UnixMilli()
	var records []byte
	for i, tp := range tps {
		key := kmsg.OffsetCommitKey{Version: offsetCommitKeyVersion, Group: groupID, Topic: tp.Topic, Partition: tp.Partition}
		r := kmsg.Record{OffsetDelta: int32(i), Key: key.AppendTo(nil)}
		if c, ok := offsets[tp]; ok && i < len(offsets) {
			value := kmsg.OffsetCommitValue{Version: offsetCommitValueVersion, Offset: c.Offset, LeaderEpoch: c.LeaderEpoch,
				Metadata: c.Metadata, CommitTimestamp: ms, TopicID: c.TopicID}
			if c.TopicID == [16]byte{} {
				value.Version = 3
			}
			r.Value = value.AppendTo(nil)
		}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // everything after the one-byte varint written for Length 0
		records = r.AppendTo(records)
		if len(records) > maxOffsetCommitBatchBytes {
			return nil, storage.BatchHeader{}, fmt.Errorf("commit of group %s exceeds %d bytes: %w", groupID, maxOffsetCommitBatchBytes, group.ErrCommitTooLarge)
		}
	}
	rb := kmsg.RecordBatch{PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(len(tps) - 1),
		FirstTimestamp: ms, MaxTimestamp: ms, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: int32(len(tps)), Records: records}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	h, err := storage.ParseBatch(b)
	if err != nil {
		return nil, storage.BatchHeader{}, fmt.Errorf("encoding the commit of group %s: %w", groupID, err)
	}
	return b, h, nil
}

// errBadOffsetsRecord is a batch of the offsets topic this broker cannot read.
var errBadOffsetsRecord = errors.New("malformed __consumer_offsets record")

// decodeOffsetCommitBatch folds one batch of the offsets topic into out (later records win; a null value
// deletes). Group membership records (key version 2) are skipped: this broker never writes them.
func decodeOffsetCommitBatch(batch []byte, h storage.BatchHeader, out map[string]map[group.TP]group.Committed) error {
	if h.IsControl() {
		return nil
	}
	if h.Attributes&0x7 != 0 {
		return fmt.Errorf("%w: compressed batch at offset %d", errBadOffsetsRecord, h.BaseOffset)
	}
	rest := batch[storage.BatchHeaderSize:]
	for i := int32(0); i < h.NumRecords; i++ {
		length, n := binary.Varint(rest)
		if n <= 0 || length < 0 || int64(len(rest)-n) < length {
			return fmt.Errorf("%w: record %d of the batch at offset %d is cut short", errBadOffsetsRecord, i, h.BaseOffset)
		}
		var r kmsg.Record
		if err := r.ReadFrom(rest[:n+int(length)]); err != nil {
			return fmt.Errorf("%w: record %d of the batch at offset %d: %w", errBadOffsetsRecord, i, h.BaseOffset, err)
		}
		rest = rest[n+int(length):]
		if len(r.Key) < 2 {
			return fmt.Errorf("%w: record %d of the batch at offset %d has no key", errBadOffsetsRecord, i, h.BaseOffset)
		}
		if v := int16(binary.BigEndian.Uint16(r.Key)); v >= groupMetadataKeyVersion {
			continue
		}
		var key kmsg.OffsetCommitKey
		if err := key.ReadFrom(r.Key); err != nil {
			return fmt.Errorf("%w: key of record %d of the batch at offset %d: %w", errBadOffsetsRecord, i, h.BaseOffset, err)
		}
		tp := group.TP{Topic: key.Topic, Partition: key.Partition}
		if r.Value == nil {
			delete(out[key.Group], tp)
			continue
		}
		var value kmsg.OffsetCommitValue
		if err := value.ReadFrom(r.Value); err != nil {
			return fmt.Errorf("%w: value of record %d of the batch at offset %d: %w", errBadOffsetsRecord, i, h.BaseOffset, err)
		}
		if value.Version < 3 {
			value.LeaderEpoch = -1
		}
		offs := out[key.Group]
		if offs == nil {
			offs = map[group.TP]group.Committed{}
			out[key.Group] = offs
		}
		offs[tp] = group.Committed{Offset: value.Offset, LeaderEpoch: value.LeaderEpoch, Metadata: value.Metadata, TopicID: value.TopicID}
	}
	return nil
}
