package broker

// The follower side of replication, as Kafka's ReplicaFetcherManager and ReplicaFetcherThread: one fetcher per
// leader node this node follows partitions of, carrying every such partition in one Fetch v12 request (ReplicaID
// = this node, FetchOffset = the replica's log end, LastFetchedEpoch = its latest cached epoch,
// CurrentLeaderEpoch = the epoch it follows). Requests go over the Kafka protocol through Config.Dial to the
// leader's advertised address, so network faults hit replication exactly as they hit clients. Answers are applied
// by the partition (partition.followerResult): DivergingEpoch truncates by epoch, records are appended as raw
// batches, the high watermark follows the leader's. A partition whose leader answers an error (fenced, not
// leader, unknown epoch) sits out replica.fetch.backoff.ms; OFFSET_OUT_OF_RANGE asks the leader for its log
// end with ListOffsets and truncates to it.
// Deliberate differences: no fetch sessions (every fetch is full), one fetcher per leader (Kafka's
// num.replica.fetchers=1 default), no throttling.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Replica fetch sizes (Kafka's replica.fetch.max.bytes and replica.fetch.response.max.bytes defaults).
const (
	replicaFetchMaxBytes         = 1 << 20
	replicaFetchResponseMaxBytes = 10 << 20
	replicaFetchVersion          = 12
	replicaListOffsetsVersion    = 5
)

// fetcherSet holds the node's fetchers, one per leader node. Only applyImage changes it (under
// metadataService.applyMu), so mu only orders it against Close.
type fetcherSet struct {
	mu       sync.Mutex
	byLeader map[int32]*fetcher
}

// fetchTarget is one partition a fetcher replicates: the replica and the leader epoch it follows.
type fetchTarget struct {
	p           *partition
	leaderEpoch int32
	// delayUntil holds the partition out of fetches after an error, until a new epoch or the time passes.
	delayUntil time.Time
}

// fetcher replicates every partition this node follows from one leader node.
type fetcher struct {
	n      *Node
	leader int32
	addr   string
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	targets map[topicPartition]*fetchTarget
	// changed wakes an idle fetcher when its partition set changes.
	changed chan struct{}
	// inflight is the leader epoch of every partition of the request being answered (nil between requests),
	// and cut ends that request early by closing its connection: a partition that becomes fetchable while a
	// long poll for the others is parked at the leader must not wait out replica.fetch.wait.max.ms.
	inflight map[topicPartition]int32
	cut      func()
	// interrupted records that cut ended the current request (no error to report, no backoff).
	interrupted bool
}

// updateFetchers makes the node's fetchers match the image: every hosted partition led by another live node is
// fetched from that node at the image's leader epoch; everything else is dropped.
func (n *Node) updateFetchers(im *meta.Image) {
	want := map[int32]map[topicPartition]*fetchTarget{}
	n.partsMu.RLock()
	for tp, p := range n.parts {
		mp, ok := im.Partition(tp.topic, tp.partition)
		if !ok || mp.Leader == n.cfg.NodeID || mp.Leader == meta.NoLeader {
			continue
		}
		if _, registered := im.Brokers[mp.Leader]; !registered {
			continue
		}
		if want[mp.Leader] == nil {
			want[mp.Leader] = map[topicPartition]*fetchTarget{}
		}
		want[mp.Leader][tp] = &fetchTarget{p: p, leaderEpoch: mp.LeaderEpoch}
	}
	n.partsMu.RUnlock()

	fs := &n.fetchers
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.byLeader == nil {
		fs.byLeader = map[int32]*fetcher{}
	}
	for id, f := range fs.byLeader {
		b := im.Brokers[id]
		if len(want[id]) == 0 || f.addr != net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))) {
			f.cancel()
			delete(fs.byLeader, id)
		}
	}
	if n.ctx.Err() != nil {
		return
	}
	for id, targets := range want {
		f := fs.byLeader[id]
		if f == nil {
			b := im.Brokers[id]
			f = &fetcher{n: n, leader: id, addr: net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))),
				targets: map[topicPartition]*fetchTarget{}, changed: make(chan struct{}, 1)}
			f.ctx, f.cancel = context.WithCancel(n.ctx)
			fs.byLeader[id] = f
			n.wg.Add(1)
			go f.run()
		}
		f.setTargets(targets)
	}
}

