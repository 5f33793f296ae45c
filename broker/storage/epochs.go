package storage

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// UndefinedEpoch and UndefinedEpochOffset are Kafka's "no answer" values for OffsetForLeaderEpoch.
const (
	UndefinedEpoch       int32 = -1
	UndefinedEpochOffset int64 = -1
)

// epochCheckpointName is the per-partition file holding the cache, as Kafka names it.
const epochCheckpointName = "leader-epoch-checkpoint"

// epochCheckpointMaxBytes bounds what is read back: the cache has one line per leader change.
const epochCheckpointMaxBytes = 16 << 20

// EpochEntry says that leader epoch Epoch wrote its first record at StartOffset.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// EpochCache is a partition's leader-epoch cache, with Kafka's LeaderEpochFileCache semantics: entries are
// strictly increasing in both epoch and start offset; every change is written to the checkpoint file
// atomically before it is visible. It is safe for concurrent use (mu guards entries); the Log mutates it
// only while holding its own lock, so log contents and cache move together.
type EpochCache struct {
	disk   *Disk
	path   string
	logEnd func() int64 // the log end offset, read lock-free (answers for the latest epoch)

	mu      sync.RWMutex
	entries []EpochEntry
}

// Latest returns the newest epoch and its start offset, or (UndefinedEpoch, UndefinedEpochOffset) if the
// cache is empty.
func (c *EpochCache) Latest() (epoch int32, start int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.entries) == 0 {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	e := c.entries[len(c.entries)-1]
	return e.Epoch, e.StartOffset
}

// Entries returns a copy of the cache, oldest first.
func (c *EpochCache) Entries() []EpochEntry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]EpochEntry(nil), c.entries...)
}

// EndOffsetFor answers OffsetForLeaderEpoch for this replica, as Kafka's LeaderEpochFileCache.endOffsetFor:
//   - requested is the latest epoch: (requested, log end offset);
//   - some epoch is newer than requested: the start offset of the first newer epoch, paired with the
//     largest known epoch <= requested; when requested is below every known epoch Kafka pairs that start
//     offset with the requested epoch itself (the data before it is gone, so the caller truncates there);
//   - requested is UndefinedEpoch, newer than every known epoch, or the cache is empty:
//     (UndefinedEpoch, UndefinedEpochOffset).
func (c *EpochCache) EndOffsetFor(requested int32) (int32, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if requested == UndefinedEpoch || len(c.entries) == 0 {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if c.entries[len(c.entries)-1].Epoch == requested {
		return requested, c.logEnd()
	}
	higher := -1
	for i, e := range c.entries {
		if e.Epoch > requested {
			higher = i
			break
		}
	}
	switch {
	case higher < 0:
		return UndefinedEpoch, UndefinedEpochOffset
	case higher == 0:
		return requested, c.entries[0].StartOffset
	default:
		return c.entries[higher-1].Epoch, c.entries[higher].StartOffset
	}
}

// assign records that epoch starts at start, as Kafka's assign: a repeat of the latest epoch is a no-op, and
// entries that would break monotonicity (epoch >= epoch or start offset >= start) are replaced. Callers hold
// the Log's lock. The checkpoint is written before the change becomes visible.
func (c *EpochCache) assign(epoch int32, start int64) error {
	c.mu.RLock()
	next, changed := assignEntries(c.entries, epoch, start)
	c.mu.RUnlock()
	if !changed {
		return nil
	}
	return c.replace(next)
}

// assignEntries is assign on a plain slice: it returns the new entries (never aliasing entries) and whether
// anything changed.
func assignEntries(entries []EpochEntry, epoch int32, start int64) ([]EpochEntry, bool) {
	if epoch < 0 {
		return entries, false // batches from before leader epochs existed carry -1: nothing to record
	}
	n := len(entries)
	if n > 0 && entries[n-1].Epoch == epoch && entries[n-1].StartOffset <= start {
		return entries, false
	}
	next := make([]EpochEntry, 0, n+1)
	for _, e := range entries {
		if e.Epoch < epoch && e.StartOffset < start {
			next = append(next, e)
		}
	}
	return append(next, EpochEntry{Epoch: epoch, StartOffset: start}), true
}

// truncateEntries drops entries starting at or after end, returning a new slice when anything goes.
func truncateEntries(entries []EpochEntry, end int64) ([]EpochEntry, bool) {
	keep := len(entries)
	for keep > 0 && entries[keep-1].StartOffset >= end {
		keep--
	}
	if keep == len(entries) {
		return entries, false
	}
	return append([]EpochEntry(nil), entries[:keep]...), true
}

// truncateFromEnd drops every entry starting at or after end (Kafka's truncateFromEnd), after the log was
// cut to end.
func (c *EpochCache) truncateFromEnd(end int64) error {
	c.mu.RLock()
	next, changed := truncateEntries(c.entries, end)
	c.mu.RUnlock()
	if !changed {
		return nil
	}
	return c.replace(next)
}

func (c *EpochCache) replace(next []EpochEntry) error {
	if err := c.disk.WriteFileAtomic(c.path, encodeEpochCheckpoint(next)); err != nil {
		return fmt.Errorf("writing leader epoch checkpoint: %w", err)
	}
	c.mu.Lock()
	c.entries = next
	c.mu.Unlock()
	return nil
}

// encodeEpochCheckpoint writes Kafka's checkpoint text format: version 0, the entry count, then one
// "epoch startOffset" line per entry.
func encodeEpochCheckpoint(entries []EpochEntry) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(entries))
	for _, e := range entries {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return b.Bytes()
}

// decodeEpochCheckpoint parses the checkpoint, rejecting anything malformed or non-monotonic.
func decodeEpochCheckpoint(b []byte) ([]EpochEntry, error) {
	if len(b) > epochCheckpointMaxBytes {
		return nil, fmt.Errorf("checkpoint is %d bytes, over the %d byte limit", len(b), epochCheckpointMaxBytes)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) < 2 || lines[0] != "0" {
		return nil, fmt.Errorf("checkpoint does not start with version 0 and a count")
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n < 0 || n != len(lines)-2 {
		return nil, fmt.Errorf("checkpoint count %q does not match its %d entry lines", lines[1], len(lines)-2)
	}
	entries := make([]EpochEntry, 0, n)
	for i, line := range lines[2:] {
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("checkpoint entry %d %q is not \"epoch offset\"", i, line)
		}
		epoch, err1 := strconv.ParseInt(fields[0], 10, 32)
		start, err2 := strconv.ParseInt(fields[1], 10, 64)
		if err1 != nil || err2 != nil || epoch < 0 || start < 0 {
			return nil, fmt.Errorf("checkpoint entry %d %q is not two non-negative numbers", i, line)
		}
		e := EpochEntry{Epoch: int32(epoch), StartOffset: start}
		if i > 0 && (e.Epoch <= entries[i-1].Epoch || e.StartOffset <= entries[i-1].StartOffset) {
			return nil, fmt.Errorf("checkpoint entry %d %q does not increase on entry %d", i, line, i-1)
		}
		entries = append(entries, e)
	}
	return entries, nil
}
