package broker

// Fetch, versions 4-12. Consumers (ReplicaID -1) read from the partition leader up to the high watermark;
// MaxWaitMillis and MinBytes are honoured with a real long poll (the request waits until enough bytes are
// readable, woken by appends and high watermark moves, or the wait ends); MaxBytes bounds the response and
// PartitionMaxBytes each partition, except that the first batch found is always returned whole (as Kafka
// does, so a batch larger than the limits cannot stall a consumer). Batches are returned exactly as the log
// holds them (raw bytes). CurrentLeaderEpoch (v9+) fences stale or future epochs; LastFetchedEpoch (v12)
// is checked against the leader-epoch cache and a divergence is answered with DivergingEpoch and no records.
// read_committed sees the same as read_uncommitted (no transactions): LastStableOffset = high watermark.
// Follower fetches (ReplicaID >= 0, the replica fetchers of fetcher.go) read up to the log end; the fetch
// offset is the follower's log end offset, which the leader's replica.Leader records (ISR expansion, high
// watermark), unless LastFetchedEpoch shows the follower's log diverged (DivergingEpoch, nothing recorded).
// A fetch from a broker that is not a replica gets UNKNOWN_LEADER_EPOCH, as Kafka answers it.
// Deliberate differences: no incremental fetch sessions (every response is a full one with SessionID 0,
// which Kafka also answers when its session cache is full; a request naming a session gets
// FETCH_SESSION_ID_NOT_FOUND); no fetching from followers (KIP-392); no quotas.

import (
	"errors"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/replica"
	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.Fetch, 4, 12, (*Node).handleFetch) }

// maxFetchWait bounds a long poll whatever the client asks (Kafka has no bound; this keeps a broken client
// from pinning a connection's handler for ever).
const maxFetchWait = 5 * time.Minute

func (n *Node) handleFetch(cc *connCtx, req *kmsg.FetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.Version >= 7 && req.SessionEpoch > 0 {
		// Only a client holding a session id this node gave could send a positive epoch; none was given.
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp, nil
	}
	wait := min(time.Duration(max(req.MaxWaitMillis, 0))*time.Millisecond, maxFetchWait)
	deadline := time.Now().Add(wait)
	var w chan struct{}
	for {
		resp.Topics = resp.Topics[:0]
		total, stop := n.fetchOnce(cc, req, resp)
		if stop || total >= int(req.MinBytes) || wait == 0 || !time.Now().Before(deadline) {
			n.unregisterFetchWaiter(req, w)
			return resp, nil
		}
		if w == nil {
			// Register, then read again: an append between the first read and the registration would
			// otherwise be missed.
			w = make(chan struct{}, 1)
			n.registerFetchWaiter(req, w)
			continue
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-w:
			t.Stop()
			n.registerFetchWaiter(req, w)
		case <-t.C:
		case <-cc.ctx.Done():
			t.Stop()
			n.unregisterFetchWaiter(req, w)
			return nil, cc.ctx.Err()
		}
	}
}

// registerFetchWaiter asks every hosted partition of the request to signal w on its next change.
func (n *Node) registerFetchWaiter(req *kmsg.FetchRequest, w chan struct{}) {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if p := n.partition(rt.Topic, rp.Partition); p != nil {
				p.addWaiter(w)
			}
		}
	}
}

func (n *Node) unregisterFetchWaiter(req *kmsg.FetchRequest, w chan struct{}) {
	if w == nil {
		return
	}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if p := n.partition(rt.Topic, rp.Partition); p != nil {
				p.removeWaiter(w)
			}
		}
	}
}

// fetchOnce fills resp with one pass over the requested partitions and returns the bytes gathered, and
// whether the request must be answered now whatever MinBytes says (a partition error, as Kafka does). The
// record batches are read into the connection's cc.readBuf, which resp then points into: resp must be encoded
// before the connection's next fetch.
func (n *Node) fetchOnce(cc *connCtx, req *kmsg.FetchRequest, resp *kmsg.FetchResponse) (int, bool) {
	budget := int(req.MaxBytes)
	if req.MaxBytes <= 0 {
		budget = int(^uint(0) >> 1)
	}
	total, stop := 0, false
	follower := req.ReplicaID >= 0
	buf := cc.readBuf[:0]
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.FetchResponseTopicPartition, len(rt.Partitions))
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			sp.Default()
			sp.Partition = rp.Partition
			// Empty, not null: librdkafka rejects a null record set (Kafka always sends a length).
			sp.RecordBatches = []byte{}
			limit := min(int(rp.PartitionMaxBytes), budget)
			if total > 0 && limit <= 0 {
				limit = 0
			}
			var partStop bool
			if buf, partStop = n.fetchPartition(buf, rt.Topic, rp, sp, req.ReplicaID, follower, limit, total == 0); partStop {
				stop = true
			}
			total += len(sp.RecordBatches)
			budget -= len(sp.RecordBatches)
		}
		resp.Topics = append(resp.Topics, st)
	}
	cc.readBuf = buf
	return total, stop
}

