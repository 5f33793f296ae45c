package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func segPath(d *Disk, base int64, suffix string) string {
	return filepath.Join(d.Root(), "topic-0", segmentFileName(base, suffix))
}

func appendToFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRecoveryCutsTornTail(t *testing.T) {
	half := makeBatch(5, 10, 'h')
	PatchBaseOffset(half, 50)
	tails := map[string][]byte{
		"half a batch":   half[:len(half)/2],
		"a few bytes":    {0, 0, 0},
		"garbage header": bytes.Repeat([]byte{0xee}, 200),
		"bad crc":        append(bytes.Clone(half[:len(half)-1]), half[len(half)-1]^1),
		"wrong offset":   makeBatch(5, 10, 'w'), // base offset 0 again
	}
	for name, tail := range tails {
		t.Run(name, func(t *testing.T) {
			d := newDisk(t)
			l := openLog(t, d, Config{IndexIntervalBytes: 1})
			batches := appendN(t, l, 10, 5, 2)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			appendToFile(t, segPath(d, 0, logSuffix), tail)
			l = openLog(t, d, Config{IndexIntervalBytes: 1})
			defer l.Close()
			if l.EndOffset() != 50 {
				t.Fatalf("end after recovery = %d, want 50", l.EndOffset())
			}
			if got := readAll(t, l); !bytes.Equal(got, bytes.Join(batches, nil)) {
				t.Fatal("recovered log does not serve everything before the cut")
			}
			next := appendN(t, l, 1, 5, 2)
			if h, _ := ParseBatch(next[0]); h.BaseOffset != 50 {
				t.Fatalf("append after recovery at %d, want 50", h.BaseOffset)
			}
			if got := readAll(t, l); !bytes.Equal(got, bytes.Join(append(batches, next...), nil)) {
				t.Fatal("log after recovery and append differs")
			}
		})
	}
}

func TestRecoveryCutsCorruptMiddleAndLaterSegments(t *testing.T) {
	d := newDisk(t)
	size := len(makeBatch(5, 10, 0))
	cfg := Config{SegmentBytes: int64(4 * size)}
	l := openLog(t, d, cfg)
	batches := appendN(t, l, 10, 5, 0) // segments at 0, 20, 40
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Flip a record byte of the second batch of segment 20 (offsets 25..29).
	f, err := os.OpenFile(segPath(d, 20, logSuffix), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff}, int64(2*size-3)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l = openLog(t, d, cfg)
	defer l.Close()
	if l.EndOffset() != 25 {
		t.Fatalf("end after recovery = %d, want 25", l.EndOffset())
	}
	if got := readAll(t, l); !bytes.Equal(got, bytes.Join(batches[:5], nil)) {
		t.Fatal("recovered log is not the prefix before the corruption")
	}
	if _, err := os.Stat(segPath(d, 40, logSuffix)); !os.IsNotExist(err) {
		t.Fatalf("segment past the corruption survives: %v", err)
	}
}

func TestRecoveryRebuildsIndex(t *testing.T) {
	for name, damage := range map[string]func(path string) error{
		"missing": os.Remove,
		"garbage": func(p string) error { return os.WriteFile(p, bytes.Repeat([]byte{9}, 40), 0o644) },
		"short":   func(p string) error { return os.Truncate(p, 8) },
	} {
		t.Run(name, func(t *testing.T) {
			d := newDisk(t)
			cfg := Config{IndexIntervalBytes: 100}
			l := openLog(t, d, cfg)
			batches := appendN(t, l, 20, 3, 0)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			path := segPath(d, 0, indexSuffix)
			want, err := os.ReadFile(path)
			if err != nil || len(want) == 0 {
				t.Fatalf("index written by appends: %d bytes, %v", len(want), err)
			}
			if err := damage(path); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, d, cfg)
			defer l.Close()
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("rebuilt index differs from the one appends wrote (%v)", err)
			}
			if !bytes.Equal(readAll(t, l), bytes.Join(batches, nil)) {
				t.Fatal("reads through the rebuilt index differ")
			}
		})
	}
}