// setTargets replaces the fetcher's partitions, keeping a partition's error delay while its epoch is unchanged.
// A partition that is new here (or at a new epoch) and that the request in flight does not carry ends that
// request early.
func (f *fetcher) setTargets(targets map[topicPartition]*fetchTarget) {
	f.mu.Lock()
	for tp, t := range targets {
		if old := f.targets[tp]; old != nil && old.p == t.p && old.leaderEpoch == t.leaderEpoch {
			t.delayUntil = old.delayUntil
			continue
		}
		if epoch, ok := f.inflight[tp]; f.inflight != nil && (!ok || epoch != t.leaderEpoch) {
			f.interruptLocked()
		}
	}
	f.targets = targets
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

// stopFetchers cancels every fetcher (their goroutines are waited for with the node's).
func (n *Node) stopFetchers() {
	fs := &n.fetchers
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for id, f := range fs.byLeader {
		f.cancel()
		delete(fs.byLeader, id)
	}
}

// fetchRound is one request with the position each partition was fetched at.
type fetchRound struct {
	req       *kmsg.FetchRequest
	positions map[topicPartition]fetchPosition
	targets   map[topicPartition]*fetchTarget
}

// run fetches until the fetcher is cancelled.
func (f *fetcher) run() {
	defer f.n.wg.Done()
	var conn *replicaConn
	defer func() {
		if conn != nil {
			conn.close()
		}
	}()
	t := f.n.cfg.Timing
	failing := false
	for f.ctx.Err() == nil {
		if f.n.gate.wait(f.ctx) != nil {
			return
		}
		round, wait := f.build()
		if round == nil {
			f.idle(wait)
			continue
		}
		if conn == nil {
			var err error
			if conn, err = f.dial(); err != nil {
				if !failing && f.ctx.Err() == nil {
					f.n.log.Warn("replica fetcher cannot reach the leader", "leader", f.leader, "addr", f.addr, "err", err)
					failing = true
				}
				sleepCtx(f.ctx, t.ReplicaFetchBackoff)
				continue
			}
		}
		resp, err := f.roundTrip(conn, round)
		if err != nil {
			conn.close()
			conn = nil
			if f.takeInterrupted() {
				continue // a partition was added: fetch again at once, on a new connection
			}
			if !failing && f.ctx.Err() == nil {
				f.n.log.Warn("replica fetch failed", "leader", f.leader, "addr", f.addr, "err", err)
				failing = true
			}
			sleepCtx(f.ctx, t.ReplicaFetchBackoff)
			continue
		}
		if failing {
			f.n.log.Info("replica fetcher reaches the leader again", "leader", f.leader)
			failing = false
		}
		if f.n.gate.wait(f.ctx) != nil {
			return
		}
		fr := resp.(*kmsg.FetchResponse)
		if fr.ErrorCode != 0 {
			f.n.log.Warn("replica fetch refused", "leader", f.leader, "err", kerr.ErrorForCode(fr.ErrorCode))
			sleepCtx(f.ctx, t.ReplicaFetchBackoff)
			continue
		}
		f.apply(conn, round, fr)
	}
}

// roundTrip sends round on conn, letting setTargets end it early (see fetcher.inflight).
func (f *fetcher) roundTrip(conn *replicaConn, round *fetchRound) (kmsg.Response, error) {
	f.mu.Lock()
	f.inflight = make(map[topicPartition]int32, len(round.positions))
	for tp, pos := range round.positions {
		f.inflight[tp] = pos.leaderEpoch
	}
	f.cut = func() { conn.c.Close() }
	f.mu.Unlock()
	t := f.n.cfg.Timing
	resp, err := conn.roundTrip(round.req, t.ReplicaFetchWaitMax+t.ReplicaSocketTimeout)
	f.mu.Lock()
	f.inflight, f.cut = nil, nil
	f.mu.Unlock()
	return resp, err
}

// interruptLocked ends the request in flight, once. Caller holds mu.
func (f *fetcher) interruptLocked() {
	if f.cut != nil && !f.interrupted {
		f.interrupted = true
		f.cut()
	}
}

// takeInterrupted reports (and clears) whether the last request was ended by interruptLocked.
func (f *fetcher) takeInterrupted() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.interrupted
	f.interrupted = false
	return was
}

// idle waits for a partition set change, the end of the earliest error delay (wait > 0) or cancellation.
func (f *fetcher) idle(wait time.Duration) {
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-f.changed:
	case <-timer:
	case <-f.ctx.Done():
	}
}

