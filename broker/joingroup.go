package broker

// JoinGroup, versions 0-9, served by the group coordinator (broker/group). The request blocks its
// connection until the join phase completes, as in Kafka. Deliberate differences (see group.Coordinator.Join):
// a static member that rejoins with a new member id always triggers a rebalance; SkipAssignment is never set.

import (
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkatrial/kafkatrial/broker/group"
)

func init() { registerHandler(kmsg.JoinGroup, 0, 9, (*Node).handleJoinGroup) }

func (n *Node) handleJoinGroup(cc *connCtx, req *kmsg.JoinGroupRequest) (kmsg.Response, error) {
	coord, code := n.groupCoordinatorFor(req.Group)
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.MemberID = code, req.MemberID
		return resp, nil
	}
	ctx := group.WithClientInfo(cc.ctx, group.ClientInfo{ClientID: cc.clientID, Host: clientHost(cc.remote)})
	return coord.Join(ctx, req), nil
}

// clientHost is the host part of a remote address, shown like Kafka shows it ("/127.0.0.1").
func clientHost(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return "/" + h
	}
	return "/" + remote
}
