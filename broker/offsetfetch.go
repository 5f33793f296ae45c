package broker

// OffsetFetch, versions 0-8 (v8 fetches several groups at once), served by the group coordinator
// (broker/group) of the group's __consumer_offsets partition from what it loaded and what was committed since
// (only commits the ISR has: below the high watermark). Partitions without a commit answer offset -1. Not
// served: v9+ (KIP-848 member epochs) and v10+ (topic ids). RequireStable needs no waiting: there are no
// transactions, so no offset is ever pending in Kafka's sense (a commit not yet replicated is simply not
// served yet).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.OffsetFetch, 0, 8, (*Node).handleOffsetFetch) }

func (n *Node) handleOffsetFetch(cc *connCtx, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	if req.Version < 8 {
		coord, code := n.groupCoordinatorFor(req.Group)
		if code != 0 {
			resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
			resp.ErrorCode = code
			for _, t := range req.Topics {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.Offset, rp.ErrorCode = p, -1, code
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil
		}
		return coord.OffsetFetch(cc.ctx, req), nil
	}
	// v8: each group may have a different coordinator; ask ours one group at a time.
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	for _, g := range req.Groups {
		coord, code := n.groupCoordinatorFor(g.Group)
		if code != 0 {
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group, rg.ErrorCode = g.Group, code
			resp.Groups = append(resp.Groups, rg)
			continue
		}
		one := *req
		one.Groups = []kmsg.OffsetFetchRequestGroup{g}
		resp.Groups = append(resp.Groups, coord.OffsetFetch(cc.ctx, &one).Groups...)
	}
	return resp, nil
}
