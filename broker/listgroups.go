package broker

// ListGroups, versions 0-5, served by the group coordinator (broker/group): the groups this node
// coordinates, filtered by state (v4+) and type (v5+; every group here is "classic").

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { registerHandler(kmsg.ListGroups, 0, 5, (*Node).handleListGroups) }

func (n *Node) handleListGroups(cc *connCtx, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	return n.groups.ListGroups(cc.ctx, req), nil
}
