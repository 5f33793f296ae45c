package broker

// FindCoordinator, versions 0-6 (v4+ batches keys). Group keys (type 0) map to one node by a hash of the
// group id over the registered brokers, sorted by id: on a single node that is the node itself, and on a
// cluster every node answers the same for a group (as long as the set of registered brokers is unchanged).
// Deliberate differences from Kafka: the coordinator does not move when its node is down (Kafka moves it with
// the leadership of the __consumer_offsets partition; here a group's offsets live only on its coordinator's
// disk until issue 3 replicates them), so a fenced coordinator answers COORDINATOR_NOT_AVAILABLE; and
// transaction (type 1) and share-group (type 2) keys get INVALID_REQUEST (no transactions or share groups).

import (
	"hash/fnv"
	"slices"

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
		} else {
			c.NodeID, c.Host, c.Port, c.ErrorCode = n.groupCoordinator(key)
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

// groupCoordinator picks the node coordinating group: hash(group) over the registered brokers sorted by id.
// The choice depends only on the metadata image, so every node makes the same one.
func (n *Node) groupCoordinator(group string) (id int32, host string, port int32, code int16) {
	im := n.image()
	if im == nil || len(im.Brokers) == 0 {
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code
	}
	ids := make([]int32, 0, len(im.Brokers))
	for bid := range im.Brokers {
		ids = append(ids, bid)
	}
	slices.Sort(ids)
	h := fnv.New32a()
	h.Write([]byte(group))
	id = ids[h.Sum32()%uint32(len(ids))]
	if id == n.cfg.NodeID {
		host, port = n.advertised()
		return id, host, port, 0
	}
	b := im.Brokers[id]
	if b.Fenced {
		return -1, "", -1, kerr.CoordinatorNotAvailable.Code
	}
	return id, b.Host, b.Port, 0
}

// groupCoordinatorError is 0 when this node coordinates group, else the error a group request gets:
// NOT_COORDINATOR (ask FindCoordinator again) or COORDINATOR_NOT_AVAILABLE.
func (n *Node) groupCoordinatorError(group string) int16 {
	id, _, _, code := n.groupCoordinator(group)
	switch {
	case code != 0:
		return code
	case id != n.cfg.NodeID:
		return kerr.NotCoordinator.Code
	}
	return 0
}