// build makes the next request from every partition not held out; with none it returns how long until the
// earliest held-out one may fetch again (0: none is waiting). The request's long poll ends no later than that,
// so a partition held out after an error rejoins when its backoff ends, not when the others' poll ends.
func (f *fetcher) build() (*fetchRound, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	var wait time.Duration
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(replicaFetchVersion)
	req.ReplicaID = f.n.cfg.NodeID
	req.MaxWaitMillis = int32(f.n.cfg.Timing.ReplicaFetchWaitMax / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = replicaFetchResponseMaxBytes
	req.SessionEpoch = -1
	round := &fetchRound{req: req, positions: map[topicPartition]fetchPosition{}, targets: map[topicPartition]*fetchTarget{}}
	topics := map[string]int{}
	for tp, t := range f.targets {
		if d := t.delayUntil.Sub(now); d > 0 {
			if wait == 0 || d < wait {
				wait = d
			}
			continue
		}
		pos, ok := t.p.followerPosition(f.leader, t.leaderEpoch)
		if !ok {
			continue // the replica moved on (closed, newer image); the next image update drops it
		}
		i, seen := topics[tp.topic]
		if !seen {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = tp.topic
			req.Topics = append(req.Topics, rt)
			i = len(req.Topics) - 1
			topics[tp.topic] = i
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.FetchOffset = tp.partition, pos.leaderEpoch, pos.offset
		rp.LastFetchedEpoch, rp.LogStartOffset, rp.PartitionMaxBytes = pos.lastFetchedEpoch, pos.logStart, replicaFetchMaxBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		round.positions[tp], round.targets[tp] = pos, t
	}
	if len(round.positions) == 0 {
		return nil, wait
	}
	if wait > 0 {
		req.MaxWaitMillis = int32(min(f.n.cfg.Timing.ReplicaFetchWaitMax, max(wait, time.Millisecond)) / time.Millisecond)
	}
	return round, 0
}

// apply hands each partition's answer to its replica. Partitions carrying records are appended concurrently
// (each under its own lock): a follower's first append in a new leader epoch fsyncs the epoch checkpoint, and
// one partition's fsync need not wait for another's.
func (f *fetcher) apply(conn *replicaConn, round *fetchRound, resp *kmsg.FetchResponse) {
	var appends []func()
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		for j := range rt.Partitions {
			sp := &rt.Partitions[j]
			tp := topicPartition{rt.Topic, sp.Partition}
			pos, ok := round.positions[tp]
			if !ok {
				continue
			}
			t := round.targets[tp]
			var err error
			switch sp.ErrorCode {
			case 0:
				if len(sp.RecordBatches) > 0 {
					appends = append(appends, func() { f.applied(tp, t, t.p.followerResult(f.leader, pos, sp)) })
					continue
				}
				err = t.p.followerResult(f.leader, pos, sp)
			case kerr.OffsetOutOfRange.Code:
				err = f.outOfRange(conn, tp, t.p, pos)
			default:
				f.n.log.Debug("replica fetch of a partition refused", "topic", tp.topic, "partition", tp.partition,
					"leader", f.leader, "err", kerr.ErrorForCode(sp.ErrorCode))
				f.delay(tp, t)
				continue
			}
			f.applied(tp, t, err)
		}
	}
	if len(appends) == 1 {
		appends[0]()
		return
	}
	var wg sync.WaitGroup
	for _, fn := range appends {
		wg.Go(fn)
	}
	wg.Wait()
}

// applied logs a failed apply and holds the partition out of fetches for replica.fetch.backoff.ms.
func (f *fetcher) applied(tp topicPartition, t *fetchTarget, err error) {
	if err != nil {
		f.n.log.Error("applying a replica fetch failed", "topic", tp.topic, "partition", tp.partition,
			"leader", f.leader, "err", err)
		f.delay(tp, t)
	}
}

// delay holds a partition out of fetches for replica.fetch.backoff.ms.
func (f *fetcher) delay(tp topicPartition, t *fetchTarget) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if cur := f.targets[tp]; cur == t {
		t.delayUntil = time.Now().Add(f.n.cfg.Timing.ReplicaFetchBackoff)
	}
}

// outOfRange asks the leader for its log start and end (ListOffsets as a replica) and lets the partition
// truncate to them.
func (f *fetcher) outOfRange(conn *replicaConn, tp topicPartition, p *partition, pos fetchPosition) error {
	offsets := [2]int64{}
	for i, ts := range []int64{-2, -1} {
		req := kmsg.NewPtrListOffsetsRequest()
		req.SetVersion(replicaListOffsetsVersion)
		req.ReplicaID = f.n.cfg.NodeID
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = tp.topic
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.Timestamp = tp.partition, pos.leaderEpoch, ts
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := conn.roundTrip(req, f.n.cfg.Timing.ReplicaSocketTimeout)
		if err != nil {
			return fmt.Errorf("asking leader %d for its offsets: %w", f.leader, err)
		}
		lr := resp.(*kmsg.ListOffsetsResponse)
		if len(lr.Topics) != 1 || len(lr.Topics[0].Partitions) != 1 {
			return fmt.Errorf("leader %d answered ListOffsets for %d topics", f.leader, len(lr.Topics))
		}
		lp := lr.Topics[0].Partitions[0]
		if lp.ErrorCode != 0 {
			return fmt.Errorf("leader %d ListOffsets: %w", f.leader, kerr.ErrorForCode(lp.ErrorCode))
		}
		offsets[i] = lp.Offset
	}
	return p.followerOutOfRange(f.leader, pos, offsets[0], offsets[1])
}

