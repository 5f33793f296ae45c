package broker

// InitProducerId, versions 0-4, for idempotent (non-transactional) producers: every call allocates a fresh
// producer id at epoch 0. Ids are unique across the cluster and across restarts (the node id in the high
// bits, a counter reserved in fsynced blocks on the node's disk), so any node can answer, as in Kafka where
// any broker serves a non-transactional InitProducerId. A ProducerID/ProducerEpoch given by the client (v3+,
// an epoch bump) is answered with a fresh id too, which Kafka also does for non-transactional producers.
// Deliberate difference: transactions are not supported (a TransactionalID gets
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.InitProducerID, 0, 4, (*Node).handleInitProducerID) }

func (n *Node) handleInitProducerID(cc *connCtx, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	id, err := n.pids.allocate()
	if err != nil {
		n.log.Error("allocating a producer id failed", "err", err)
		resp.ErrorCode = kerr.UnknownServerError.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
