package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/kafkatrial/kafkatrial/broker/replica"
	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partition is one replica of a topic-partition hosted by this node: its log, its view of leadership (epoch,
// replicas) from the metadata image, the high watermark, the idempotent producer state, and, while this node
// leads, the leader-side replication state (replica.Leader: followers' log ends, ISR, pending AlterPartition).
// While it follows, the node's fetcher for the leader moves records in through followerResult.
//
// Locking: mu guards every field below it, and replica.Leader is only called under it. Leader appends, follower
// appends and truncations run under mu, so the order of batches in the log, the producer state and the
// leader's view of its log end always agree (Kafka appends under the partition's leader-ISR lock and the log
// lock). The high watermark is also kept in an atomic so fetches read it without the lock. Long-polling
// fetches register a waiter channel that appends and high watermark moves signal; acks=all produces register
// one that only high watermark moves (and leadership changes) signal, so an append wakes no produce for nothing.
type partition struct {
	tp      topicPartition
	topicID [16]byte
	self    int32
	dir     string
	disk    *storage.Disk

	mu             sync.Mutex
	log            *storage.Log
	logCfg         storage.Config
	leader         int32
	leaderEpoch    int32
	partitionEpoch int32
	replicas       []int32
	isr            []int32
	minISR         int
	// ldr is the leader-side replication state, non-nil exactly while this node leads at leaderEpoch.
	ldr       *replica.Leader
	producers *producerState
	waiters   map[chan struct{}]struct{} // long-polling fetches
	hwWaiters map[chan struct{}]struct{} // acks=all produces
	closed    bool

	hw atomic.Int64
}

// partitionMetadataFile names the topic id file in a partition directory (Kafka's partition.metadata).
const partitionMetadataFile = "partition.metadata"

// partitionDir is the directory of a partition's log below the node's logs directory (Kafka's layout).
func partitionDir(tp topicPartition) string {
	return tp.topic + "-" + strconv.Itoa(int(tp.partition))
}

// openPartition opens (recovering) or creates the partition's log in dir. A directory left by an earlier
// topic of the same name (a different topic id) is deleted first: that topic was deleted while the node was
// down. initialHW is the checkpointed high watermark (capped at the log end).
func openPartition(disk *storage.Disk, dir string, tp topicPartition, topicID [16]byte, self int32,
	cfg storage.Config, initialHW int64) (*partition, error) {
	idPath := filepath.Join(dir, partitionMetadataFile)
	idLine := []byte(fmt.Sprintf("version: 0\ntopic_id: %x\n", topicID))
	old, err := disk.ReadFile(idPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", idPath, err)
	}
	if err == nil && !bytes.Equal(old, idLine) {
		if err := disk.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("removing the log of a deleted topic incarnation in %s: %w", dir, err)
		}
	}
	if err != nil || !bytes.Equal(old, idLine) {
		if err := disk.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("creating %s: %w", dir, err)
		}
		if err := disk.WriteFileAtomic(idPath, idLine); err != nil {
			return nil, fmt.Errorf("writing %s: %w", idPath, err)
		}
	}
	l, err := storage.Open(disk, dir, cfg)
	if err != nil {
		return nil, err
	}
	p := &partition{tp: tp, topicID: topicID, self: self, dir: dir, disk: disk, log: l, logCfg: cfg, leader: meta.NoLeader,
		leaderEpoch: -1, partitionEpoch: -1, producers: newProducerState(), waiters: map[chan struct{}]struct{}{},
		hwWaiters: map[chan struct{}]struct{}{}, minISR: 1}
	if err := p.producers.rebuild(l); err != nil {
		l.Close()
		return nil, err
	}
	p.hw.Store(min(max(initialHW, l.StartOffset()), l.EndOffset()))
	return p, nil
}

