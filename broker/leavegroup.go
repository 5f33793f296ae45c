package broker

// LeaveGroup, versions 0-5 (v3+ removes a batch of members by member id or group.instance.id), served by
// the group coordinator (broker/group).

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { registerHandler(kmsg.LeaveGroup, 0, 5, (*Node).handleLeaveGroup) }

func (n *Node) handleLeaveGroup(cc *connCtx, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
	coord, code := n.groupCoordinatorFor(req.Group)
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp, nil
	}
	return coord.Leave(cc.ctx, req), nil
}
