package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOffsetOutOfRange is returned by Read for an offset outside [StartOffset, EndOffset].
var ErrOffsetOutOfRange = errors.New("offset out of range")

// ErrUnexpectedOffset is returned by AppendFollower when batches do not start exactly at EndOffset or do not
// follow on from each other (Kafka's UnexpectedAppendOffsetException).
var ErrUnexpectedOffset = errors.New("batches do not continue the log")

// ErrClosed is returned by every Log method after Close or Delete.
var ErrClosed = errors.New("log is closed")

// Defaults of Config, Kafka's own.
const (
	DefaultSegmentBytes       = 1 << 30 // log.segment.bytes
	DefaultIndexIntervalBytes = 4096    // log.index.interval.bytes
)

// Config is a partition log's configuration. Zero values take the defaults named on each field.
type Config struct {
	// SegmentBytes is log.segment.bytes: a segment rolls before an append would take it past this size
	// (a segment holds at least one append). Default 1 GiB; at most 2 GiB - 1 (positions are 32-bit).
	SegmentBytes int64
	// IndexIntervalBytes is log.index.interval.bytes: bytes of log between offset index entries. Default 4096.
	IndexIntervalBytes int
	// FlushMessages is log.flush.interval.messages: fsync once this many records were appended since the last
	// fsync, before the append returns. 0 never flushes on count, leaving durability to the page cache as
	// Kafka's default does.
	FlushMessages int64
	// FlushInterval is log.flush.interval.ms: fsync unsynced data this often in the background. 0 = never.
	FlushInterval time.Duration
	// Logger receives recovery and flush failures. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case c.SegmentBytes < BatchHeaderSize || c.SegmentBytes > math.MaxInt32:
		return c, fmt.Errorf("log.segment.bytes %d must be in [%d, %d]", c.SegmentBytes, BatchHeaderSize, math.MaxInt32)
	case c.IndexIntervalBytes < 0:
		return c, fmt.Errorf("log.index.interval.bytes %d must not be negative", c.IndexIntervalBytes)
	case c.FlushMessages < 0:
		return c, fmt.Errorf("log.flush.interval.messages %d must not be negative (0 = never)", c.FlushMessages)
	case c.FlushInterval < 0:
		return c, fmt.Errorf("log.flush.interval.ms %v must not be negative (0 = never)", c.FlushInterval)
	}
	return c, nil
}

// Log is one partition replica's log on a Disk: segments of raw record batches, a sparse offset index per
// segment and the leader-epoch cache.
//
// Locking: mu guards the segment list, each segment's fields, the unflushed count and closed; appends and
// truncation hold it exclusively, reads and scans shared. flushMu serialises fsyncs with each other and with
// anything that closes or deletes segment files (TruncateTo, Close), so an fsync runs without mu: reads and
// appends never wait behind one. end is atomic so EndOffset and the epoch cache read it lock-free.
// Lock order: flushMu, then mu, then the epoch cache's own lock.
type Log struct {
	disk *Disk
	dir  string
	cfg  Config

	flushMu sync.Mutex
	mu      sync.RWMutex
	end     atomic.Int64
	start   atomic.Int64 // fixed at recovery: nothing deletes from the front yet
	segs    []*segment   // by base offset; the last is the active one
	epochs  *EpochCache
	// unflushed counts records appended since the last fsync began, for log.flush.interval.messages.
	unflushed int64
	closed    bool

	flushReq chan struct{} // asks the flusher to fsync rolled segments (buffered 1: requests merge)
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// Open opens (creating if needed) the log in dir on d and recovers it: every batch is checked by CRC and
// offset continuity, a torn or corrupt tail is cut (and logged), segments past a corruption are deleted,
// offset indexes are rebuilt when missing or inconsistent and the epoch cache loses entries past the end.
func Open(d *Disk, dir string, cfg Config) (*Log, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("storage: opening log %q: %w", dir, err)
	}
	if err := d.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("storage: opening log %q: %w", dir, err)
	}
	l := &Log{
		disk:     d,
		dir:      dir,
		cfg:      cfg,
		flushReq: make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	l.epochs = &EpochCache{disk: d, path: filepath.Join(dir, epochCheckpointName), logEnd: l.end.Load}
	if err := l.recover(); err != nil {
		for _, s := range l.segs {
			_ = s.close()
		}
		return nil, fmt.Errorf("storage: recovering log %q: %w", dir, err)
	}
	go l.flusher()
	return l, nil
}

