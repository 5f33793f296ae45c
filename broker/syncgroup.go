package broker

// SyncGroup, versions 0-5, served by the group coordinator (broker/group). A follower's request blocks its
// connection until the leader's assignment arrives, as in Kafka.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { registerHandler(kmsg.SyncGroup, 0, 5, (*Node).handleSyncGroup) }

func (n *Node) handleSyncGroup(cc *connCtx, req *kmsg.SyncGroupRequest) (kmsg.Response, error) {
	coord, code := n.groupCoordinatorFor(req.Group)
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp, nil
	}
	return coord.Sync(cc.ctx, req), nil
}
