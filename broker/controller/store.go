package controller

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// logStore is raft's log: an append-only journal file fsynced on every write, replayed into memory at open.
// Each journal record is [u32 length][u32 CRC-32C of payload][payload]; a torn or corrupt tail (a crash in the
// middle of a write) is cut off at open, which is safe because a write is acknowledged to raft only after
// its fsync. Memory is bounded by raft's snapshotting, which deletes the log prefix (TrailingLogs kept); the
// journal is rewritten compactly when dead records dominate it. One mutex guards everything.
type logStore struct {
	mu        sync.Mutex
	path      string
	f         *os.File
	size      int64 // journal bytes
	liveBytes int64 // encoded bytes of entries still present
	entries   map[uint64]*raft.Log
	first     uint64
	last      uint64
}

const (
	opStore  byte = 1
	opDelete byte = 2
	// maxRecordBytes bounds one journal record, so a corrupt length cannot make the reader allocate wildly.
	maxRecordBytes = 64 << 20
	// compactSlack is how much dead journal we tolerate before rewriting it.
	compactSlack = 4 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func openLogStore(path string) (*logStore, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open raft log %s: %w", path, err)
	}
	s := &logStore{path: path, f: f, entries: map[uint64]*raft.Log{}}
	good, err := s.replay()
	if err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("cut torn tail of raft log %s at %d: %w", path, good, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek raft log %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync raft log %s: %w", path, err)
	}
	s.size = good
	return s, nil
}

// replay reads every intact record and returns the length of the intact prefix.
func (s *logStore) replay() (int64, error) {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seek raft log %s: %w", s.path, err)
	}
	r := bufio.NewReader(s.f)
	var off int64
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return off, nil // clean end or torn header
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n == 0 || n > maxRecordBytes {
			return off, nil
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			return off, nil
		}
		if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
			return off, nil
		}
		if err := s.applyRecord(payload); err != nil {
			return 0, fmt.Errorf("replay raft log %s at byte %d: %w", s.path, off, err)
		}
		off += 8 + int64(n)
	}
}

func (s *logStore) applyRecord(p []byte) error {
	switch p[0] {
	case opStore:
		logs, err := decodeLogs(p[1:])
		if err != nil {
			return err
		}
		s.put(logs)
	case opDelete:
		if len(p) != 17 {
			return fmt.Errorf("delete record of %d bytes, want 17", len(p))
		}
		s.del(binary.BigEndian.Uint64(p[1:9]), binary.BigEndian.Uint64(p[9:17]))
	default:
		return fmt.Errorf("unknown record op %d", p[0])
	}
	return nil
}

func (s *logStore) put(logs []*raft.Log) {
	for _, l := range logs {
		if old, ok := s.entries[l.Index]; ok {
			s.liveBytes -= encodedLogSize(old)
		}
		s.entries[l.Index] = l
		s.liveBytes += encodedLogSize(l)
		if s.first == 0 || l.Index < s.first {
			s.first = l.Index
		}
		if l.Index > s.last {
			s.last = l.Index
		}
	}
}

func (s *logStore) del(lo, hi uint64) {
	if len(s.entries) == 0 {
		return
	}
	lo, hi = max(lo, s.first), min(hi, s.last)
	for i := lo; i <= hi; i++ {
		if old, ok := s.entries[i]; ok {
			s.liveBytes -= encodedLogSize(old)
			delete(s.entries, i)
		}
	}
	if len(s.entries) == 0 {
		s.first, s.last = 0, 0
		return
	}
	for s.entries[s.first] == nil {
		s.first++
	}
	for s.entries[s.last] == nil {
		s.last--
	}
}