// logConfig derives a partition log's storage config from the topic's effective configs.
func logConfig(im *meta.Image, topic string, d TopicDefaults) storage.Config {
	get := func(key string, def int64) int64 {
		v, err := strconv.ParseInt(im.Config(topic, key, strconv.FormatInt(def, 10)), 10, 64)
		if err != nil {
			return def
		}
		return v
	}
	cfg := storage.Config{SegmentBytes: get(meta.ConfigSegmentBytes, d.LogSegmentBytes)}
	if m := get(meta.ConfigFlushMessages, d.LogFlushIntervalMessages); m > 0 && m < math.MaxInt64 {
		cfg.FlushMessages = m
	}
	if ms := get(meta.ConfigFlushMs, math.MaxInt64); ms > 0 && ms < math.MaxInt64/int64(time.Millisecond) {
		cfg.FlushInterval = time.Duration(ms) * time.Millisecond
	}
	return cfg
}

// metadataUpdate is what applyMetadata needs from an image besides the partition record.
type metadataUpdate struct {
	mp       meta.Partition
	minISR   int
	cfg      storage.Config
	eligible func(id int32) bool
	lagMax   time.Duration
	now      time.Time
}

// applyMetadata brings the replica in line with its record in a new image, as Kafka's makeLeader and
// makeFollower. Becoming leader at a new epoch records the epoch's start at the log end (AssignEpoch) before
// any write is accepted and starts a replica.Leader; staying leader feeds it the change; becoming follower (or
// losing the leader) drops it, which fails waiting acks=all requests with NOT_LEADER_OR_FOLLOWER. It returns
// an AlterPartition to send, if the change made one necessary.
func (p *partition) applyMetadata(u metadataUpdate) (*replica.Proposal, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil
	}
	if u.cfg != p.logCfg {
		// storage.Log takes its flush and segment settings at Open: reopen it (no data moves; recovery
		// rescans). Close does not fsync, which is right: changing a setting is not a flush.
		if err := p.log.Close(); err != nil {
			return nil, fmt.Errorf("reopening %s for new settings: %w", p.dir, err)
		}
		l, err := storage.Open(p.disk, p.dir, u.cfg)
		if err != nil {
			p.closed = true
			return nil, fmt.Errorf("reopening %s for new settings: %w", p.dir, err)
		}
		p.log, p.logCfg = l, u.cfg
	}
	mp := u.mp
	if mp.PartitionEpoch < p.partitionEpoch && mp.LeaderEpoch <= p.leaderEpoch {
		return nil, nil // an older record than the one applied (images arrive in order; this is a guard)
	}
	p.leader, p.leaderEpoch, p.partitionEpoch = mp.Leader, mp.LeaderEpoch, mp.PartitionEpoch
	p.replicas, p.isr, p.minISR = slices.Clone(mp.Replicas), slices.Clone(mp.ISR), u.minISR
	defer p.wakeLocked()
	if mp.Leader != p.self {
		p.ldr = nil
		return nil, nil
	}
	var res replica.Result
	leo := p.log.EndOffset()
	if p.ldr == nil || mp.LeaderEpoch > p.ldr.LeaderEpoch() {
		epochStart := leo
		if latest, start := p.log.Epochs().Latest(); latest == mp.LeaderEpoch {
			epochStart = start // this node assigned the epoch already (an earlier image of the same election)
		} else if err := p.log.AssignEpoch(mp.LeaderEpoch, leo); err != nil {
			p.ldr = nil
			return nil, fmt.Errorf("becoming leader of %s-%d at epoch %d: %w", p.tp.topic, p.tp.partition, mp.LeaderEpoch, err)
		}
		ldr, err := replica.NewLeader(replica.Config{Self: p.self, ReplicaLagTimeMax: u.lagMax, MinInsyncReplicas: u.minISR},
			replica.AssignmentOf(mp), epochStart, leo, p.hw.Load(), u.now)
		if err != nil {
			p.ldr = nil
			return nil, fmt.Errorf("becoming leader of %s-%d at epoch %d: %w", p.tp.topic, p.tp.partition, mp.LeaderEpoch, err)
		}
		p.ldr = ldr
		p.setEligibilityLocked(mp, u.eligible)
	} else {
		// Eligibility first: a follower just fenced must stop holding the high watermark in the same step.
		p.setEligibilityLocked(mp, u.eligible)
		var err error
		if res, err = p.ldr.OnPartitionChange(replica.AssignmentOf(mp), leo, u.now); err != nil {
			return nil, fmt.Errorf("leader of %s-%d: %w", p.tp.topic, p.tp.partition, err)
		}
	}
	// SetMinInsyncReplicas also recomputes the high watermark, which eligibility changes alone do not.
	if _, err := p.ldr.SetMinInsyncReplicas(u.minISR, u.now); err != nil {
		return nil, fmt.Errorf("leader of %s-%d: %w", p.tp.topic, p.tp.partition, err)
	}
	p.setHWLocked(p.ldr.HighWatermark())
	return res.Propose, nil
}

