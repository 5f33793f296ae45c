package workloads

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/kafkatrial/kafkatrial/history"
)

// ResultStore is the "direct" consumer's own store: per partition, the results of processing and the next
// offset to read, always written together in one atomic write. A consumer using it resumes from the store and
// never from the broker's committed offset, so a crash can neither lose nor repeat a result. It outlives the
// consumers that use it (a restarted consumer is handed the same store). With a path the state is a file
// replaced atomically (temp file, fsync, rename, directory fsync); without, it lives in memory only.
type ResultStore struct {
	path string

	mu    sync.Mutex // guards state
	state map[history.TopicPartition]PartitionResult
}

// PartitionResult is one partition's processed results and position. The result of processing is a count and
// an order-sensitive digest of the values processed, so two histories that processed different records, or the
// same records in another order, end with different results.
type PartitionResult struct {
	Next   int64  `json:"next"`   // the next offset to process
	Count  int64  `json:"count"`  // records processed
	Digest uint64 `json:"digest"` // FNV-1a chain over the processed values
}

// storeEntry is one line of the store file.
type storeEntry struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	PartitionResult
}

// NewResultStore opens the store at path, loading it if the file exists; an empty path keeps it in memory.
func NewResultStore(path string) (*ResultStore, error) {
	s := &ResultStore{path: path, state: make(map[history.TopicPartition]PartitionResult)}
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading result store: %w", err)
	}
	var entries []storeEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("decoding result store %s: %w", path, err)
	}
	for _, e := range entries {
		s.state[history.TopicPartition{Topic: e.Topic, Partition: e.Partition}] = e.PartitionResult
	}
	return s, nil
}

// Snapshot returns a copy of the stored state.
func (s *ResultStore) Snapshot() map[history.TopicPartition]PartitionResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[history.TopicPartition]PartitionResult, len(s.state))
	for tp, r := range s.state {
		out[tp] = r
	}
	return out
}

// Apply processes records into the results of their partitions and stores results and next offsets in one
// atomic write. Records must follow the stored position of their partition (no gap checks: a consumer that
// skipped records is an anomaly the checker must see, not one the store hides). It returns the positions
// written.
func (s *ResultStore) Apply(records []history.Record) ([]history.Position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := make(map[history.TopicPartition]PartitionResult, len(s.state))
	for tp, r := range s.state {
		next[tp] = r
	}
	var order []history.TopicPartition
	for _, r := range records {
		tp := r.TP()
		pr := next[tp]
		if !containsTP(order, tp) {
			order = append(order, tp)
		}
		pr.Count++
		pr.Digest = digest(pr.Digest, r.Value)
		pr.Next = r.Offset + 1
		next[tp] = pr
	}
	if err := s.write(next); err != nil {
		return nil, err
	}
	s.state = next
	out := make([]history.Position, 0, len(order))
	for _, tp := range order {
		out = append(out, history.Position{Topic: tp.Topic, Partition: tp.Partition, Offset: next[tp].Next})
	}
	return out, nil
}

func containsTP(tps []history.TopicPartition, tp history.TopicPartition) bool {
	for _, t := range tps {
		if t == tp {
			return true
		}
	}
	return false
}

// digest chains value into d.
func digest(d uint64, value string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(d >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(value))
	return h.Sum64()
}

// write replaces the store file with state in one atomic step. Called locked.
func (s *ResultStore) write(state map[history.TopicPartition]PartitionResult) error {
	if s.path == "" {
		return nil
	}
	entries := make([]storeEntry, 0, len(state))
	for tp, r := range state {
		entries = append(entries, storeEntry{Topic: tp.Topic, Partition: tp.Partition, PartitionResult: r})
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return fmt.Errorf("encoding result store: %w", err)
	}
	dir := filepath.Dir(s.path)
	f, err := os.CreateTemp(dir, ".results-*")
	if err != nil {
		return fmt.Errorf("writing result store: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing result store %s: %w", s.path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing result store directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing result store directory: %w", err)
	}
	return nil
}
