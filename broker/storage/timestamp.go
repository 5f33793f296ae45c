package storage

import (
	"fmt"
)

// TimestampOffset is what a search by timestamp finds: a record's timestamp and offset, and the partition
// leader epoch of its batch (-1 when the batch has none).
type TimestampOffset struct {
	Timestamp   int64
	Offset      int64
	LeaderEpoch int32
}

// FindOffsetByTimestamp returns the first record at or after offset from whose timestamp is >= target, as
// Kafka's findOffsetByTimestamp does: segments whose max timestamp is below target are skipped, the
// in-memory time index gives a starting batch inside the segment, batch headers are read from there, and the
// records of the first batch whose max timestamp reaches target are decoded to find the record itself.
// Timestamps need not rise with offsets: the first record in offset order wins. ok is false when no record
// qualifies.
func (l *Log) FindOffsetByTimestamp(target, from int64) (found TimestampOffset, ok bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return found, false, fmt.Errorf("storage: searching %q by timestamp: %w", l.dir, ErrClosed)
	}
	from = max(from, l.segs[0].base)
	for _, seg := range l.segs {
		if seg.next <= from || seg.maxTimestamp < target {
			continue
		}
		pos := seg.index.lookupTimestamp(target)
		if from > seg.base {
			p, _, err := seg.findBatch(from)
			if err != nil {
				return found, false, fmt.Errorf("storage: searching %q by timestamp from %d: %w", l.dir, from, err)
			}
			pos = max(pos, p)
		}
		found, ok, err = seg.searchFrom(pos, func(h BatchHeader) bool {
			return h.MaxTimestamp >= target && h.LastOffset() >= from
		}, func(r RecordTimestamp) bool {
			return r.Timestamp >= target && r.Offset >= from
		})
		if err != nil || ok {
			if err != nil {
				err = fmt.Errorf("storage: searching %q for timestamp %d: %w", l.dir, target, err)
			}
			return found, ok, err
		}
	}
	return found, false, nil
}

// MaxTimestampOffset returns the first record (in offset order) carrying the log's largest timestamp, as
// Kafka answers ListOffsets with MAX_TIMESTAMP (-3): the segment with the largest max timestamp, its first
// batch with that max timestamp, and that batch's first record with it. ok is false for a log without
// records, or when no record carries the timestamp its batch header claims (as Kafka, which then finds none).
func (l *Log) MaxTimestampOffset() (found TimestampOffset, ok bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return found, false, fmt.Errorf("storage: searching %q for its max timestamp: %w", l.dir, ErrClosed)
	}
	var best *segment
	for _, seg := range l.segs {
		if seg.size > 0 && (best == nil || seg.maxTimestamp > best.maxTimestamp) {
			best = seg
		}
	}
	if best == nil {
		return found, false, nil
	}
	target := best.maxTimestamp
	found, ok, err = best.searchFrom(best.index.lookupTimestamp(target), func(h BatchHeader) bool {
		return h.MaxTimestamp == target
	}, func(r RecordTimestamp) bool {
		return r.Timestamp == target
	})
	if err != nil {
		err = fmt.Errorf("storage: searching %q for its max timestamp %d: %w", l.dir, target, err)
	}
	return found, ok, err
}

// searchFrom reads batch headers from byte position pos to the segment's end; the records of the first batch
// that batchOK accepts are decoded and the first record recordOK accepts is the answer. A batch whose records
// all fail recordOK does not stop the search. Caller holds the Log's lock (shared is enough).
func (s *segment) searchFrom(pos int64, batchOK func(BatchHeader) bool, recordOK func(RecordTimestamp) bool) (TimestampOffset, bool, error) {
	for pos < s.size {
		h, err := s.readHeaderAt(pos)
		if err != nil {
			return TimestampOffset{}, false, err
		}
		if batchOK(h) {
			batch := make([]byte, h.Size())
			if err := readFull(s.log, batch, pos); err != nil {
				return TimestampOffset{}, false, err
			}
			var found TimestampOffset
			ok := false
			err := ForEachRecord(batch, func(r RecordTimestamp) bool {
				if recordOK(r) {
					found, ok = TimestampOffset{Timestamp: r.Timestamp, Offset: r.Offset, LeaderEpoch: h.PartitionLeaderEpoch}, true
				}
				return !ok
			})
			if err != nil || ok {
				return found, ok, err
			}
		}
		pos += int64(h.Size())
	}
	return TimestampOffset{}, false, nil
}
