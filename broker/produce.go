package broker

// Produce, versions 3-9 (record batch v2 only, which v3 introduced). Each partition's Records must be exactly
// one valid batch (header and CRC-32C checked, records never decoded), as Kafka requires for magic 2. The batch
// is appended as raw bytes: only its base offset and partition leader epoch are patched. acks=0 gets no
// response at all (an error closes the connection, as in Kafka), acks=1 is answered once the leader appended,
// acks=-1 once the high watermark passed the batch (every member of the ISR has it), with NOT_ENOUGH_REPLICAS
// before anything is appended when the ISR is below min.insync.replicas, NOT_ENOUGH_REPLICAS_AFTER_APPEND when
// it shrank below while the request waited, REQUEST_TIMED_OUT when the request's timeout passed first, and
// NOT_LEADER_OR_FOLLOWER when leadership moved (the producer refreshes its metadata and retries). A batch
// larger than the topic's max.message.bytes (else the cluster's, else Kafka's default 1048588) gets
// MESSAGE_TOO_LARGE and is not appended, as Kafka's RecordTooLargeException. An idempotent
// retry (same producer id, epoch and sequence range as one of the producer's last 5 batches) is answered with
// its original offset and no error; a gap gets OUT_OF_ORDER_SEQUENCE_NUMBER, a stale epoch
// INVALID_PRODUCER_EPOCH.
// Deliberate differences: no transactions (a transactional batch or a TransactionID gets
// TRANSACTIONAL_ID_AUTHORIZATION_FAILED), no compression validation or recompression (batches are stored as
// sent, as Kafka does when the topic's compression.type is "producer"), LogAppendTime is always -1 (the
// CreateTime message timestamp type), and no quotas (throttle 0). As in Kafka, a connection's next request is
// read only once an acks=all produce is answered: a producer's pipelined requests never overtake its waits.

import (
	"fmt"
	"strconv"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.Produce, 3, 9, (*Node).handleProduce) }

// magicOffset is the position of the magic byte in a record batch.
const magicOffset = 16

// defaultMaxMessageBytes is Kafka's message.max.bytes default: 1 MiB plus the 12 byte log overhead.
const defaultMaxMessageBytes = 1048588

// hwWait is one acks=all partition waiting for its high watermark.
type hwWait struct {
	p      *partition
	resp   *kmsg.ProduceResponseTopicPartition
	target int64
	epoch  int32
}

