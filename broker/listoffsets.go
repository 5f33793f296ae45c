package broker

// ListOffsets, versions 1-6. Timestamp -2 (earliest) gives the log start offset, -1 (latest) the high
// watermark for consumers (ReplicaID -1, both isolation levels: there are no transactions, so the last stable
// offset is the high watermark) and the log end offset for replicas. A timestamp >= 0 gives the base offset
// of the first batch below the high watermark whose max timestamp is >= it, or offset -1 when there is none.
// CurrentLeaderEpoch (v4+) fences stale and future epochs; LeaderEpoch (v4+) is the epoch of the returned
// offset. Only the partition leader answers.
// Deliberate differences: a timestamp search answers at batch granularity (records are never decoded: the
// returned offset is the batch's base offset, not the first record with a timestamp >= the target; the
// returned timestamp is the batch's max timestamp); max-timestamp (-3, v7) is not served.

import (
	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.ListOffsets, 1, 6, (*Node).handleListOffsets) }

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
	case rp.Timestamp >= 0:
		err := v.log.ScanBatches(v.logStart, func(h storage.BatchHeader) bool {
			if h.BaseOffset >= upTo {
				return false
			}
			if h.MaxTimestamp >= rp.Timestamp {
				sp.Offset, sp.Timestamp, sp.LeaderEpoch = h.BaseOffset, h.MaxTimestamp, h.PartitionLeaderEpoch
				return false
			}
			return true
		})
		if err != nil {
			n.log.Warn("list offsets by timestamp failed", "topic", topic, "partition", rp.Partition, "err", err)
			sp.ErrorCode = kerr.NotLeaderForPartition.Code
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