// setEligibilityLocked tells the leader state which replicas may join the ISR (registered, unfenced, not
// shutting down): an ineligible follower is never added and stops holding back the high watermark.
func (p *partition) setEligibilityLocked(mp meta.Partition, eligible func(int32) bool) {
	for _, r := range mp.Replicas {
		if r != p.self {
			p.ldr.SetEligible(r, eligible(r))
		}
	}
}

// setHWLocked publishes a leader's high watermark (it never moves back during a leadership).
func (p *partition) setHWLocked(hw int64) {
	if hw > p.hw.Load() {
		p.hw.Store(hw)
	}
}

// leaderResultLocked acts on a replica.Leader decision: publishes the high watermark and wakes waiters when
// it moved. The proposal, if any, is the caller's to send.
func (p *partition) leaderResultLocked(res replica.Result) *replica.Proposal {
	if res.HWAdvanced {
		p.setHWLocked(res.HighWatermark)
		p.wakeLocked()
	}
	return res.Propose
}

// tick runs the leader's ISR check (Kafka's maybeShrinkIsr); it returns an AlterPartition to send, or nil.
func (p *partition) tick(now time.Time) *replica.Proposal {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.ldr == nil {
		return nil
	}
	return p.leaderResultLocked(p.ldr.Tick(now))
}

// alterPartitionResult feeds the controller's answer to proposal seq to the leader state; it returns the
// proposal to resend when the answer says to retry.
func (p *partition) alterPartitionResult(seq uint64, r replica.AlterResult, now time.Time) (*replica.Proposal, replica.AlterOutcome) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.ldr == nil {
		return nil, replica.AlterStale
	}
	res, outcome := p.ldr.OnAlterPartitionResult(seq, r, now)
	if outcome == replica.AlterCommitted {
		p.isr = p.ldr.ISR()
	}
	return p.leaderResultLocked(res), outcome
}

// followerFetchCheck is the leader's verdict on one partition of a follower's fetch, taken under the lock.
type followerFetchCheck struct {
	view     partitionView
	code     int16
	diverge  *replica.EpochEndOffset
	propose  *replica.Proposal
	hwBefore int64
}

