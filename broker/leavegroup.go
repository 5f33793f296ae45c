package broker

// LeaveGroup, versions 0-5 (v3+ removes a batch of members by member id or group.instance.id), served by
// the group coordinator (broker/group).

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { registerHandler(kmsg.LeaveGroup, 0, 5, (*Node).handleLeaveGroup) }

func (n *Node) handleLeaveGroup(cc *connCtx, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
	if code := n.groupCoordinatorError(req.Group); code != 0 {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp, nil
	}
	return n.groups.Leave(cc.ctx, req), nil
}