func TestPowerLossDropsExactlyTheUnsyncedTail(t *testing.T) {
	d := newDisk(t)
	l := openLog(t, d, Config{}) // no flush policy: left to the page cache
	synced := appendN(t, l, 5, 4, 1)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 3, 4, 1)
	appendN(t, l, 2, 4, 2) // a new epoch whose checkpoint entry is durable but whose data is not
	if e, _ := l.Epochs().Latest(); e != 2 {
		t.Fatalf("latest epoch %d", e)
	}
	if err := l.Close(); err != nil { // the kill
		t.Fatal(err)
	}
	if err := d.LoseUnsynced(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, d, Config{})
	defer l.Close()
	if l.EndOffset() != 20 {
		t.Fatalf("end after power loss = %d, want 20 (the synced prefix)", l.EndOffset())
	}
	if !bytes.Equal(readAll(t, l), bytes.Join(synced, nil)) {
		t.Fatal("log after power loss is not exactly the synced prefix")
	}
	if got := l.Epochs().Entries(); !slices.Equal(got, []EpochEntry{{1, 0}}) {
		t.Fatalf("epochs after power loss %v, want only epoch 1", got)
	}
	if base, err := l.AppendLeader(makeBatch(1, 1, 0), 3); err != nil || base != 20 {
		t.Fatalf("append after power loss: base %d, err %v", base, err)
	}
}

func TestPowerLossWithRolledSegments(t *testing.T) {
	d := newDisk(t)
	size := int64(len(makeBatch(4, 10, 0)))
	cfg := Config{SegmentBytes: 2 * size}
	l := openLog(t, d, cfg)
	synced := appendN(t, l, 5, 4, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 5, 4, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.LoseUnsynced(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, d, cfg)
	defer l.Close()
	// Rolling flushes the rolled segment (as Kafka does) in the background, so anything from the synced
	// prefix up to the last rolled segment may survive, but never a gap and never less than what Sync covered.
	if end := l.EndOffset(); end < 20 || end > 36 || end%4 != 0 {
		t.Fatalf("end after power loss = %d, want in [20, 36]", end)
	}
	if got := readAll(t, l); !bytes.HasPrefix(got, bytes.Join(synced, nil)) {
		t.Fatal("synced prefix lost")
	}
}

func TestFlushMessagesOneLosesNothing(t *testing.T) {
	d := newDisk(t)
	cfg := Config{FlushMessages: 1}
	l := openLog(t, d, cfg)
	batches := appendN(t, l, 10, 3, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.LoseUnsynced(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, d, cfg)
	defer l.Close()
	if l.EndOffset() != 30 || !bytes.Equal(readAll(t, l), bytes.Join(batches, nil)) {
		t.Fatalf("log.flush.interval.messages=1 lost data: end %d", l.EndOffset())
	}
}

func TestFlushMessagesCountsRecords(t *testing.T) {
	d := newDisk(t)
	cfg := Config{FlushMessages: 10}
	l := openLog(t, d, cfg)
	defer l.Close()
	appendN(t, l, 3, 3, 0) // 9 records: below the threshold, nothing synced
	path := filepath.Join("topic-0", segmentFileName(0, logSuffix))
	if got, _ := d.SyncedSize(path); got != 0 {
		t.Fatalf("synced %d bytes before reaching 10 records", got)
	}
	appendN(t, l, 1, 3, 0) // 12 records: flushed before the append returned
	fi, _ := d.Stat(path)
	if got, _ := d.SyncedSize(path); got != fi.Size() {
		t.Fatalf("synced %d of %d bytes after crossing 10 records", got, fi.Size())
	}
}

func TestFlushIntervalSyncsInBackground(t *testing.T) {
	d := newDisk(t)
	l := openLog(t, d, Config{FlushInterval: 10 * time.Millisecond})
	defer l.Close()
	appendN(t, l, 3, 3, 0)
	path := filepath.Join("topic-0", segmentFileName(0, logSuffix))
	fi, _ := d.Stat(path)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if got, _ := d.SyncedSize(path); got == fi.Size() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("log.flush.interval.ms never synced the log")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestKillLosesNothing(t *testing.T) {
	d := newDisk(t)
	l := openLog(t, d, Config{})
	batches := appendN(t, l, 10, 3, 0)
	if err := l.Close(); err != nil { // no Sync: a kill leaves the bytes in the page cache
		t.Fatal(err)
	}
	// A process restart in the same test process: a fresh Disk on the same root, as well as the same Disk.
	d2, err := NewDisk(d.Root())
	if err != nil {
		t.Fatal(err)
	}
	for _, disk := range []*Disk{d, d2} {
		l = openLog(t, disk, Config{})
		if l.EndOffset() != 30 || !bytes.Equal(readAll(t, l), bytes.Join(batches, nil)) {
			t.Fatalf("kill lost data: end %d", l.EndOffset())
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