// checkFollowerFetch is the leader's side of a follower fetch before the read, as Kafka's readRecords plus
// updateFollowerFetchState: fencing by leader epoch, the divergence check of LastFetchedEpoch (DivergingEpoch,
// no position update), then the follower's position, which may expand the ISR and move the high watermark.
func (p *partition) checkFollowerFetch(replicaID int32, fetchOffset int64, lastFetchedEpoch, currentLeaderEpoch int32,
	now time.Time) followerFetchCheck {
	p.mu.Lock()
	defer p.mu.Unlock()
	var c followerFetchCheck
	if p.closed || p.ldr == nil {
		c.code = kerr.NotLeaderForPartition.Code
		c.view.leader, c.view.leaderEpoch = p.leader, p.leaderEpoch
		return c
	}
	if err := replica.CheckLeaderEpoch(p.leaderEpoch, currentLeaderEpoch); err != nil {
		c.code = errCode(err)
		return c
	}
	c.view = p.viewLocked()
	own := replica.LogView{Epochs: replicaEpochs(p.log), StartOffset: c.view.logStart, EndOffset: c.view.leo}
	check := replica.CheckFetch(own, fetchOffset, lastFetchedEpoch)
	switch check.Outcome {
	case replica.FetchOutOfRange:
		c.code = kerr.OffsetOutOfRange.Code
		return c
	case replica.FetchDiverging:
		c.diverge = &check.Diverging
		return c
	}
	res, err := p.ldr.OnFollowerFetch(replicaID, fetchOffset, now)
	if err != nil {
		c.code = errCode(err)
		return c
	}
	c.propose = p.leaderResultLocked(res)
	c.view.hw = p.hw.Load()
	return c
}

// errCode is the Kafka error code an error wraps (UNKNOWN_SERVER_ERROR when it wraps none).
func errCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// replicaEpochs converts the log's epoch cache to the replica package's value type.
func replicaEpochs(l *storage.Log) replica.Epochs {
	entries := l.Epochs().Entries()
	out := make(replica.Epochs, len(entries))
	for i, e := range entries {
		out[i] = replica.EpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset}
	}
	return out
}

// appendResult is the outcome of a leader append.
type appendResult struct {
	base     int64
	last     int64 // the batch's last offset
	epoch    int32 // the leader epoch it was appended under
	code     int16
	logStart int64
	// dup is true when the batch was a retry of one already written: base is the original offset.
	dup     bool
	propose *replica.Proposal
}

// appendLeader appends one produced batch (raw bytes, header and CRC already validated by h) as leader and
// wakes the waiting fetches. requireISR is acks=all: the committed ISR must hold min.insync.replicas members
// before anything is written.
func (p *partition) appendLeader(batch []byte, h storage.BatchHeader, requireISR bool) (appendResult, error) {
	return p.appendLeaderWake(batch, h, requireISR, true)
}

// appendLeaderWake is appendLeader; without wake the waiting fetches are left for the caller to wake
// (wakeFetches), which a produce does once every partition of its request is appended, so a follower's fetch
// carries all of a request's batches in one response instead of one per round trip.
func (p *partition) appendLeaderWake(batch []byte, h storage.BatchHeader, requireISR, wake bool) (appendResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res := appendResult{base: -1, logStart: p.log.StartOffset()}
	if p.closed || p.ldr == nil {
		res.code = kerr.NotLeaderForPartition.Code
		return res, nil
	}
	if requireISR && !p.ldr.CanAcceptAcksAll() {
		res.code = kerr.NotEnoughReplicas.Code
		return res, nil
	}
	dup, code := p.producers.check(h)
	if code != 0 {
		res.code = code
		return res, nil
	}
	if dup != nil {
		res.base, res.last, res.epoch, res.dup = dup.firstOffset, dup.lastOffset, p.leaderEpoch, true
		return res, nil
	}
	base, err := p.log.AppendLeader(batch, p.leaderEpoch)
	if err != nil {
		res.code = kerr.KafkaStorageError.Code
		return res, fmt.Errorf("appending to %s-%d: %w", p.tp.topic, p.tp.partition, err)
	}
	h.BaseOffset = base
	p.producers.update(h)
	res.base, res.last, res.epoch = base, h.LastOffset(), p.leaderEpoch
	lr, err := p.ldr.OnAppend(p.log.EndOffset(), time.Now())
	if err != nil {
		return res, fmt.Errorf("appending to %s-%d: %w", p.tp.topic, p.tp.partition, err)
	}
	res.propose = p.leaderResultLocked(lr)
	if wake {
		signalAll(p.waiters)
	}
	return res, nil
}

