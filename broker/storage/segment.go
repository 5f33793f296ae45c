package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

const (
	logSuffix   = ".log"
	indexSuffix = ".index"
	// segmentNameDigits is Kafka's zero-padded width of a segment's base offset in its file names.
	segmentNameDigits = 20
)

// segment is one log segment: a file of whole batches starting at offset base, and its sparse index. All
// fields are guarded by the Log's lock (the files themselves are safe for concurrent ReadAt).
type segment struct {
	base  int64
	next  int64 // offset after the last batch; == base when empty
	size  int64 // bytes of whole batches; the file never holds more once recovery or an append returns
	log   *File
	index offsetIndex
	// maxTimestamp is the largest batch max timestamp in the segment, -1 when it has none (Kafka's
	// maxTimestampSoFar): timestamp searches skip segments whose records are all older than the target.
	maxTimestamp int64
	// dirty is set by writes and cleared when a Sync picks the segment up: what Sync must fsync.
	dirty bool
}

// segmentFileName is Kafka's name for a segment file: the base offset, zero-padded to 20 digits.
func segmentFileName(base int64, suffix string) string {
	return fmt.Sprintf("%0*d%s", segmentNameDigits, base, suffix)
}

// parseSegmentFileName returns the base offset of a "<20 digits>.log" or ".index" name.
func parseSegmentFileName(name, suffix string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, suffix)
	if !ok || len(digits) != segmentNameDigits {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || base < 0 {
		return 0, false
	}
	return base, true
}

// createSegment creates an empty segment at base (truncating any leftovers of that name).
func createSegment(d *Disk, dir string, base int64) (*segment, error) {
	logFile, err := d.OpenFile(filepath.Join(dir, segmentFileName(base, logSuffix)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating segment %d: %w", base, err)
	}
	indexFile, err := d.OpenFile(filepath.Join(dir, segmentFileName(base, indexSuffix)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("creating index of segment %d: %w", base, err)
	}
	return &segment{base: base, next: base, log: logFile, index: offsetIndex{file: indexFile, base: base},
		maxTimestamp: -1, dirty: true}, nil
}

// readHeaderAt decodes the batch header at byte position pos (no CRC: whole batches were validated when
// appended or recovered).
func (s *segment) readHeaderAt(pos int64) (BatchHeader, error) {
	var b [BatchHeaderSize]byte
	if _, err := s.log.ReadAt(b[:], pos); err != nil {
		return BatchHeader{}, fmt.Errorf("reading batch header at byte %d of %q: %w", pos, s.log.Name(), err)
	}
	h, err := decodeHeader(b[:])
	if err != nil {
		return h, fmt.Errorf("batch header at byte %d of %q: %w", pos, s.log.Name(), err)
	}
	return h, nil
}

// findBatch returns the position and header of the batch containing offset, which must lie in
// [s.base, s.next): the index gives a starting point, then headers are read forward from there.
func (s *segment) findBatch(offset int64) (int64, BatchHeader, error) {
	pos := s.index.lookup(offset)
	for pos < s.size {
		h, err := s.readHeaderAt(pos)
		if err != nil {
			return 0, h, err
		}
		if h.LastOffset() >= offset {
			return pos, h, nil
		}
		pos += int64(h.Size())
	}
	return 0, BatchHeader{}, fmt.Errorf("offset %d not found in segment %d (ends at offset %d, byte %d)",
		offset, s.base, s.next, s.size)
}

// noteAppend records the timestamps of a batch appended to the segment at pos: an index entry when the
// interval rule asks for one (carrying the max timestamp before the batch), and the segment's new max.
func (s *segment) noteAppend(interval int, h BatchHeader, pos int64) error {
	err := s.index.maybeAdd(interval, h.BaseOffset, pos, h.Size(), s.maxTimestamp)
	s.maxTimestamp = max(s.maxTimestamp, h.MaxTimestamp)
	return err
}

// truncateAt cuts the segment at byte position pos, a batch boundary, whose batch starts at offset next.
// The segment's max timestamp is recomputed from the last index entry that survives (headers only).
func (s *segment) truncateAt(pos, next int64) error {
	if err := s.log.Truncate(pos); err != nil {
		return fmt.Errorf("truncating segment %d: %w", s.base, err)
	}
	s.size, s.next = pos, next
	if err := s.index.truncateAt(pos); err != nil {
		return fmt.Errorf("segment %d: %w", s.base, err)
	}
	from, maxTS := int64(0), int64(-1)
	if n := len(s.index.entries); n > 0 {
		from, maxTS = s.index.entries[n-1].pos, s.index.entries[n-1].maxBefore
	}
	for from < s.size {
		h, err := s.readHeaderAt(from)
		if err != nil {
			return fmt.Errorf("segment %d: recomputing its max timestamp after truncation: %w", s.base, err)
		}
		maxTS = max(maxTS, h.MaxTimestamp)
		from += int64(h.Size())
	}
	s.maxTimestamp = maxTS
	return nil
}

// close writes the index's pending entries and releases both files (no fsync).
func (s *segment) close() error {
	return errors.Join(s.index.flush(), s.log.Close(), s.index.file.Close())
}

// remove closes the segment and deletes its files.
func (s *segment) remove(d *Disk) error {
	logName, indexName := s.log.Name(), s.index.file.Name()
	err := s.close()
	for _, p := range []string{logName, indexName} {
		if rmErr := d.Remove(p); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = errors.Join(err, rmErr)
		}
	}
	if err != nil {
		return fmt.Errorf("removing segment %d: %w", s.base, err)
	}
	return nil
}

// readFull reads len(b) bytes at pos, treating a short read as an error.
func readFull(f *File, b []byte, pos int64) error {
	n, err := f.ReadAt(b, pos)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("reading %d bytes at byte %d of %q: %w", len(b), pos, f.Name(), err)
}
