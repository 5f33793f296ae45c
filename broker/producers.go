package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"sync"

	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
)

// producerState is the idempotent producer state of one partition: for every producer id, its epoch and the
// last batchesRetained batches it wrote, so a retried batch is recognised and answered with its original
// offset, and a gap in sequence numbers is refused. It is rebuilt from the log at start-up (Kafka loads it
// from snapshots plus the log tail; this rebuild scans the whole log, which is what a snapshot-less Kafka
// recovery does). Owned by its partition and guarded by the partition's lock.
type producerState struct {
	producers map[int64]*producerEntry
}

// batchesRetained is how many recent batches per producer are kept for duplicate detection (Kafka's
// ProducerStateEntry.NUM_BATCHES_TO_RETAIN, which is also why max.in.flight.requests.per.connection <= 5 is
// required for idempotence).
const batchesRetained = 5

// producerEntry is one producer's state in one partition.
type producerEntry struct {
	epoch   int16
	batches []producerBatch // oldest first, at most batchesRetained
}

// producerBatch is what duplicate detection remembers about one written batch.
type producerBatch struct {
	firstSeq, lastSeq       int32
	firstOffset, lastOffset int64
}

func newProducerState() *producerState {
	return &producerState{producers: map[int64]*producerEntry{}}
}

// lastSequence is the batch's last sequence number (sequences wrap at MaxInt32 to 0).
func lastSequence(h storage.BatchHeader) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

// check decides how to treat an idempotent batch before it is appended: dup is the original batch when h is
// a retry of one still remembered, code a Kafka error code refusing it (0 to append). Non-idempotent batches
// (producer id -1) are always appended.
func (s *producerState) check(h storage.BatchHeader) (dup *producerBatch, code int16) {
	if h.ProducerID < 0 {
		return nil, 0
	}
	e := s.producers[h.ProducerID]
	if e == nil {
		// No state (a new producer, or its state is gone): accept any sequence, as Kafka does when it has
		// no entry for the producer.
		return nil, 0
	}
	if h.ProducerEpoch < e.epoch {
		return nil, kerr.InvalidProducerEpoch.Code
	}
	last := lastSequence(h)
	if h.ProducerEpoch == e.epoch {
		for i := range e.batches {
			if b := &e.batches[i]; b.firstSeq == h.BaseSequence && b.lastSeq == last {
				return b, 0
			}
		}
	}
	if h.ProducerEpoch > e.epoch {
		// A bumped epoch restarts the sequence at 0.
		if h.BaseSequence != 0 {
			return nil, kerr.OutOfOrderSequenceNumber.Code
		}
		return nil, 0
	}
	if len(e.batches) == 0 {
		return nil, 0
	}
	prev := e.batches[len(e.batches)-1].lastSeq
	if !inSequence(prev, h.BaseSequence) {
		return nil, kerr.OutOfOrderSequenceNumber.Code
	}
	return nil, 0
}

// inSequence reports whether next directly follows last (with the wrap Kafka uses).
func inSequence(last, next int32) bool {
	return next == last+1 || (next == 0 && last == math.MaxInt32)
}

// update records a batch written to the log (h carries its final base offset).
func (s *producerState) update(h storage.BatchHeader) {
	if h.ProducerID < 0 || h.IsControl() {
		return
	}
	e := s.producers[h.ProducerID]
	if e == nil {
		e = &producerEntry{epoch: h.ProducerEpoch}
		s.producers[h.ProducerID] = e
	}
	if h.ProducerEpoch != e.epoch {
		e.epoch = h.ProducerEpoch
		e.batches = e.batches[:0]
	}
	if len(e.batches) == batchesRetained {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:batchesRetained-1]
	}
	e.batches = append(e.batches, producerBatch{firstSeq: h.BaseSequence, lastSeq: lastSequence(h),
		firstOffset: h.BaseOffset, lastOffset: h.LastOffset()})
}

// rebuild recomputes the state from every batch of the log: at start-up, and after a follower truncation
// (issue 3).
func (s *producerState) rebuild(l *storage.Log) error {
	s.producers = map[int64]*producerEntry{}
	err := l.ScanBatches(l.StartOffset(), func(h storage.BatchHeader) bool {
		s.update(h)
		return true
	})
	if err != nil {
		return fmt.Errorf("rebuilding producer state: %w", err)
	}
	return nil
}

// producerIDAllocator hands out producer ids unique across the cluster and across restarts: the node id
// occupies the high bits and a counter the low ones. The counter is reserved in blocks whose end is written
// (atomically, fsynced) to the Disk before any id of the block is handed out, so a restart, even after a
// power loss, continues past every id ever given. The first block is reserved when the allocator is made, so
// a producer's first InitProducerId never waits for an fsync.
type producerIDAllocator struct {
	mu    sync.Mutex
	disk  *storage.Disk
	path  string
	node  int64
	next  int64 // next counter value to hand out
	limit int64 // first counter value not yet reserved on disk
}

const (
	producerIDCounterBits = 40
	producerIDBlock       = 1000
)

var errProducerIDsExhausted = errors.New("producer id space of this node exhausted")

func newProducerIDAllocator(disk *storage.Disk, path string, nodeID int32) (*producerIDAllocator, error) {
	a := &producerIDAllocator{disk: disk, path: path, node: int64(nodeID)}
	b, err := disk.ReadFile(path)
	switch {
	case err == nil:
		if len(b) != 8 {
			return nil, fmt.Errorf("producer id block file %s has %d bytes, want 8", path, len(b))
		}
		a.limit = int64(binary.BigEndian.Uint64(b))
		a.next = a.limit
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if err := a.reserveLocked(); err != nil && !errors.Is(err, errProducerIDsExhausted) {
		return nil, err
	}
	return a, nil
}

// allocate returns a fresh producer id.
func (a *producerIDAllocator) allocate() (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next >= a.limit {
		if err := a.reserveLocked(); err != nil {
			return -1, err
		}
	}
	id := a.node<<producerIDCounterBits | a.next
	a.next++
	return id, nil
}

// reserveLocked durably reserves the next block of counter values. Caller holds mu (or owns a).
func (a *producerIDAllocator) reserveLocked() error {
	limit := a.limit + producerIDBlock
	if limit >= 1<<producerIDCounterBits {
		return errProducerIDsExhausted
	}
	if err := a.disk.WriteFileAtomic(a.path, binary.BigEndian.AppendUint64(nil, uint64(limit))); err != nil {
		return fmt.Errorf("reserving producer ids: %w", err)
	}
	a.limit = limit
	return nil
}
