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
	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// partition is one replica of a topic-partition hosted by this node: its log, its view of leadership (epoch,
// replicas, ISR) from the metadata image, the high watermark, the log end offsets of the ISR members, and the
// idempotent producer state.
//
// Locking: mu guards every field below it. Leader appends run under mu, so the order of batches in the log
// and the producer state always agree (Kafka appends under the partition's leader-ISR lock and the log
// lock). The high watermark is also kept in an atomic so fetches read it without the lock. Long-polling
// fetches and acks=all produces register a waiter channel; every append and high watermark move signals them.
type partition struct {
	tp      topicPartition
	topicID [16]byte
	self    int32
	dir     string
	disk    *storage.Disk

	mu          sync.Mutex
	log         *storage.Log
	logCfg      storage.Config
	leader      int32
	leaderEpoch int32
	replicas    []int32
	isr         []int32
	minISR      int
	// replicaLEO is the last known log end offset of each other replica (filled by follower fetches, issue 3).
	replicaLEO map[int32]int64
	producers  *producerState
	waiters    map[chan struct{}]struct{}
	closed     bool

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
		leaderEpoch: -1, replicaLEO: map[int32]int64{}, producers: newProducerState(),
		waiters: map[chan struct{}]struct{}{}, minISR: 1}
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

// applyMetadata updates leadership, ISR and settings from the partition's record in a new image. A node that
// becomes leader at a new epoch records the epoch's start at its log end, as Kafka's leader does.
func (p *partition) applyMetadata(mp meta.Partition, minISR int, cfg storage.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	if cfg != p.logCfg {
		// storage.Log takes its flush and segment settings at Open: reopen it (no data moves; recovery
		// rescans). Close does not fsync, which is right: changing a setting is not a flush.
		if err := p.log.Close(); err != nil {
			return fmt.Errorf("reopening %s for new settings: %w", p.dir, err)
		}
		l, err := storage.Open(p.disk, p.dir, cfg)
		if err != nil {
			p.closed = true
			return fmt.Errorf("reopening %s for new settings: %w", p.dir, err)
		}
		p.log, p.logCfg = l, cfg
	}
	newEpoch := mp.LeaderEpoch != p.leaderEpoch || mp.Leader != p.leader
	p.leader, p.leaderEpoch, p.minISR = mp.Leader, mp.LeaderEpoch, minISR
	p.replicas, p.isr = slices.Clone(mp.Replicas), slices.Clone(mp.ISR)
	if newEpoch && p.leader == p.self {
		clear(p.replicaLEO)
		if latest, _ := p.log.Epochs().Latest(); latest < p.leaderEpoch {
			if err := p.log.AssignEpoch(p.leaderEpoch, p.log.EndOffset()); err != nil {
				return err
			}
		}
	}
	p.maybeAdvanceHWLocked()
	p.wakeLocked()
	return nil
}

// maybeAdvanceHWLocked moves the leader's high watermark to the smallest log end offset over the ISR
// (never backwards). A replica of the ISR whose log end is not known yet holds it where it is.
func (p *partition) maybeAdvanceHWLocked() {
	if p.leader != p.self {
		return
	}
	hw := p.log.EndOffset()
	for _, r := range p.isr {
		if r == p.self {
			continue
		}
		leo, ok := p.replicaLEO[r]
		if !ok {
			return
		}
		hw = min(hw, leo)
	}
	if hw > p.hw.Load() {
		p.hw.Store(hw)
	}
}

// recordFollowerFetch notes that replica r holds every offset below fetchOffset (its log end), moves the
// high watermark if that allows, and returns it. ISR expansion and shrinking arrive with issue 3.
func (p *partition) recordFollowerFetch(r int32, fetchOffset int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || fetchOffset > p.log.EndOffset() {
		return p.hw.Load()
	}
	p.replicaLEO[r] = fetchOffset
	before := p.hw.Load()
	p.maybeAdvanceHWLocked()
	if p.hw.Load() != before {
		p.wakeLocked()
	}
	return p.hw.Load()
}

// appendResult is the outcome of a leader append.
type appendResult struct {
	base     int64
	last     int64 // the batch's last offset
	epoch    int32 // the leader epoch it was appended under
	code     int16
	logStart int64
	// dup is true when the batch was a retry of one already written: base is the original offset.
	dup bool
}

// appendLeader appends one produced batch (raw bytes, header and CRC already validated by h) as leader.
// requireISR is acks=all: the ISR must hold min.insync.replicas members.
func (p *partition) appendLeader(batch []byte, h storage.BatchHeader, requireISR bool) (appendResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res := appendResult{base: -1, logStart: p.log.StartOffset()}
	if p.closed || p.leader != p.self {
		res.code = kerr.NotLeaderForPartition.Code
		return res, nil
	}
	if requireISR && len(p.isr) < p.minISR {
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
	p.maybeAdvanceHWLocked()
	p.wakeLocked()
	return res, nil
}

// waitForHW blocks until the high watermark reaches target (acks=all), the leader changes, ctx ends or
// timeout passes. It returns NONE, NOT_LEADER_OR_FOLLOWER or REQUEST_TIMED_OUT.
func (p *partition) waitForHW(ctx context.Context, target int64, epoch int32, timeout time.Duration) int16 {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	w := make(chan struct{}, 1)
	for {
		p.mu.Lock()
		switch {
		case p.closed || p.leader != p.self || p.leaderEpoch != epoch:
			p.mu.Unlock()
			return kerr.NotLeaderForPartition.Code
		case p.hw.Load() >= target:
			p.mu.Unlock()
			return 0
		}
		p.waiters[w] = struct{}{}
		p.mu.Unlock()
		select {
		case <-w:
		case <-ctx.Done():
			p.removeWaiter(w)
			return kerr.RequestTimedOut.Code
		case <-deadline.C:
			p.removeWaiter(w)
			return kerr.RequestTimedOut.Code
		}
	}
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

// wakeLocked signals and forgets every waiter.
func (p *partition) wakeLocked() {
	for w := range p.waiters {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	clear(p.waiters)
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
	return partitionView{log: p.log, leader: p.leader, leaderEpoch: p.leaderEpoch, hw: p.hw.Load(),
		leo: p.log.EndOffset(), logStart: p.log.StartOffset()}, true
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
