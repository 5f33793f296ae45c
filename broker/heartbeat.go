package broker

// Heartbeat, versions 0-4, served by the group coordinator (broker/group): REBALANCE_IN_PROGRESS while the
// group rebalances, UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION / FENCED_INSTANCE_ID as Kafka answers them.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { registerHandler(kmsg.Heartbeat, 0, 4, (*Node).handleHeartbeat) }

func (n *Node) handleHeartbeat(cc *connCtx, req *kmsg.HeartbeatRequest) (kmsg.Response, error) {
	coord, code := n.groupCoordinatorFor(req.Group)
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp, nil
	}
	return coord.Heartbeat(cc.ctx, req), nil
}
