package group

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/kafkatrial/kafkatrial/broker/storage"
)

// FileStore is an OffsetStore kept in one append-only file of a storage.Disk: one record per commit,
//
//	length uint32 | crc32c(payload) uint32 | payload
//	payload: version=2 | group (u16 len + bytes) | count u32 | count x
//	         (topic (u16 len + bytes) | partition i32 | kind u8, then for kind 0 (commit):
//	          offset i64 | leader epoch i32 | topic id [16]byte | metadata (u32 len + bytes); kind 1 is a deletion)
//
// Version 1 records (no kind, no topic id: every entry a commit) are still read.
//
// A commit is one record, so a torn write loses whole commits, never half of one. Opening replays the file,
// cuts it at the first record whose length or CRC does not check out (a torn tail), and rewrites it as a
// snapshot (one record per group, atomically) when it has grown well past its live content.
//
// Durability follows the node's flush policy: with syncEveryCommit each Commit fsyncs before returning;
// without it commits sit in the page cache, surviving a process kill but not a power loss (the same trade as
// Kafka's __consumer_offsets with flush left to the OS). Close always fsyncs.
//
// All methods are safe for concurrent use (one mutex serialises them).
type FileStore struct {
	disk *storage.Disk
	path string
	sync bool

	mu        sync.Mutex
	f         *storage.File
	size      int64 // bytes of valid records; the next record goes here
	liveBytes int64 // encoded size of the live state (what a snapshot would take)
	live      map[string]map[TP]Committed
	truncated int64
	commits   int64 // commits appended since open: the position of the latest (file offsets restart at compaction)
	closed    bool
	broken    error // set when a compaction left no usable handle; every later Commit fails with it
}

const (
	recordHeaderBytes = 8
	// maxRecordBytes bounds one commit record (and what recovery will believe a length field).
	maxRecordBytes = 16 << 20
	// compactMinBytes: never rewrite a file smaller than this.
	compactMinBytes = 1 << 20
	recordVersion   = 2
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// OpenFileStore opens (creating if needed) the commit log at path on d and recovers it.
func OpenFileStore(d *storage.Disk, path string, syncEveryCommit bool) (*FileStore, error) {
	s := &FileStore{disk: d, path: path, sync: syncEveryCommit, live: map[string]map[TP]Committed{}}
	f, err := d.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening offset store %s: %w", path, err)
	}
	s.f = f
	if err := s.recover(); err != nil {
		f.Close()
		return nil, err
	}
	if s.size > compactMinBytes && s.size > 2*s.liveBytes {
		if err := s.compactLocked(); err != nil {
			s.f.Close()
			return nil, err
		}
	}
	return s, nil
}

// TruncatedBytes reports how many bytes of torn or corrupt tail recovery cut off when the store was opened.
func (s *FileStore) TruncatedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.truncated
}

// Append commits at once (as Commit) and returns the commit as already durable.
func (s *FileStore) Append(group string, offsets map[TP]Committed) (Pending, error) {
	pos, err := s.commit(group, offsets)
	if err != nil {
		return nil, err
	}
	return storedCommit(pos), nil
}

// Delete records the removal of group's offsets of tps at once (as Append) and returns it as already durable.
func (s *FileStore) Delete(group string, tps []TP) (Pending, error) {
	pos, err := s.write(group, nil, tps)
	if err != nil {
		return nil, err
	}
	return storedCommit(pos), nil
}

// storedCommit is a FileStore commit: durable by the store's policy when Append returned.
type storedCommit int64

func (p storedCommit) Position() int64          { return int64(p) }
func (storedCommit) Wait(context.Context) error { return nil }

// Commit appends one record for the commit (fsyncing it when syncEveryCommit).
func (s *FileStore) Commit(group string, offsets map[TP]Committed) error {
	_, err := s.commit(group, offsets)
	return err
}

// commit appends the commit's record and returns its position (the count of commits since open).
func (s *FileStore) commit(group string, offsets map[TP]Committed) (int64, error) {
	return s.write(group, offsets, nil)
}

