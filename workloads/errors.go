package workloads

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/history"
)

// sendRule says what one error means for a record that reached a broker.
type sendRule struct {
	name    string // as doc.go's table shows it
	err     error
	outcome history.Type // Fail or Info
	why     string
}

// sendRules is THE mapping from a send's error to its completion; doc.go shows the same table. It is applied by
// sendOutcome together with what the wire tap saw (see wire.go):
//
//   - no error: ok.
//   - the record was never written to any broker connection: fail, whatever the error (nothing left the client);
//     the producer holds such a failure until the client can no longer write the record (unsure.go).
//   - the error matches any Info row: info (an Info row wins over a Fail row, since kgo wraps the last broker
//     error inside its own timeout and retry errors).
//   - the error matches a Fail row and the broker answered every request that carried the record with a
//     rejection before the append (answers.go): fail. franz-go fails all of a partition's records when one
//     batch is rejected, so the error alone says nothing about the other batches in flight; and a record sent
//     twice may have been written by the attempt whose answer was lost.
//   - anything else (unknown errors, an attempt without such an answer, a wire tap that could not parse a
//     request or an answer): info.
var sendRules = []sendRule{
	// franz-go's own errors: raised whether or not the record had been sent, so they are ambiguous once sent.
	{"kgo.ErrRecordTimeout", kgo.ErrRecordTimeout, history.Info, "delivery.timeout.ms passed; an attempt may have been written"},
	{"kgo.ErrRecordRetries", kgo.ErrRecordRetries, history.Info, "retries exhausted; an earlier attempt may have been written"},
	{"kgo.ErrAborting", kgo.ErrAborting, history.Info, "buffered records aborted; a sent batch may have been written"},
	{"kgo.ErrClientClosed", kgo.ErrClientClosed, history.Info, "client closed with the request in flight"},
	{"context.Canceled", context.Canceled, history.Info, "canceled after the record may have been sent"},
	{"context.DeadlineExceeded", context.DeadlineExceeded, history.Info, "deadline passed after the record may have been sent"},
	// Broker answers that leave the outcome open.
	{"kerr.RequestTimedOut", kerr.RequestTimedOut, history.Info, "the leader timed out waiting for replicas; the batch is in its log"},
	{"kerr.NotEnoughReplicasAfterAppend", kerr.NotEnoughReplicasAfterAppend, history.Info, "appended to the leader, too few replicas acknowledged"},
	{"kerr.NotLeaderForPartition", kerr.NotLeaderForPartition, history.Info, "NOT_LEADER_OR_FOLLOWER: leadership moved, possibly after the append"},
	{"kerr.LeaderNotAvailable", kerr.LeaderNotAvailable, history.Info, "no leader; treated like NOT_LEADER_OR_FOLLOWER"},
	{"kerr.FencedLeaderEpoch", kerr.FencedLeaderEpoch, history.Info, "the leader epoch moved during the request"},
	{"kerr.NetworkException", kerr.NetworkException, history.Info, "the broker lost a connection while handling the request"},
	{"kerr.KafkaStorageError", kerr.KafkaStorageError, history.Info, "the log directory failed during the append"},
	{"kerr.UnknownServerError", kerr.UnknownServerError, history.Info, "unexpected broker error"},
	// Broker answers given before the append: Kafka guarantees the batch was not written.
	{"kgo.ErrMaxBuffered", kgo.ErrMaxBuffered, history.Fail, "refused before buffering"},
	{"kerr.NotEnoughReplicas", kerr.NotEnoughReplicas, history.Fail, "ISR below min.insync.replicas: rejected before the append"},
	{"kerr.MessageTooLarge", kerr.MessageTooLarge, history.Fail, "batch larger than max.message.bytes: rejected"},
	{"kerr.RecordListTooLarge", kerr.RecordListTooLarge, history.Fail, "request too large: rejected"},
	{"kerr.CorruptMessage", kerr.CorruptMessage, history.Fail, "CRC or format check failed: rejected"},
	{"kerr.InvalidRecord", kerr.InvalidRecord, history.Fail, "record validation failed: rejected"},
	{"kerr.InvalidTimestamp", kerr.InvalidTimestamp, history.Fail, "timestamp out of range: rejected"},
	{"kerr.InvalidRequiredAcks", kerr.InvalidRequiredAcks, history.Fail, "bad acks value: rejected"},
	{"kerr.UnknownTopicOrPartition", kerr.UnknownTopicOrPartition, history.Fail, "the broker does not host the partition: rejected"},
	{"kerr.TopicAuthorizationFailed", kerr.TopicAuthorizationFailed, history.Fail, "not authorized: rejected"},
	{"kerr.ClusterAuthorizationFailed", kerr.ClusterAuthorizationFailed, history.Fail, "not authorized: rejected"},
	{"kerr.OutOfOrderSequenceNumber", kerr.OutOfOrderSequenceNumber, history.Fail, "idempotent sequence gap: rejected"},
	{"kerr.InvalidProducerEpoch", kerr.InvalidProducerEpoch, history.Fail, "fenced producer epoch: rejected"},
	{"kerr.UnknownProducerID", kerr.UnknownProducerID, history.Fail, "unknown producer id: rejected"},
}

// sendOutcome maps a send's final error, the number of produce requests that carried the record (writes; -1
// when the wire tap could not tell) and how many of them the broker answered with a rejection before the append
// (rejected) to the completion type, by the rules above.
func sendOutcome(err error, writes, rejected int) history.Type {
	if err == nil {
		return history.OK
	}
	if writes == 0 {
		return history.Fail
	}
	fail := false
	for i := range sendRules {
		if !errors.Is(err, sendRules[i].err) {
			continue
		}
		if sendRules[i].outcome == history.Info {
			return history.Info
		}
		fail = true
	}
	if fail && writes > 0 && rejected == writes {
		return history.Fail
	}
	return history.Info
}

// commitOutcome maps a commit error to its completion: a broker's per-partition error code means that
// partition's commit was refused (fail); a request that failed as a whole may or may not have reached the
// coordinator (info).
func commitOutcome(err error) history.Type {
	if err == nil {
		return history.OK
	}
	var ke *kerr.Error
	if errors.As(err, &ke) && !errors.Is(err, kerr.RequestTimedOut) && !errors.Is(err, kerr.UnknownServerError) {
		return history.Fail
	}
	return history.Info
}
