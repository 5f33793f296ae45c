package broker

// ListOffsets, versions 1-7. Timestamp -2 (earliest) gives the log start offset, -1 (latest) the high
// watermark for consumers (ReplicaID -1, both isolation levels: there are no transactions, so the last stable
// offset is the high watermark) and the log end offset for replicas. A timestamp >= 0 gives, as Kafka's
// findOffsetByTimestamp does, the first record (in offset order) whose timestamp is >= it, with that
// record's own timestamp and its batch's leader epoch: the time index and batch headers find the batch, and
// its records are decoded (decompressed if need be) to find the record. Max-timestamp (-3, KIP-734, v7) gives
// the first record carrying the log's largest timestamp. As in Kafka, an answer at or past the high watermark
// (log end for replicas) is no answer: offset -1 and timestamp -1. CurrentLeaderEpoch (v4+) fences stale and
// future epochs; LeaderEpoch (v4+) is the epoch of the returned offset. Only the partition leader answers.
// Deliberate differences: other negative timestamps (-4 earliest-local and -5 latest-tiered, v8+, for tiered
// storage, which is not advertised) get INVALID_REQUEST; a storage failure during a search gets
// KAFKA_STORAGE_ERROR, records that do not decode CORRUPT_MESSAGE (both logged).

import (
	"errors"

	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.ListOffsets, 1, 7, (*Node).handleListOffsets) }

// maxTimestampSpec is ListOffsets' MAX_TIMESTAMP: the offset of the record with the largest timestamp.
const maxTimestampSpec = -3

func (n *Node) handleListOffsets(cc *connCtx, req *kmsg.ListOffsetsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			n.listOffset(rt.Topic, rp, req.ReplicaID, &sp)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (n *Node) listOffset(topic string, rp kmsg.ListOffsetsRequestTopicPartition, replicaID int32, sp *kmsg.ListOffsetsResponseTopicPartition) {
	sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
	p := n.partition(topic, rp.Partition)
	if p == nil {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if _, ok := n.image().Partition(topic, rp.Partition); ok {
			sp.ErrorCode = kerr.NotLeaderForPartition.Code
		}
		return
	}
	v, ok := p.view()
	switch {
	case !ok || v.leader != n.cfg.NodeID:
		sp.ErrorCode = kerr.NotLeaderForPartition.Code
		return
	case rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch < v.leaderEpoch:
		sp.ErrorCode = kerr.FencedLeaderEpoch.Code
		return
	case rp.CurrentLeaderEpoch > v.leaderEpoch:
		sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
		return
	}
	upTo := v.hw
	if replicaID >= 0 {
		upTo = v.leo
	}
	switch {
	case rp.Timestamp == -2:
		sp.Offset = v.logStart
		sp.LeaderEpoch = epochAt(v.log, v.logStart)
	case rp.Timestamp == -1:
		sp.Offset = upTo
		sp.LeaderEpoch = v.leaderEpoch
	case rp.Timestamp >= 0 || rp.Timestamp == maxTimestampSpec:
		var found storage.TimestampOffset
		var ok bool
		var err error
		if rp.Timestamp == maxTimestampSpec {
			found, ok, err = v.log.MaxTimestampOffset()
		} else {
			found, ok, err = v.log.FindOffsetByTimestamp(rp.Timestamp, v.logStart)
		}
		switch {
		case err != nil:
			n.log.Error("list offsets by timestamp failed", "topic", topic, "partition", rp.Partition,
				"timestamp", rp.Timestamp, "err", err)
			sp.ErrorCode = kerr.KafkaStorageError.Code
			if errors.Is(err, storage.ErrCorruptBatch) {
				sp.ErrorCode = kerr.CorruptMessage.Code
			}
		case ok && found.Offset < upTo:
			sp.Offset, sp.Timestamp, sp.LeaderEpoch = found.Offset, found.Timestamp, found.LeaderEpoch
		}
	default:
		sp.ErrorCode = kerr.InvalidRequest.Code
	}
}

// epochAt is the leader epoch that wrote offset, from the epoch cache (-1 when unknown).
func epochAt(l *storage.Log, offset int64) int32 {
	epoch := int32(-1)
	for _, e := range l.Epochs().Entries() {
		if e.StartOffset > offset {
			break
		}
		epoch = e.Epoch
	}
	return epoch
}