// dial connects to the leader through the node's network hook.
func (f *fetcher) dial() (*replicaConn, error) {
	dial := f.n.cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	ctx, cancel := context.WithTimeout(f.ctx, f.n.cfg.Timing.ReplicaSocketTimeout)
	defer cancel()
	c, err := dial(ctx, "tcp", f.addr)
	if err != nil {
		return nil, fmt.Errorf("dialling leader %d at %s: %w", f.leader, f.addr, err)
	}
	rc := &replicaConn{c: c, r: bufio.NewReaderSize(c, 64<<10), maxFrame: f.n.cfg.MaxFrameBytes,
		clientID: "broker-" + strconv.Itoa(int(f.n.cfg.NodeID)) + "-fetcher"}
	// A cancelled fetcher must not wait out a long poll or a stalled network: closing unblocks the read.
	rc.stop = context.AfterFunc(f.ctx, func() { c.Close() })
	return rc, nil
}

// replicaConn is a minimal Kafka-protocol client connection: one request at a time, answered in order.
type replicaConn struct {
	c        net.Conn
	r        *bufio.Reader
	stop     func() bool
	corr     int32
	clientID string
	maxFrame int32
	out, in  []byte
}

var errCorrelation = errors.New("response correlation id does not match the request")

// roundTrip sends req and reads its response within timeout.
func (rc *replicaConn) roundTrip(req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	rc.corr++
	out := rc.out[:0]
	out = append(out, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint16(out, uint16(req.Key()))
	out = binary.BigEndian.AppendUint16(out, uint16(req.GetVersion()))
	out = binary.BigEndian.AppendUint32(out, uint32(rc.corr))
	out = binary.BigEndian.AppendUint16(out, uint16(len(rc.clientID)))
	out = append(out, rc.clientID...)
	if req.IsFlexible() {
		out = append(out, 0)
	}
	out = req.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	rc.out = out
	if err := rc.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if _, err := rc.c.Write(out); err != nil {
		return nil, fmt.Errorf("sending %s: %w", kmsg.NameForKey(req.Key()), err)
	}
	var sz [4]byte
	if _, err := io.ReadFull(rc.r, sz[:]); err != nil {
		return nil, fmt.Errorf("reading %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	size := int32(binary.BigEndian.Uint32(sz[:]))
	if size < 4 || size > rc.maxFrame {
		return nil, fmt.Errorf("%s response frame of %d bytes (limit %d)", kmsg.NameForKey(req.Key()), size, rc.maxFrame)
	}
	// The response buffer is reused: a response is applied (written to the log, headers copied out) before
	// the next round trip, and nothing keeps a reference to its bytes.
	if int(size) > cap(rc.in) {
		rc.in = make([]byte, size)
	}
	buf := rc.in[:size]
	if _, err := io.ReadFull(rc.r, buf); err != nil {
		return nil, fmt.Errorf("reading %s response: %w", kmsg.NameForKey(req.Key()), noEOF(err))
	}
	if int32(binary.BigEndian.Uint32(buf)) != rc.corr {
		return nil, errCorrelation
	}
	body := buf[4:]
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if resp.IsFlexible() {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, fmt.Errorf("%s response header: %w", kmsg.NameForKey(req.Key()), err)
		}
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

// skipTags skips the tagged fields of a flexible response header.
func skipTags(b []byte) ([]byte, error) {
	n, size := binary.Uvarint(b)
	if size <= 0 {
		return nil, errBadHeader
	}
	b = b[size:]
	for range n {
		if _, size = binary.Uvarint(b); size <= 0 {
			return nil, errBadHeader
		}
		b = b[size:]
		l, size := binary.Uvarint(b)
		if size <= 0 || l > uint64(len(b)-size) {
			return nil, errBadHeader
		}
		b = b[size+int(l):]
	}
	return b, nil
}

func (rc *replicaConn) close() {
	rc.stop()
	rc.c.Close()
}
