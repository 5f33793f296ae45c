package broker

// OffsetCommit, versions 0-9, served by the group coordinator (broker/group) of the group's __consumer_offsets
// partition, which appends the commit to that partition and answers once the high watermark passed it
// (acks=all; see offsets_topic_store.go for the errors a failed append answers). Partitions missing from the metadata image get
// UNKNOWN_TOPIC_OR_PARTITION, as in Kafka. Not served: v10+ (topic ids instead of names). Deliberate
// difference: v1's per-partition timestamp and v2-v4's retention time are ignored (offsets never expire).

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkatrial/kafkatrial/broker/group"
)

func init() { registerHandler(kmsg.OffsetCommit, 0, 9, (*Node).handleOffsetCommit) }

func (n *Node) handleOffsetCommit(cc *connCtx, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	coord, code := n.groupCoordinatorFor(req.Group)
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	im := n.image()
	exists := group.PartitionFilter(func(topic string, partition int32) bool {
		if im == nil {
			return false
		}
		t, ok := im.Topics[topic]
		return ok && partition >= 0 && int(partition) < len(t.Partitions)
	})
	return coord.OffsetCommitFiltered(cc.ctx, req, exists), nil
}