// Dir is the log's directory (as given to Open).
func (l *Log) Dir() string { return l.dir }

// StartOffset is the first offset the log holds (the base of its oldest segment).
func (l *Log) StartOffset() int64 { return l.start.Load() }

// EndOffset is the offset the next appended record gets (Kafka's log end offset).
func (l *Log) EndOffset() int64 { return l.end.Load() }

// Epochs is the log's leader-epoch cache.
func (l *Log) Epochs() *EpochCache { return l.epochs }

// AppendLeader appends one batch as the partition leader: it validates the batch (CRC included), patches its
// base offset to EndOffset and its partition leader epoch to epoch in place (the caller's buffer is written
// as is, not copied), records epoch in the cache if it is new, and returns the base offset given. If the
// append crosses log.flush.interval.messages it fsyncs before returning.
func (l *Log) AppendLeader(batch []byte, epoch int32) (base int64, err error) {
	h, err := ParseBatch(batch)
	if err != nil {
		return -1, fmt.Errorf("storage: leader append to %q: %w", l.dir, err)
	}
	if h.Size() != len(batch) {
		return -1, fmt.Errorf("storage: leader append to %q: %w: %d trailing bytes after the batch",
			l.dir, ErrCorruptBatch, len(batch)-h.Size())
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return -1, fmt.Errorf("storage: leader append to %q: %w", l.dir, ErrClosed)
	}
	base = l.end.Load()
	PatchBaseOffset(batch, base)
	PatchLeaderEpoch(batch, epoch)
	h.BaseOffset, h.PartitionLeaderEpoch = base, epoch
	hs := [1]BatchHeader{h}
	flush, err := l.appendLocked(batch, hs[:])
	l.mu.Unlock()
	if err != nil {
		return -1, fmt.Errorf("storage: leader append to %q at offset %d: %w", l.dir, base, err)
	}
	if flush {
		if err := l.Sync(); err != nil {
			return -1, fmt.Errorf("storage: leader append to %q at offset %d: %w", l.dir, base, err)
		}
	}
	return base, nil
}

// AppendFollower appends batches fetched from the leader as they are: they must be valid (CRC included),
// start exactly at EndOffset and follow on from each other; nothing is appended otherwise. Each batch's epoch
// is recorded at its base offset with the cache's assign rule (Kafka's maybeAssignEpochStartOffset per batch).
func (l *Log) AppendFollower(batches []byte) error {
	_, err := l.AppendFollowerBatches(batches)
	return err
}

// AppendFollowerBatches is AppendFollower returning the appended batches' headers, so a caller that keeps
// state per batch (idempotent producer state) follows the log without parsing the batches again.
func (l *Log) AppendFollowerBatches(batches []byte) ([]BatchHeader, error) {
	if len(batches) == 0 {
		return nil, nil
	}
	var hs []BatchHeader
	err := SplitBatches(batches, func(_ []byte, h BatchHeader) error {
		if n := len(hs); n > 0 && h.BaseOffset != hs[n-1].NextOffset() {
			return fmt.Errorf("%w: batch at offset %d follows one ending at %d", ErrUnexpectedOffset,
				h.BaseOffset, hs[n-1].NextOffset())
		}
		hs = append(hs, h)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("storage: follower append to %q: %w", l.dir, err)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, fmt.Errorf("storage: follower append to %q: %w", l.dir, ErrClosed)
	}
	if end := l.end.Load(); hs[0].BaseOffset != end {
		l.mu.Unlock()
		return nil, fmt.Errorf("storage: follower append to %q: %w: batches start at %d, log ends at %d",
			l.dir, ErrUnexpectedOffset, hs[0].BaseOffset, end)
	}
	flush, err := l.appendLocked(batches, hs)
	l.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("storage: follower append to %q at offset %d: %w", l.dir, hs[0].BaseOffset, err)
	}
	if flush {
		if err := l.Sync(); err != nil {
			return nil, fmt.Errorf("storage: follower append to %q at offset %d: %w", l.dir, hs[0].BaseOffset, err)
		}
	}
	return hs, nil
}

