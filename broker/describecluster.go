package broker

// DescribeCluster, versions 0-1: the registered, unfenced brokers, the cluster id and the active
// controller. v1 answers EndpointType 1 (brokers) and refuses 2 (controllers) with UNSUPPORTED_ENDPOINT_TYPE.
// Deliberate difference: no ACLs (authorized operations are all operations when asked).

import (
	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.DescribeCluster, 0, 1, (*Node).handleDescribeCluster) }

func (n *Node) handleDescribeCluster(cc *connCtx, req *kmsg.DescribeClusterRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	if req.Version >= 1 && req.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "only broker endpoints (type 1) are described"
		resp.ErrorMessage = &msg
		return resp, nil
	}
	resp.EndpointType = 1
	im := n.image()
	if im == nil {
		im = meta.Empty()
	}
	resp.ClusterID = clusterID
	resp.ControllerID = n.meta.ctrl.ActiveID()
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = allOperations
	}
	for _, id := range sortedBrokerIDs(im) {
		b := im.Brokers[id]
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port = b.ID, b.Host, b.Port
		resp.Brokers = append(resp.Brokers, rb)
	}
	return resp, nil
}