// waitForHW blocks an acks=all produce until every member of the ISR holds offsets below target (the high
// watermark reached it), the leadership ends, ctx ends or timeout passes. It returns NONE,
// NOT_ENOUGH_REPLICAS_AFTER_APPEND (the ISR shrank below min.insync.replicas meanwhile),
// NOT_LEADER_OR_FOLLOWER or REQUEST_TIMED_OUT.
func (p *partition) waitForHW(ctx context.Context, target int64, epoch int32, timeout time.Duration) int16 {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	w := make(chan struct{}, 1)
	for {
		p.mu.Lock()
		if p.closed || p.ldr == nil || p.ldr.LeaderEpoch() != epoch {
			p.mu.Unlock()
			return kerr.NotLeaderForPartition.Code
		}
		if done, err := p.ldr.AckedAll(target); done {
			p.mu.Unlock()
			if err != nil {
				return errCode(err)
			}
			return 0
		}
		p.hwWaiters[w] = struct{}{}
		p.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			p.removeHWWaiter(w)
			return kerr.RequestTimedOut.Code
		case <-deadline.C:
			p.removeHWWaiter(w)
			return kerr.RequestTimedOut.Code
		}
	}
}

// fetchPosition is where a follower fetches next: its log end and the epoch of its last record, plus the
// leader epoch it believes current (the leader fences it with FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH).
type fetchPosition struct {
	offset           int64
	lastFetchedEpoch int32
	leaderEpoch      int32
	logStart         int64
}

// followerPosition returns the fetch position if this replica still follows leader at leaderEpoch.
func (p *partition) followerPosition(leader, leaderEpoch int32) (fetchPosition, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.leader != leader || p.leaderEpoch != leaderEpoch || leader == p.self {
		return fetchPosition{}, false
	}
	latest, _ := p.log.Epochs().Latest()
	return fetchPosition{offset: p.log.EndOffset(), lastFetchedEpoch: latest, leaderEpoch: p.leaderEpoch,
		logStart: p.log.StartOffset()}, true
}

// followerResult applies the leader's answer for one partition to this follower, as Kafka's
// processPartitionData: a DivergingEpoch truncates exactly the divergent suffix (replica.TruncationFor, never
// to the high watermark), records are appended as they are (epochs and producer state follow each batch), and
// the high watermark follows the leader's, bounded by what this replica holds. Nothing happens when the
// replica moved on since the request was built (a new epoch, a truncation): pos is what the request said.
func (p *partition) followerResult(leader int32, pos fetchPosition, sp *kmsg.FetchResponseTopicPartition) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.leader != leader || p.leaderEpoch != pos.leaderEpoch || p.log.EndOffset() != pos.offset {
		return nil
	}
	if sp.DivergingEpoch.EndOffset >= 0 || sp.DivergingEpoch.Epoch >= 0 {
		own := replica.LogView{Epochs: replicaEpochs(p.log), StartOffset: p.log.StartOffset(), EndOffset: p.log.EndOffset()}
		tr := replica.TruncationFor(own, replica.EpochEndOffset{Epoch: sp.DivergingEpoch.Epoch, EndOffset: sp.DivergingEpoch.EndOffset})
		return p.truncateLocked(tr.Offset)
	}
	if len(sp.RecordBatches) > 0 {
		hs, err := p.log.AppendFollowerBatches(sp.RecordBatches)
		if err != nil {
			return fmt.Errorf("follower append to %s-%d: %w", p.tp.topic, p.tp.partition, err)
		}
		for _, h := range hs {
			p.producers.update(h)
		}
	}
	own := replica.LogView{StartOffset: p.log.StartOffset(), EndOffset: p.log.EndOffset()}
	p.hw.Store(replica.FollowerHighWatermark(sp.HighWatermark, own))
	return nil
}