// appendLocked writes validated, contiguous batches (data, described by hs) at the end of the log, rolling
// first if they would overflow the active segment. It reports whether the flush policy now asks for an
// fsync. Caller holds mu exclusively.
func (l *Log) appendLocked(data []byte, hs []BatchHeader) (flush bool, err error) {
	last := hs[len(hs)-1]
	seg := l.segs[len(l.segs)-1]
	if seg.size > 0 && (seg.size+int64(len(data)) > l.cfg.SegmentBytes || last.LastOffset()-seg.base > math.MaxInt32) {
		if seg, err = l.rollLocked(hs[0].BaseOffset); err != nil {
			return false, err
		}
	}
	if seg.size+int64(len(data)) > math.MaxInt32 {
		return false, fmt.Errorf("%d bytes do not fit a segment (positions are 32-bit)", len(data))
	}
	// Epochs first, as Kafka does: a checkpoint that runs ahead of the data is trimmed by recovery, one that
	// lags behind would make OffsetForLeaderEpoch answers wrong.
	// Every batch goes through the cache's assign rule (Kafka's maybeAssignEpochStartOffset per batch): a
	// repeat of the latest epoch is free, and a follower's batch of an epoch at or below an entry it holds
	// at or past that offset replaces the contradicted entries.
	for _, h := range hs {
		if err := l.epochs.assign(h.PartitionLeaderEpoch, h.BaseOffset); err != nil {
			return false, err
		}
	}
	pos := seg.size
	if _, err := seg.log.WriteAt(data, pos); err != nil {
		// Never leave a partial batch behind: later appends would follow garbage. If the cut fails too,
		// recovery will cut it at the next open; refuse further appends until then.
		if tErr := seg.log.Truncate(pos); tErr != nil {
			l.closed = true
			err = errors.Join(err, fmt.Errorf("log closed: %w", tErr))
		}
		return false, errors.Join(fmt.Errorf("writing %d bytes at byte %d of %q: %w", len(data), pos,
			seg.log.Name(), err), l.epochs.truncateFromEnd(hs[0].BaseOffset))
	}
	var records int64
	var indexErr error
	for _, h := range hs {
		if err := seg.noteAppend(l.cfg.IndexIntervalBytes, h, pos); err != nil && indexErr == nil {
			indexErr = err
		}
		pos += int64(h.Size())
		records += int64(h.NumRecords)
	}
	if indexErr != nil {
		// The index is derived data: the in-memory entries serve reads, and recovery rewrites the file.
		l.cfg.Logger.Warn("storage: offset index write failed; it will be rebuilt at the next open",
			"log", l.dir, "err", indexErr)
	}
	seg.size = pos
	seg.next = last.NextOffset()
	seg.dirty = true
	l.end.Store(seg.next)
	l.unflushed += records
	return l.cfg.FlushMessages > 0 && l.unflushed >= l.cfg.FlushMessages, nil
}

// rollLocked starts a new active segment at base and asks the flusher to fsync the rolled one, as Kafka
// flushes a segment (asynchronously) when it rolls. Caller holds mu exclusively.
func (l *Log) rollLocked(base int64) (*segment, error) {
	if err := l.segs[len(l.segs)-1].index.flush(); err != nil {
		l.cfg.Logger.Warn("storage: offset index write failed; it will be rebuilt at the next open",
			"log", l.dir, "err", err)
	}
	seg, err := createSegment(l.disk, l.dir, base)
	if err != nil {
		return nil, fmt.Errorf("rolling: %w", err)
	}
	l.segs = append(l.segs, seg)
	select {
	case l.flushReq <- struct{}{}:
	default:
	}
	return seg, nil
}

