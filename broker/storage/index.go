package storage

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// indexEntrySize is the on-disk size of one offset index entry: the batch's base offset relative to the
// segment base (uint32) and its byte position in the segment (uint32), big-endian, like Kafka's .index.
const indexEntrySize = 8

// indexWriteBlock is how many bytes of new entries are gathered before they are written to the file.
const indexWriteBlock = 4096

// offsetIndex is a segment's sparse offset index: one entry every IndexIntervalBytes of log, mapping a batch's
// base offset to its position. Lookups use the in-memory entries; the file mirrors them so a reopened log can
// tell whether it is intact (recovery compares it with what the scan rebuilds and rewrites it if not).
// New entries are written in blocks (indexWriteBlock), not one system call per batch: Kafka's index is
// memory-mapped for the same reason. The file may therefore lag the entries; recovery rebuilds it then.
// Kafka keys entries by a batch's last offset; this index keys them by base offset, which finds the same
// batch. It is guarded by the Log's lock.
type offsetIndex struct {
	file    *File
	base    int64
	entries []indexEntry
	written int    // entries already in the file
	pending []byte // encoded entries[written:], not yet written
	// bytesSince counts the log bytes appended since the last entry was added (Kafka's
	// bytesSinceLastIndexEntry); an entry is added before a batch once it exceeds the interval.
	bytesSince int64
}

type indexEntry struct {
	offset int64 // absolute base offset of the batch
	pos    int64 // byte position of the batch in the segment
	// maxBefore is the largest batch max timestamp of the segment's batches before pos (-1 when none): the
	// in-memory time index (Kafka's .timeindex maps a max-so-far timestamp to an offset the same way). It is
	// not in the file: recovery rebuilds every entry from its scan of the batches.
	maxBefore int64
}

// lookup returns the position of the last indexed batch whose base offset is <= offset, or 0: the place to
// start scanning headers for the batch containing offset.
func (ix *offsetIndex) lookup(offset int64) int64 {
	i := sort.Search(len(ix.entries), func(i int) bool { return ix.entries[i].offset > offset })
	if i == 0 {
		return 0
	}
	return ix.entries[i-1].pos
}

// lookupTimestamp returns the position of the last indexed batch before which every batch of the segment has
// a max timestamp below target, or 0: the place to start scanning headers for the first record at or after
// target. Entries' maxBefore never decreases, so a binary search finds it.
func (ix *offsetIndex) lookupTimestamp(target int64) int64 {
	i := sort.Search(len(ix.entries), func(i int) bool { return ix.entries[i].maxBefore >= target })
	if i == 0 {
		return 0
	}
	return ix.entries[i-1].pos
}

// maybeAdd applies the interval rule for a batch of size bytes about to sit at pos, adding an entry and
// writing it to the file when due; maxBefore is the segment's largest timestamp before the batch. The
// recovery scan calls it with file == nil to rebuild entries exactly as appends made them.
func (ix *offsetIndex) maybeAdd(interval int, base, pos int64, size int, maxBefore int64) error {
	if ix.bytesSince > int64(interval) {
		ix.entries = append(ix.entries, indexEntry{offset: base, pos: pos, maxBefore: maxBefore})
		ix.bytesSince = 0
		if ix.file != nil {
			var b [indexEntrySize]byte
			putIndexEntry(b[:], ix.base, ix.entries[len(ix.entries)-1])
			ix.pending = append(ix.pending, b[:]...)
		}
	}
	ix.bytesSince += int64(size)
	if len(ix.pending) >= indexWriteBlock {
		return ix.flush()
	}
	return nil
}

// flush writes the pending entries to the file (no fsync: the index is rebuilt by recovery when short).
func (ix *offsetIndex) flush() error {
	if len(ix.pending) == 0 || ix.file == nil {
		return nil
	}
	n := len(ix.pending) / indexEntrySize
	if _, err := ix.file.WriteAt(ix.pending, int64(ix.written)*indexEntrySize); err != nil {
		return fmt.Errorf("writing %d offset index entries to %q: %w", n, ix.file.Name(), err)
	}
	ix.written += n
	ix.pending = ix.pending[:0]
	return nil
}

// truncateAt drops the entries of batches at or after byte position cut, which becomes the segment's end.
func (ix *offsetIndex) truncateAt(cut int64) error {
	i := sort.Search(len(ix.entries), func(i int) bool { return ix.entries[i].pos >= cut })
	ix.entries = ix.entries[:i]
	ix.bytesSince = cut
	if i > 0 {
		ix.bytesSince = cut - ix.entries[i-1].pos
	}
	if i >= ix.written {
		ix.pending = ix.pending[:(i-ix.written)*indexEntrySize]
		return nil
	}
	ix.written, ix.pending = i, ix.pending[:0]
	if ix.file != nil {
		if err := ix.file.Truncate(int64(i) * indexEntrySize); err != nil {
			return fmt.Errorf("truncating offset index: %w", err)
		}
	}
	return nil
}

func putIndexEntry(b []byte, base int64, e indexEntry) {
	binary.BigEndian.PutUint32(b[0:], uint32(e.offset-base))
	binary.BigEndian.PutUint32(b[4:], uint32(e.pos))
}

// encodeIndex is the file content for entries.
func encodeIndex(base int64, entries []indexEntry) []byte {
	b := make([]byte, len(entries)*indexEntrySize)
	for i, e := range entries {
		putIndexEntry(b[i*indexEntrySize:], base, e)
	}
	return b
}