func (n *Node) handleProduce(cc *connCtx, req *kmsg.ProduceRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var waits []hwWait
	var appended []*partition
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			sp.Default()
			sp.Partition = rp.Partition
			w, p, err := n.producePartition(req, rt.Topic, rp, sp)
			if err != nil {
				n.log.Error("produce failed on the log", "topic", rt.Topic, "partition", rp.Partition, "err", err)
			}
			if w.p != nil {
				waits = append(waits, w)
			}
			if p != nil {
				appended = append(appended, p)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	// Followers' long polls wake once the whole request is in the logs (see appendLeaderWake).
	for _, p := range appended {
		p.wakeFetches()
	}

	// acks=all: wait for the ISR. Appends happened above, so every partition replicates concurrently. As in
	// Kafka, the connection's next request is read only once this one is answered.
	if len(waits) > 0 {
		deadline := time.Now().Add(time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond)
		for _, w := range waits {
			if code := w.p.waitForHW(cc.ctx, w.target, w.epoch, time.Until(deadline)); code != 0 {
				w.resp.ErrorCode, w.resp.BaseOffset = code, -1
			}
		}
		return resp, nil
	}
	if req.Acks == 0 {
		// No response; but an error closes the connection, as Kafka does, so the producer notices (refreshes
		// its metadata and reconnects) instead of writing into the void.
		for _, st := range resp.Topics {
			for _, sp := range st.Partitions {
				if sp.ErrorCode != 0 {
					return nil, fmt.Errorf("acks=0 produce to %s-%d failed: %w", st.Topic, sp.Partition, kerr.ErrorForCode(sp.ErrorCode))
				}
			}
		}
		return nil, nil
	}
	return resp, nil
}

// producePartition appends one partition's batch and fills sp; for acks=all it returns what to wait for. The
// partition is returned when something was appended to it (its waiting fetches are the caller's to wake).
func (n *Node) producePartition(req *kmsg.ProduceRequest, topic string, rp kmsg.ProduceRequestTopicPartition,
	sp *kmsg.ProduceResponseTopicPartition) (hwWait, *partition, error) {
	sp.BaseOffset = -1
	fail := func(code int16, msg string) (hwWait, *partition, error) {
		sp.ErrorCode = code
		if msg != "" && req.Version >= 8 {
			sp.ErrorMessage = &msg
		}
		return hwWait{}, nil, nil
	}
	if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
		return fail(kerr.InvalidRequiredAcks.Code, "")
	}
	if req.TransactionID != nil {
		return fail(kerr.TransactionalIDAuthorizationFailed.Code, "transactions are not supported by the built-in broker")
	}
	if isInternalTopic(topic) {
		return fail(kerr.InvalidTopicException.Code, "cannot append to internal topic "+topic)
	}
	p := n.partition(topic, rp.Partition)
	if p == nil {
		if _, ok := n.image().Partition(topic, rp.Partition); ok {
			return fail(kerr.NotLeaderForPartition.Code, "")
		}
		return fail(kerr.UnknownTopicOrPartition.Code, "")
	}
	if len(rp.Records) > magicOffset && rp.Records[magicOffset] != 2 {
		return fail(kerr.UnsupportedForMessageFormat.Code, "only record batch v2 (magic 2) is accepted")
	}
	if size, ok := storage.DeclaredSize(rp.Records); ok {
		if limit := n.maxMessageBytes(topic); size > limit {
			return fail(kerr.MessageTooLarge.Code, fmt.Sprintf("the record batch size in the append to %s-%d is %d bytes, "+
				"which exceeds the maximum configured value of %d (max.message.bytes)", topic, rp.Partition, size, limit))
		}
	}
	h, err := storage.ParseBatch(rp.Records)
	if err != nil {
		return fail(kerr.CorruptMessage.Code, err.Error())
	}
	if h.Size() != len(rp.Records) {
		return fail(kerr.InvalidRecord.Code, "a produce request must carry exactly one record batch per partition")
	}
	if h.IsTransactional() || h.IsControl() {
		return fail(kerr.TransactionalIDAuthorizationFailed.Code, "transactional and control batches are not accepted")
	}
	if h.NumRecords != h.LastOffsetDelta+1 || h.NumRecords <= 0 {
		return fail(kerr.InvalidRecord.Code, "record count does not match the last offset delta")
	}
	res, err := p.appendLeaderWake(rp.Records, h, req.Acks == -1, false)
	n.sendAlterPartition(p, res.propose)
	sp.LogStartOffset = res.logStart
	if err != nil {
		// The append may have reached the log before failing (a leader state error after the write).
		sp.ErrorCode = res.code
		return hwWait{}, p, fmt.Errorf("producing to %s-%d: %w", topic, rp.Partition, err)
	}
	if res.code != 0 {
		return fail(res.code, "")
	}
	sp.BaseOffset = res.base
	appended := p
	if res.dup {
		appended = nil
	}
	// plantedBug is a constant "" outside the test-only plantedbugs build (planted_off.go), so this branch
	// exists only there: it answers acks=all before the ISR has the batch, to prove the checker catches it.
	if req.Acks != -1 || plantedBug == "ack-before-replication" {
		return hwWait{}, appended, nil
	}
	return hwWait{p: p, resp: sp, target: res.last + 1, epoch: res.epoch}, appended, nil
}

// maxMessageBytes is the largest batch the topic accepts: its max.message.bytes, else the cluster default,
// else Kafka's. The metadata model validated the value; one that does not parse is a broken invariant, logged.
func (n *Node) maxMessageBytes(topic string) int64 {
	im := n.image()
	if im == nil {
		return defaultMaxMessageBytes
	}
	v := im.Config(topic, meta.ConfigMaxMessageBytes, strconv.Itoa(defaultMaxMessageBytes))
	limit, err := strconv.ParseInt(v, 10, 32)
	if err != nil || limit < 0 {
		n.log.Error("invalid max.message.bytes in the metadata image; using Kafka's default", "topic", topic,
			"value", v, "default", defaultMaxMessageBytes)
		return defaultMaxMessageBytes
	}
	return limit
}