// Read returns whole raw batches starting with the batch that contains offset, as many as fit in maxBytes
// but always at least one, stopping before any batch whose base offset is >= upTo (the high watermark for
// consumers; pass EndOffset or math.MaxInt64 for no cap) and at the end of the segment. offset == EndOffset
// gives an empty result; an offset outside [StartOffset, EndOffset] gives ErrOffsetOutOfRange. The result is
// freshly allocated and filled by one read of the segment file.
func (l *Log) Read(offset int64, maxBytes int, upTo int64) ([]byte, error) {
	b, err := l.ReadAppend(nil, offset, maxBytes, upTo)
	if len(b) == 0 {
		return nil, err
	}
	return b[:len(b):len(b)], err
}

// ReadAppend is Read appending the batches to dst (growing it only when its spare capacity is short), so a
// caller that serves many reads reuses one buffer. It returns dst extended by the batches read; on an error
// or an empty read, dst unchanged.
func (l *Log) ReadAppend(dst []byte, offset int64, maxBytes int, upTo int64) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return dst, fmt.Errorf("storage: reading %q: %w", l.dir, ErrClosed)
	}
	start, end := l.segs[0].base, l.end.Load()
	if offset < start || offset > end {
		return dst, fmt.Errorf("storage: reading %q at offset %d: %w: log holds [%d, %d)", l.dir, offset,
			ErrOffsetOutOfRange, start, end)
	}
	if offset == end {
		return dst, nil
	}
	seg := l.segmentForLocked(offset)
	pos, h, err := seg.findBatch(offset)
	if err != nil {
		return dst, fmt.Errorf("storage: reading %q at offset %d: %w", l.dir, offset, err)
	}
	if h.BaseOffset >= upTo {
		return dst, nil
	}
	n := int(max(min(int64(maxBytes), seg.size-pos), int64(h.Size())))
	out := slices.Grow(dst, n)
	buf := out[len(dst) : len(dst)+n]
	if err := readFull(seg.log, buf, pos); err != nil {
		return dst, fmt.Errorf("storage: reading %q at offset %d: %w", l.dir, offset, err)
	}
	// Keep whole batches below upTo; only base offsets and lengths are looked at.
	used := h.Size()
	for used+batchLogOverhead <= len(buf) {
		b := buf[used:]
		size := batchLogOverhead + int(int32(binary.BigEndian.Uint32(b[offLength:])))
		if size > len(b) || int64(binary.BigEndian.Uint64(b[offBaseOffset:])) >= upTo {
			break
		}
		used += size
	}
	return out[:len(dst)+used], nil
}

// segmentForLocked returns the segment whose range holds offset (the last with base <= offset).
func (l *Log) segmentForLocked(offset int64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })
	return l.segs[max(i-1, 0)]
}

// ScanBatches calls fn with the header of every batch from the one containing from to the end, in order,
// until fn returns false. fn runs under the log's read lock and must not call back into the Log.
func (l *Log) ScanBatches(from int64, fn func(BatchHeader) bool) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return fmt.Errorf("storage: scanning %q: %w", l.dir, ErrClosed)
	}
	from = max(from, l.segs[0].base)
	if from >= l.end.Load() {
		return nil
	}
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > from }) - 1
	pos, _, err := l.segs[i].findBatch(from)
	if err != nil {
		return fmt.Errorf("storage: scanning %q from %d: %w", l.dir, from, err)
	}
	for ; i < len(l.segs); i, pos = i+1, 0 {
		seg := l.segs[i]
		for pos < seg.size {
			h, err := seg.readHeaderAt(pos)
			if err != nil {
				return fmt.Errorf("storage: scanning %q: %w", l.dir, err)
			}
			if !fn(h) {
				return nil
			}
			pos += int64(h.Size())
		}
	}
	return nil
}

