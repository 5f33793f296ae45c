package broker

// OffsetForLeaderEpoch, versions 0-4. For each partition the leader answers the end offset of the requested
// epoch from its leader-epoch cache (Kafka's LeaderEpochFileCache.endOffsetFor: the latest epoch ends at the
// log end; an older one where the next epoch starts; an unknown one with -1/-1). CurrentLeaderEpoch (v2+)
// fences stale and future epochs. Consumers use it to detect log truncation after a leader change (KIP-320),
// followers (ReplicaID >= 0, v3+) to find where to truncate.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.OffsetForLeaderEpoch, 0, 4, (*Node).handleOffsetForLeaderEpoch) }

func (n *Node) handleOffsetForLeaderEpoch(cc *connCtx, req *kmsg.OffsetForLeaderEpochRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition, sp.LeaderEpoch, sp.EndOffset = rp.Partition, -1, -1
			p := n.partition(rt.Topic, rp.Partition)
			var v partitionView
			ok := p != nil
			if ok {
				v, ok = p.view()
			}
			switch {
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if _, known := n.image().Partition(rt.Topic, rp.Partition); known {
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
				}
			case !ok || v.leader != n.cfg.NodeID:
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			case req.Version >= 2 && rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch < v.leaderEpoch:
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case req.Version >= 2 && rp.CurrentLeaderEpoch > v.leaderEpoch:
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				sp.LeaderEpoch, sp.EndOffset = v.log.Epochs().EndOffsetFor(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