// write appends one record setting offsets and deleting deleted, and returns its position.
func (s *FileStore) write(group string, offsets map[TP]Committed, deleted []TP) (int64, error) {
	rec, err := encodeRecord(group, offsets, deleted)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("committing offsets of group %s: %w", group, ErrClosed)
	}
	if s.broken != nil {
		return 0, fmt.Errorf("committing offsets of group %s: %w", group, s.broken)
	}
	if _, err := s.f.WriteAt(rec, s.size); err != nil {
		// Whatever part was written is a torn tail: the next write overwrites it, recovery would cut it.
		return 0, fmt.Errorf("appending offset commit of group %s: %w", group, err)
	}
	if s.sync {
		if err := s.f.Sync(); err != nil {
			return 0, fmt.Errorf("syncing offset commit of group %s: %w", group, err)
		}
	}
	s.size += int64(len(rec))
	s.commits++
	pos := s.commits
	s.apply(group, offsets, deleted)
	if s.size > compactMinBytes && s.size > 4*s.liveBytes {
		// This commit is already stored (in the old file, or in the snapshot if the rename happened), so a
		// failed compaction does not fail it; compactLocked marks the store broken if no file is left to use.
		_ = s.compactLocked()
	}
	return pos, nil
}

// Load returns a copy of every group's latest committed offsets.
func (s *FileStore) Load() (map[string]map[TP]Committed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[TP]Committed, len(s.live))
	for g, offs := range s.live {
		out[g] = maps.Clone(offs)
	}
	return out, nil
}

// Close fsyncs and closes the file (a clean shutdown loses nothing).
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	serr := s.f.Sync()
	cerr := s.f.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("closing offset store %s: %w", s.path, err)
	}
	return nil
}

// Kill closes the file without fsyncing, as a process kill leaves it: written commits stay in the page cache
// (and on disk unless a power loss follows), later Commits fail.
func (s *FileStore) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.f.Close()
}

// apply folds a record into the live state and keeps liveBytes current. Caller holds s.mu.
func (s *FileStore) apply(group string, offsets map[TP]Committed, deleted []TP) {
	if offs := s.live[group]; offs != nil {
		for _, tp := range deleted {
			if old, ok := offs[tp]; ok {
				s.liveBytes -= entryBytes(tp, old)
				delete(offs, tp)
			}
		}
		if len(offs) == 0 && len(offsets) == 0 {
			delete(s.live, group)
			s.liveBytes -= groupBytes(group)
			return
		}
	}
	if len(offsets) == 0 {
		return
	}
	offs := s.live[group]
	if offs == nil {
		offs = map[TP]Committed{}
		s.live[group] = offs
		s.liveBytes += groupBytes(group)
	}
	for tp, c := range offsets {
		if old, ok := offs[tp]; ok {
			s.liveBytes -= entryBytes(tp, old)
		}
		offs[tp] = c
		s.liveBytes += entryBytes(tp, c)
	}
}

func entryBytes(tp TP, c Committed) int64 {
	return int64(2 + len(tp.Topic) + 4 + 1 + 8 + 4 + 16 + 4 + len(c.Metadata))
}

// groupBytes is the encoded size of a record of group without entries.
func groupBytes(group string) int64 { return int64(recordHeaderBytes + 1 + 2 + len(group) + 4) }

// recover replays the file into the live state and cuts a torn or corrupt tail. Caller owns s.
func (s *FileStore) recover() error {
	end, err := s.f.Size()
	if err != nil {
		return fmt.Errorf("sizing offset store %s: %w", s.path, err)
	}
	var pos int64
	hdr := make([]byte, recordHeaderBytes)
	for pos+recordHeaderBytes <= end {
		if _, err := s.f.ReadAt(hdr, pos); err != nil {
			return fmt.Errorf("reading offset store %s at %d: %w", s.path, pos, err)
		}
		n := int64(binary.BigEndian.Uint32(hdr[0:4]))
		if n == 0 || n > maxRecordBytes || pos+recordHeaderBytes+n > end {
			break
		}
		payload := make([]byte, n)
		if _, err := s.f.ReadAt(payload, pos+recordHeaderBytes); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading offset store %s at %d: %w", s.path, pos, err)
		}
		if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(hdr[4:8]) {
			break
		}
		group, offsets, deleted, err := decodePayload(payload)
		if err != nil {
			break // a record that checks out but does not parse is treated like a torn one
		}
		s.apply(group, offsets, deleted)
		pos += recordHeaderBytes + n
	}
	s.size = pos
	if pos < end {
		s.truncated = end - pos
		if err := s.f.Truncate(pos); err != nil {
			return fmt.Errorf("cutting torn tail of offset store %s at %d: %w", s.path, pos, err)
		}
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("syncing offset store %s after cutting its tail: %w", s.path, err)
		}
	}
	return nil
}