// TruncateTo drops every batch whose last offset is >= offset (Kafka cuts at batch boundaries, so the new
// EndOffset is the base of the first dropped batch, which may be below offset), and every epoch-cache entry
// starting at or after the new end. An offset at or past EndOffset cuts no record but still drops epoch
// entries starting at or after EndOffset. The cut is durable at once (see the package doc).
func (l *Log) TruncateTo(offset int64) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("storage: truncating %q: %w", l.dir, ErrClosed)
	}
	if end := l.end.Load(); offset >= end {
		// No record is cut, but an epoch assigned at the log end and never written to (a leader that was
		// elected and deposed before any append) must still go, as Kafka's truncateTo drops it.
		if err := l.epochs.truncateFromEnd(end); err != nil {
			return fmt.Errorf("storage: truncating %q to %d: %w", l.dir, offset, err)
		}
		return nil
	}
	offset = max(offset, l.segs[0].base)
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset }) - 1
	seg := l.segs[i]
	pos, next := seg.size, seg.next
	if offset < seg.next {
		p, h, err := seg.findBatch(offset)
		if err != nil {
			return fmt.Errorf("storage: truncating %q to %d: %w", l.dir, offset, err)
		}
		pos, next = p, h.BaseOffset
	}
	var errs []error
	for _, later := range l.segs[i+1:] {
		if err := later.remove(l.disk); err != nil {
			errs = append(errs, err)
		}
	}
	l.segs = l.segs[:i+1]
	if err := seg.truncateAt(pos, next); err != nil {
		errs = append(errs, err)
	}
	l.end.Store(seg.next)
	if err := l.epochs.truncateFromEnd(seg.next); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storage: truncating %q to %d: %w", l.dir, offset, err)
	}
	return nil
}

// AssignEpoch records that leader epoch epoch starts at offset start (a new leader does this at its log end
// when elected, before it appends). Entries it contradicts are replaced, as in Kafka.
func (l *Log) AssignEpoch(epoch int32, start int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("storage: assigning epoch in %q: %w", l.dir, ErrClosed)
	}
	if err := l.epochs.assign(epoch, start); err != nil {
		return fmt.Errorf("storage: assigning epoch %d at %d in %q: %w", epoch, start, l.dir, err)
	}
	return nil
}

// Sync fsyncs every segment written since the last fsync. Concurrent callers share one fsync where they can
// (group commit). Reads and appends proceed while it runs.
func (l *Log) Sync() error { return l.sync(false) }

// sync fsyncs dirty segments; rolledOnly skips the active one (the flush Kafka does when a segment rolls).
func (l *Log) sync(rolledOnly bool) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("storage: syncing %q: %w", l.dir, ErrClosed)
	}
	segs := l.segs
	if rolledOnly {
		segs = segs[:len(segs)-1]
	}
	var dirty []*segment
	for _, s := range segs {
		if s.dirty {
			dirty = append(dirty, s)
			s.dirty = false
		}
	}
	if !rolledOnly {
		l.unflushed = 0
	}
	l.mu.Unlock()
	for i, s := range dirty {
		if err := s.log.Sync(); err != nil {
			l.mu.Lock()
			for _, s := range dirty[i:] {
				s.dirty = true
			}
			l.mu.Unlock()
			return fmt.Errorf("storage: syncing %q: %w", l.dir, err)
		}
	}
	return nil
}

// flusher runs log.flush.interval.ms and the flush of rolled segments in the background.
func (l *Log) flusher() {
	defer close(l.done)
	var tick <-chan time.Time
	if l.cfg.FlushInterval > 0 {
		t := time.NewTicker(l.cfg.FlushInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		var err error
		select {
		case <-l.stop:
			return
		case <-tick:
			err = l.sync(false)
		case <-l.flushReq:
			err = l.sync(true)
		}
		if err != nil && !errors.Is(err, ErrClosed) {
			l.cfg.Logger.Error("storage: background flush failed", "log", l.dir, "err", err)
		}
	}
}

// Close stops the log and releases its files WITHOUT fsyncing: like a process exiting, it leaves unsynced
// writes to the page cache, where a kill cannot touch them but a power loss can. A clean shutdown calls Sync
// first, as Kafka flushes its logs on a controlled shutdown.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed && l.segs == nil {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, s := range l.segs {
		errs = append(errs, s.close())
	}
	l.segs = nil
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storage: closing %q: %w", l.dir, err)
	}
	return nil
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	closeErr := l.Close()
	if err := l.disk.RemoveAll(l.dir); err != nil {
		return errors.Join(closeErr, fmt.Errorf("storage: deleting %q: %w", l.dir, err))
	}
	return closeErr
}
