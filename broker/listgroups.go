package broker

// ListGroups, versions 0-5, served by the group coordinators of the __consumer_offsets partitions this node
// leads: the groups they coordinate, filtered by state (v4+) and type (v5+; every group here is "classic").
// While one of those partitions still loads, the answer carries COORDINATOR_LOAD_IN_PROGRESS along with the
// groups of the others, as Kafka's does.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.ListGroups, 0, 5, (*Node).handleListGroups) }

func (n *Node) handleListGroups(cc *connCtx, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	coords, loading := n.groups.all()
	for _, c := range coords {
		one := c.ListGroups(cc.ctx, req)
		if one.ErrorCode == kerr.NotCoordinator.Code {
			continue // closed meanwhile: the leadership moved, its groups are another node's now
		}
		if one.ErrorCode != 0 && resp.ErrorCode == 0 {
			resp.ErrorCode = one.ErrorCode
		}
		resp.Groups = append(resp.Groups, one.Groups...)
	}
	if loading && resp.ErrorCode == 0 {
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
	}
	return resp, nil
}