// compactLocked rewrites the file as one record per group, atomically, and reopens it. Caller holds s.mu.
func (s *FileStore) compactLocked() error {
	var buf []byte
	for _, g := range slices.Sorted(maps.Keys(s.live)) {
		rec, err := encodeRecord(g, s.live[g], nil)
		if err != nil {
			return fmt.Errorf("compacting offset store %s: %w", s.path, err)
		}
		buf = append(buf, rec...)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("syncing offset store %s before compaction: %w", s.path, err)
	}
	if err := s.disk.WriteFileAtomic(s.path, buf); err != nil {
		return fmt.Errorf("compacting offset store %s: %w", s.path, err)
	}
	f, err := s.disk.OpenFile(s.path, os.O_RDWR, 0o644)
	if err != nil {
		// The old handle now points at a replaced file: appending there would lose commits.
		s.broken = fmt.Errorf("reopening offset store %s after compaction: %w", s.path, err)
		return s.broken
	}
	s.f.Close()
	s.f = f
	s.size = int64(len(buf))
	return nil
}

// encodeRecord frames one record: the commits of offsets, then the deletions of deleted (entries sorted, so
// equal records encode equally).
func encodeRecord(group string, offsets map[TP]Committed, deleted []TP) ([]byte, error) {
	if len(group) > 0xffff {
		return nil, fmt.Errorf("group id of %d bytes: %w", len(group), ErrCommitTooLarge)
	}
	tps := slices.SortedFunc(maps.Keys(offsets), compareTP)
	b := make([]byte, recordHeaderBytes, 64)
	b = append(b, recordVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(group)))
	b = append(b, group...)
	dels := slices.SortedFunc(slices.Values(deleted), compareTP)
	b = binary.BigEndian.AppendUint32(b, uint32(len(tps)+len(dels)))
	entry := func(tp TP, kind byte) error {
		if len(tp.Topic) > 0xffff {
			return fmt.Errorf("topic name of %d bytes: %w", len(tp.Topic), ErrCommitTooLarge)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(tp.Topic)))
		b = append(b, tp.Topic...)
		b = binary.BigEndian.AppendUint32(b, uint32(tp.Partition))
		b = append(b, kind)
		if kind == entryCommit {
			c := offsets[tp]
			b = binary.BigEndian.AppendUint64(b, uint64(c.Offset))
			b = binary.BigEndian.AppendUint32(b, uint32(c.LeaderEpoch))
			b = append(b, c.TopicID[:]...)
			b = binary.BigEndian.AppendUint32(b, uint32(len(c.Metadata)))
			b = append(b, c.Metadata...)
		}
		if len(b)-recordHeaderBytes > maxRecordBytes {
			return fmt.Errorf("commit of group %s exceeds %d bytes: %w", group, maxRecordBytes, ErrCommitTooLarge)
		}
		return nil
	}
	for _, tp := range tps {
		if err := entry(tp, entryCommit); err != nil {
			return nil, err
		}
	}
	for _, tp := range dels {
		if err := entry(tp, entryDelete); err != nil {
			return nil, err
		}
	}
	payload := b[recordHeaderBytes:]
	binary.BigEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[4:8], crc32.Checksum(payload, crcTable))
	return b, nil
}

var errBadRecord = errors.New("malformed offset commit record")

// compareTP orders topic-partitions by topic, then partition.
func compareTP(a, b TP) int {
	return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// Entry kinds of a version 2 record.
const (
	entryCommit byte = 0
	entryDelete byte = 1
)

func decodePayload(p []byte) (group string, offsets map[TP]Committed, deleted []TP, err error) {
	r := reader{b: p}
	version := r.u8()
	if version != 1 && version != recordVersion {
		return "", nil, nil, fmt.Errorf("%w: unknown version %d", errBadRecord, version)
	}
	group = r.str(int(r.u16()))
	n := r.u32()
	if r.err != nil || uint64(n) > uint64(len(p)) {
		return "", nil, nil, errBadRecord
	}
	offsets = make(map[TP]Committed, n)
	for range n {
		tp := TP{Topic: r.str(int(r.u16())), Partition: int32(r.u32())}
		kind := entryCommit
		if version >= 2 {
			kind = r.u8()
		}
		switch kind {
		case entryDelete:
			deleted = append(deleted, tp)
			continue
		case entryCommit:
		default:
			return "", nil, nil, fmt.Errorf("%w: unknown entry kind %d", errBadRecord, kind)
		}
		c := Committed{Offset: int64(r.u64()), LeaderEpoch: int32(r.u32())}
		if version >= 2 {
			copy(c.TopicID[:], r.take(16))
		}
		c.Metadata = r.str(int(r.u32()))
		if r.err != nil {
			return "", nil, nil, errBadRecord
		}
		offsets[tp] = c
	}
	if r.err != nil || len(r.b) != 0 {
		return "", nil, nil, errBadRecord
	}
	return group, offsets, deleted, nil
}

// reader decodes big-endian fields, remembering the first overrun instead of panicking.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errBadRecord
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) str(n int) string { return string(r.take(n)) }
