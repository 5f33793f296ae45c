package broker

// DescribeGroups, versions 0-6, served by the group coordinator (broker/group). Groups this node does not
// coordinate answer NOT_COORDINATOR. AuthorizedOperations is left at Kafka's "not requested" value: the
// built-in broker has no ACLs.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { registerHandler(kmsg.DescribeGroups, 0, 6, (*Node).handleDescribeGroups) }

func (n *Node) handleDescribeGroups(cc *connCtx, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, g := range req.Groups {
		coord, code := n.groupCoordinatorFor(g)
		if code != 0 {
			dg := kmsg.NewDescribeGroupsResponseGroup()
			dg.Group, dg.ErrorCode = g, code
			resp.Groups = append(resp.Groups, dg)
			continue
		}
		one := *req
		one.Groups = []string{g}
		resp.Groups = append(resp.Groups, coord.DescribeGroups(cc.ctx, &one).Groups...)
	}
	return resp, nil
}