// truncateLocked cuts the follower's log at offset and rebuilds what derives from it (producer state, high
// watermark bound).
func (p *partition) truncateLocked(offset int64) error {
	if err := p.log.TruncateTo(offset); err != nil {
		return fmt.Errorf("truncating %s-%d to %d: %w", p.tp.topic, p.tp.partition, offset, err)
	}
	if err := p.producers.rebuild(p.log); err != nil {
		return fmt.Errorf("truncating %s-%d to %d: %w", p.tp.topic, p.tp.partition, offset, err)
	}
	p.hw.Store(min(p.hw.Load(), p.log.EndOffset()))
	return nil
}

// followerOutOfRange handles OFFSET_OUT_OF_RANGE once the leader's log start and end are known (Kafka's
// fetchOffsetAndTruncate): a follower ahead of the leader's log truncates to its end.
func (p *partition) followerOutOfRange(leader int32, pos fetchPosition, leaderStart, leaderEnd int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.leader != leader || p.leaderEpoch != pos.leaderEpoch || p.log.EndOffset() != pos.offset {
		return nil
	}
	act := replica.HandleOutOfRange(p.log.EndOffset(), leaderStart, leaderEnd)
	switch {
	case act.TruncateTo >= 0:
		return p.truncateLocked(act.TruncateTo)
	case act.StartAt >= 0:
		// Logs here always start at 0 (nothing deletes from the front), so a leader starting past our end
		// means something is badly wrong; refuse rather than guess.
		return fmt.Errorf("%s-%d: leader log starts at %d, past this replica's end %d (log start offsets are not supported)",
			p.tp.topic, p.tp.partition, leaderStart, p.log.EndOffset())
	}
	return nil
}

// addWaiter registers w to be signalled on the next append or high watermark move.
func (p *partition) addWaiter(w chan struct{}) {
	p.mu.Lock()
	p.waiters[w] = struct{}{}
	p.mu.Unlock()
}

func (p *partition) removeWaiter(w chan struct{}) {
	p.mu.Lock()
	delete(p.waiters, w)
	p.mu.Unlock()
}

func (p *partition) removeHWWaiter(w chan struct{}) {
	p.mu.Lock()
	delete(p.hwWaiters, w)
	p.mu.Unlock()
}

// wakeFetches signals and forgets every waiting fetch (new records are readable).
func (p *partition) wakeFetches() {
	p.mu.Lock()
	signalAll(p.waiters)
	p.mu.Unlock()
}

// wakeLocked signals and forgets every waiter, fetches and produces.
func (p *partition) wakeLocked() {
	signalAll(p.waiters)
	signalAll(p.hwWaiters)
}

func signalAll(waiters map[chan struct{}]struct{}) {
	for w := range waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	clear(waiters)
}

// snapshot is a consistent view of the partition for a read.
type partitionView struct {
	log         *storage.Log
	leader      int32
	leaderEpoch int32
	hw          int64
	leo         int64
	logStart    int64
}

// view returns the partition's current state for a fetch or list-offsets.
func (p *partition) view() (partitionView, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return partitionView{}, false
	}
	return p.viewLocked(), true
}

func (p *partition) viewLocked() partitionView {
	return partitionView{log: p.log, leader: p.leader, leaderEpoch: p.leaderEpoch, hw: p.hw.Load(),
		leo: p.log.EndOffset(), logStart: p.log.StartOffset()}
}

// highWatermark is the current high watermark (lock-free).
func (p *partition) highWatermark() int64 { return p.hw.Load() }

// close flushes and closes the log (clean shutdown).
func (p *partition) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.wakeLocked()
	return errors.Join(p.log.Sync(), p.log.Close())
}

// kill closes the log without flushing (process kill: written bytes stay in the page cache).
func (p *partition) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	p.wakeLocked()
	p.log.Close()
}

// delete closes the log and removes its directory (the topic was deleted).
func (p *partition) delete() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.wakeLocked()
	return p.log.Delete()
}