// fetchPartition reads one partition into sp, appending its batches to buf (sp.RecordBatches points there) and
// returning buf. limit is the byte budget; first allows one whole batch past it. It also reports whether the
// answer must go out now whatever MinBytes says (an error or a divergence).
func (n *Node) fetchPartition(buf []byte, topic string, rp kmsg.FetchRequestTopicPartition, sp *kmsg.FetchResponseTopicPartition,
	replicaID int32, follower bool, limit int, first bool) ([]byte, bool) {
	p := n.partition(topic, rp.Partition)
	if p == nil {
		sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if _, ok := n.image().Partition(topic, rp.Partition); ok {
			sp.ErrorCode = kerr.NotLeaderForPartition.Code
		}
		return buf, true
	}
	var v partitionView
	if follower {
		c := p.checkFollowerFetch(replicaID, rp.FetchOffset, rp.LastFetchedEpoch, rp.CurrentLeaderEpoch, time.Now())
		if c.propose != nil {
			n.sendAlterPartition(p, c.propose)
		}
		v = c.view
		switch {
		case c.code != 0:
			sp.ErrorCode = c.code
			if c.code == kerr.NotLeaderForPartition.Code {
				sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = v.leader, v.leaderEpoch
			}
			return buf, true
		case c.diverge != nil:
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = v.hw, v.hw, v.logStart
			sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = c.diverge.Epoch, c.diverge.EndOffset
			return buf, true
		}
	} else {
		var ok bool
		v, ok = p.view()
		switch {
		case !ok || v.leader != n.cfg.NodeID:
			sp.ErrorCode = kerr.NotLeaderForPartition.Code
			sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = v.leader, v.leaderEpoch
			return buf, true
		case rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch < v.leaderEpoch:
			sp.ErrorCode = kerr.FencedLeaderEpoch.Code
			return buf, true
		case rp.CurrentLeaderEpoch > v.leaderEpoch:
			sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			return buf, true
		}
		if rp.FetchOffset < v.logStart || rp.FetchOffset > v.leo {
			sp.ErrorCode = kerr.OffsetOutOfRange.Code
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = v.hw, v.hw, v.logStart
			return buf, true
		}
		if rp.LastFetchedEpoch >= 0 {
			own := replica.LogView{Epochs: replicaEpochs(v.log), StartOffset: v.logStart, EndOffset: v.leo}
			if c := replica.CheckFetch(own, rp.FetchOffset, rp.LastFetchedEpoch); c.Outcome == replica.FetchDiverging {
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = v.hw, v.hw, v.logStart
				sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = c.Diverging.Epoch, c.Diverging.EndOffset
				return buf, true
			}
		}
	}
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = v.hw, v.hw, v.logStart
	// Consumers read below the high watermark only; followers up to the log end.
	upTo := v.hw
	if follower {
		upTo = v.leo
	}
	if rp.FetchOffset >= upTo || (limit <= 0 && !first) {
		return buf, false
	}
	grown, err := v.log.ReadAppend(buf, rp.FetchOffset, max(limit, 1), upTo)
	data := grown[len(buf):]
	switch {
	case err == nil:
	case isOutOfRange(err):
		sp.ErrorCode = kerr.OffsetOutOfRange.Code
		return buf, true
	default:
		// A read racing a concurrent close (delete, stop) or a disk error: the client retries.
		n.log.Warn("fetch read failed", "topic", topic, "partition", rp.Partition, "offset", rp.FetchOffset, "err", err)
		sp.ErrorCode = kerr.NotLeaderForPartition.Code
		return buf, true
	}
	if (!first && len(data) > limit) || len(data) == 0 {
		return buf, false
	}
	sp.RecordBatches = data[:len(data):len(data)]
	return grown, false
}

func isOutOfRange(err error) bool { return errors.Is(err, storage.ErrOffsetOutOfRange) }
