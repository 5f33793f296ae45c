package broker

// FindCoordinator, versions 0-6 (v4+ batches keys). A group key (type 0) is answered, as in Kafka, with the
// leader of the group's partition of __consumer_offsets (offsets_topic.go), creating that topic on first use;
// COORDINATOR_NOT_AVAILABLE while the partition has no live leader or the topic cannot be created yet. The
// coordinator thus moves with the partition's leadership when its node dies. Deliberate difference:
// transaction (type 1) and share-group (type 2) keys get INVALID_REQUEST (no transactions or share groups).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.FindCoordinator, 0, 6, (*Node).handleFindCoordinator) }

func (n *Node) handleFindCoordinator(cc *connCtx, req *kmsg.FindCoordinatorRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		if req.CoordinatorType != 0 {
			c.ErrorCode = kerr.InvalidRequest.Code
			msg := "the built-in broker coordinates consumer groups only (no transactions, no share groups)"
			c.ErrorMessage = &msg
			n.log.Warn("refused FindCoordinator: "+msg, "client_id", cc.clientID, "remote", cc.remote,
				"coordinator_type", req.CoordinatorType, "key", key)
		} else {
			c.NodeID, c.Host, c.Port, c.ErrorCode = n.findGroupCoordinator(cc.ctx, key)
		}
		if c.ErrorCode != 0 {
			c.NodeID, c.Host, c.Port = -1, "", -1
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 {
		c := resp.Coordinators[0]
		resp.ErrorCode, resp.ErrorMessage, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.ErrorMessage, c.NodeID, c.Host, c.Port
		resp.Coordinators = nil
	}
	return resp, nil
}