// write appends one record and fsyncs it before returning.
func (s *logStore) write(payload []byte) error {
	if len(payload) > maxRecordBytes {
		return fmt.Errorf("raft log record of %d bytes exceeds %d", len(payload), maxRecordBytes)
	}
	buf := make([]byte, 8+len(payload))
	binary.BigEndian.PutUint32(buf[:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(buf[4:8], crc32.Checksum(payload, castagnoli))
	copy(buf[8:], payload)
	if _, err := s.f.Write(buf); err != nil {
		return fmt.Errorf("append to raft log %s: %w", s.path, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync raft log %s: %w", s.path, err)
	}
	s.size += int64(len(buf))
	return nil
}

func (s *logStore) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first, nil
}

func (s *logStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, nil
}

func (s *logStore) GetLog(index uint64, log *raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.entries[index]
	if !ok {
		return raft.ErrLogNotFound
	}
	*log = *l
	return nil
}

func (s *logStore) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

func (s *logStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	copies := make([]*raft.Log, len(logs))
	for i, l := range logs {
		c := *l
		c.Data = append([]byte(nil), l.Data...)
		c.Extensions = append([]byte(nil), l.Extensions...)
		copies[i] = &c
	}
	payload := append([]byte{opStore}, encodeLogs(copies)...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(payload); err != nil {
		return err
	}
	s.put(copies)
	return nil
}

func (s *logStore) DeleteRange(lo, hi uint64) error {
	payload := make([]byte, 17)
	payload[0] = opDelete
	binary.BigEndian.PutUint64(payload[1:9], lo)
	binary.BigEndian.PutUint64(payload[9:17], hi)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.write(payload); err != nil {
		return err
	}
	s.del(lo, hi)
	if s.size > 2*s.liveBytes+compactSlack {
		return s.compact()
	}
	return nil
}

// compact rewrites the journal as one record holding the live entries: temp file, fsync, rename, dir fsync,
// so a crash leaves either the old or the new journal whole.
func (s *logStore) compact() error {
	logs := make([]*raft.Log, 0, len(s.entries))
	for i := s.first; i <= s.last && len(s.entries) > 0; i++ {
		if l, ok := s.entries[i]; ok {
			logs = append(logs, l)
		}
	}
	var body []byte
	if len(logs) > 0 {
		payload := append([]byte{opStore}, encodeLogs(logs)...)
		body = make([]byte, 8+len(payload))
		binary.BigEndian.PutUint32(body[:4], uint32(len(payload)))
		binary.BigEndian.PutUint32(body[4:8], crc32.Checksum(payload, castagnoli))
		copy(body[8:], payload)
	}
	if err := writeFileAtomic(s.path, body); err != nil {
		return fmt.Errorf("compact raft log: %w", err)
	}
	f, err := os.OpenFile(s.path, os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("reopen compacted raft log %s: %w", s.path, err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return fmt.Errorf("seek compacted raft log %s: %w", s.path, err)
	}
	s.f.Close()
	s.f = f
	s.size = int64(len(body))
	return nil
}

func (s *logStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f.Close()
}

// A log is encoded as index, term, type, appended-at (unix ns), then length-prefixed data and extensions.
func encodeLogs(logs []*raft.Log) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, uint32(len(logs)))
	for _, l := range logs {
		b = binary.BigEndian.AppendUint64(b, l.Index)
		b = binary.BigEndian.AppendUint64(b, l.Term)
		b = append(b, byte(l.Type))
		b = binary.BigEndian.AppendUint64(b, uint64(l.AppendedAt.UnixNano()))
		b = binary.BigEndian.AppendUint32(b, uint32(len(l.Data)))
		b = append(b, l.Data...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(l.Extensions)))
		b = append(b, l.Extensions...)
	}
	return b
}

func encodedLogSize(l *raft.Log) int64 {
	return 8 + 8 + 1 + 8 + 4 + int64(len(l.Data)) + 4 + int64(len(l.Extensions))
}

var errShortLog = errors.New("log record truncated")

func decodeLogs(b []byte) ([]*raft.Log, error) {
	if len(b) < 4 {
		return nil, errShortLog
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(n) > uint64(len(b))/33 {
		return nil, fmt.Errorf("record claims %d logs in %d bytes", n, len(b))
	}
	logs := make([]*raft.Log, 0, n)
	for range n {
		if len(b) < 29 {
			return nil, errShortLog
		}
		l := &raft.Log{Index: binary.BigEndian.Uint64(b), Term: binary.BigEndian.Uint64(b[8:]), Type: raft.LogType(b[16])}
		l.AppendedAt = time.Unix(0, int64(binary.BigEndian.Uint64(b[17:])))
		b = b[25:]
		var err error
		if l.Data, b, err = takeBytes(b); err != nil {
			return nil, err
		}
		if l.Extensions, b, err = takeBytes(b); err != nil {
			return nil, err
		}
		logs = append(logs, l)
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d stray bytes after logs", len(b))
	}
	return logs, nil
}

func takeBytes(b []byte) ([]byte, []byte, error) {
	if len(b) < 4 {
		return nil, nil, errShortLog
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, errShortLog
	}
	if n == 0 {
		return nil, b[4:], nil
	}
	return append([]byte(nil), b[4:4+n]...), b[4+n:], nil
}

// stableStore holds raft's term and vote: a small JSON map rewritten atomically (and fsynced) on every Set,
// which raft does only on term changes and votes.
type stableStore struct {
	mu   sync.Mutex
	path string
	kv   map[string]string // base64 values, so JSON keeps bytes exactly
}

func openStableStore(path string) (*stableStore, error) {
	s := &stableStore{path: path, kv: map[string]string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read raft stable store %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &s.kv); err != nil {
		return nil, fmt.Errorf("decode raft stable store %s: %w", path, err)
	}
	return s, nil
}

func (s *stableStore) Set(key, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[string]string, len(s.kv)+1)
	for k, v := range s.kv {
		next[k] = v
	}
	next[string(key)] = base64.StdEncoding.EncodeToString(val)
	b, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("encode raft stable store: %w", err)
	}
	if err := writeFileAtomic(s.path, b); err != nil {
		return fmt.Errorf("write raft stable store key %q: %w", key, err)
	}
	s.kv = next
	return nil
}

func (s *stableStore) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.kv[string(key)]
	if !ok {
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("decode raft stable store key %q: %w", key, err)
	}
	return b, nil
}

func (s *stableStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

func (s *stableStore) GetUint64(key []byte) (uint64, error) {
	b, err := s.Get(key)
	if err != nil || len(b) == 0 {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("raft stable store key %q holds %d bytes, want 8", key, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// writeFileAtomic replaces path with data durably: temp file, fsync, rename, directory fsync.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temp file for %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp.Name(), path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}
