package storage

import (
	"bytes"
	"errors"
	"maps"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func headers(t *testing.T, b []byte) []BatchHeader {
	t.Helper()
	var hs []BatchHeader
	if err := SplitBatches(b, func(_ []byte, h BatchHeader) error { hs = append(hs, h); return nil }); err != nil {
		t.Fatalf("result is not whole valid batches: %v", err)
	}
	return hs
}

func TestLogAppendRead(t *testing.T) {
	l := openLog(t, newDisk(t), Config{})
	defer l.Close()
	batches := appendN(t, l, 10, 5, 3) // offsets 0..49, batch i at 5i
	if l.StartOffset() != 0 || l.EndOffset() != 50 {
		t.Fatalf("offsets [%d, %d), want [0, 50)", l.StartOffset(), l.EndOffset())
	}
	all := bytes.Join(batches, nil)
	size := len(batches[0])
	tests := []struct {
		name      string
		offset    int64
		maxBytes  int
		upTo      int64
		wantBases []int64
		wantErr   error
	}{
		{"everything", 0, 1 << 20, math.MaxInt64, []int64{0, 5, 10, 15, 20, 25, 30, 35, 40, 45}, nil},
		{"mid batch starts at its batch", 7, 2 * size, math.MaxInt64, []int64{5, 10}, nil},
		{"maxBytes below one batch still gives one", 12, 1, math.MaxInt64, []int64{10}, nil},
		{"maxBytes just short of two", 0, 2*size - 1, math.MaxInt64, []int64{0}, nil},
		{"upTo caps at the high watermark", 0, 1 << 20, 15, []int64{0, 5, 10}, nil},
		{"upTo mid batch keeps that batch", 0, 1 << 20, 16, []int64{0, 5, 10, 15}, nil},
		{"offset at upTo gives nothing", 15, 1 << 20, 15, nil, nil},
		{"last batch", 49, 1 << 20, math.MaxInt64, []int64{45}, nil},
		{"end offset gives nothing", 50, 1 << 20, math.MaxInt64, nil, nil},
		{"past the end", 51, 1 << 20, math.MaxInt64, nil, ErrOffsetOutOfRange},
		{"negative", -1, 1 << 20, math.MaxInt64, nil, ErrOffsetOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := l.Read(tt.offset, tt.maxBytes, tt.upTo)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Read error = %v, want %v", err, tt.wantErr)
			}
			hs := headers(t, b)
			if len(hs) != len(tt.wantBases) {
				t.Fatalf("Read returned %d batches, want bases %v", len(hs), tt.wantBases)
			}
			for i, h := range hs {
				if h.BaseOffset != tt.wantBases[i] || h.PartitionLeaderEpoch != 3 || h.NumRecords != 5 {
					t.Fatalf("batch %d header %+v, want base %d epoch 3", i, h, tt.wantBases[i])
				}
			}
			if len(hs) > 0 {
				start := int(hs[0].BaseOffset/5) * size
				if !bytes.Equal(b, all[start:start+len(b)]) {
					t.Fatal("Read bytes differ from what was appended")
				}
			}
			// ReadAppend reads the same batches after what dst holds, growing it when its spare room is short.
			for _, spare := range []int{0, size / 2, 4 << 20} {
				dst := append(make([]byte, 0, 3+spare), "pre"...)
				got, err := l.ReadAppend(dst, tt.offset, tt.maxBytes, tt.upTo)
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ReadAppend error = %v, want %v", err, tt.wantErr)
				}
				if string(got[:3]) != "pre" || !bytes.Equal(got[3:], b) {
					t.Fatalf("ReadAppend with %d spare bytes returned %q..., want \"pre\" and Read's %d bytes", spare, got[:min(len(got), 8)], len(b))
				}
			}
		})
	}
}

func TestLogAppendLeaderRejectsBadBatches(t *testing.T) {
	l := openLog(t, newDisk(t), Config{})
	defer l.Close()
	good := makeBatch(2, 10, 'a')
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	for name, b := range map[string][]byte{"bad crc": bad, "two batches": append(bytes.Clone(good), good...), "short": good[:30]} {
		if _, err := l.AppendLeader(b, 0); !errors.Is(err, ErrCorruptBatch) {
			t.Errorf("%s: AppendLeader error = %v, want ErrCorruptBatch", name, err)
		}
	}
	if l.EndOffset() != 0 {
		t.Fatalf("rejected appends moved the end to %d", l.EndOffset())
	}
}

func TestLogSegmentRollAndReadAcross(t *testing.T) {
	d := newDisk(t)
	size := int64(len(makeBatch(4, 10, 0)))
	cfg := Config{SegmentBytes: 3 * size, IndexIntervalBytes: 1}
	l := openLog(t, d, cfg)
	batches := appendN(t, l, 10, 4, 0) // 3 batches per segment: segments at 0, 12, 24, 36
	for _, name := range []string{"00000000000000000000.log", "00000000000000000012.log", "00000000000000000024.index", "00000000000000000036.log"} {
		if _, err := d.Stat(filepath.Join("topic-0", name)); err != nil {
			t.Fatalf("segment file missing: %v", err)
		}
	}
	check := func(l *Log) {
		t.Helper()
		if got := readAll(t, l); !bytes.Equal(got, bytes.Join(batches, nil)) {
			t.Fatal("reading across segments does not give back the appended batches")
		}
		for off := int64(0); off < 40; off++ {
			b, err := l.Read(off, 1<<20, math.MaxInt64)
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			hs := headers(t, b)
			if hs[0].BaseOffset != off/4*4 || hs[len(hs)-1].NextOffset()%12 != 0 && hs[len(hs)-1].NextOffset() != 40 {
				t.Fatalf("Read(%d) gave %+v: must start at the batch holding it and stop at a segment end", off, hs)
			}
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, d, cfg)
	defer l.Close()
	check(l)
	if base, err := l.AppendLeader(makeBatch(4, 10, 0), 0); err != nil || base != 40 {
		t.Fatalf("append after reopen: base %d, err %v", base, err)
	}
}

func TestLogTruncateTo(t *testing.T) {
	size := int64(len(makeBatch(5, 10, 0)))
	tests := []struct {
		name    string
		to      int64
		wantEnd int64
	}{
		{"at a batch boundary", 20, 20},
		{"mid batch drops the whole batch", 23, 20},
		{"inside a segment past its index entries", 27, 25},
		{"last offset of a batch drops it", 24, 20},
		{"at a segment boundary", 15, 15},
		{"to zero", 0, 0},
		{"at the end changes nothing", 50, 50},
		{"past the end changes nothing", 99, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDisk(t)
			cfg := Config{SegmentBytes: 3 * size, IndexIntervalBytes: 1}
			l := openLog(t, d, cfg)
			batches := appendN(t, l, 10, 5, 0)
			if err := l.TruncateTo(tt.to); err != nil {
				t.Fatalf("TruncateTo: %v", err)
			}
			if l.EndOffset() != tt.wantEnd {
				t.Fatalf("end after TruncateTo(%d) = %d, want %d", tt.to, l.EndOffset(), tt.wantEnd)
			}
			want := bytes.Join(batches[:tt.wantEnd/5], nil)
			if got := readAll(t, l); !bytes.Equal(got, want) {
				t.Fatal("log after truncation is not the kept prefix")
			}
			if _, err := l.Read(tt.wantEnd+1, 100, math.MaxInt64); !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("reading past the new end: %v", err)
			}
			more := appendN(t, l, 2, 5, 0)
			want = append(want, bytes.Join(more, nil)...)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			indexes := indexFiles(t, d)
			l = openLog(t, d, cfg)
			defer l.Close()
			if rebuilt := indexFiles(t, d); !maps.EqualFunc(indexes, rebuilt, bytes.Equal) {
				t.Fatalf("index kept through truncation %v differs from the one recovery rebuilds %v", indexes, rebuilt)
			}
			if l.EndOffset() != tt.wantEnd+10 {
				t.Fatalf("end after reopen = %d, want %d", l.EndOffset(), tt.wantEnd+10)
			}
			if got := readAll(t, l); !bytes.Equal(got, want) {
				t.Fatal("log after truncate, append and reopen differs")
			}
		})
	}
}

// indexFiles returns the content of every offset index file of the test log.
func indexFiles(t *testing.T, d *Disk) map[string][]byte {
	t.Helper()
	ents, err := d.ReadDir("topic-0")
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte)
	for _, e := range ents {
		if filepath.Ext(e.Name()) == indexSuffix {
			b, err := d.ReadFile(filepath.Join("topic-0", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = b
		}
	}
	return out
}

func TestLogAppendFollower(t *testing.T) {
	leader := openLog(t, newDisk(t), Config{})
	defer leader.Close()
	appendN(t, leader, 4, 3, 1)
	appendN(t, leader, 4, 3, 4)
	follower := openLog(t, newDisk(t), Config{})
	defer follower.Close()

	first, err := leader.Read(0, 3*len(makeBatch(3, 10, 0)), math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(first)
	corrupt[len(corrupt)-1] ^= 1
	if err := follower.AppendFollower(corrupt); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("corrupt fetch: err = %v, want ErrCorruptBatch", err)
	}
	if follower.EndOffset() != 0 {
		t.Fatalf("a rejected fetch appended something: end %d", follower.EndOffset())
	}
	if err := follower.AppendFollower(first); err != nil {
		t.Fatal(err)
	}
	if err := follower.AppendFollower(first); !errors.Is(err, ErrUnexpectedOffset) {
		t.Fatalf("repeated fetch: err = %v, want ErrUnexpectedOffset", err)
	}
	rest, err := leader.Read(follower.EndOffset(), 1<<20, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	hs := headers(t, rest)
	gap := rest[hs[0].Size():]
	if err := follower.AppendFollower(gap); !errors.Is(err, ErrUnexpectedOffset) {
		t.Fatalf("fetch with a gap: err = %v, want ErrUnexpectedOffset", err)
	}
	if err := follower.AppendFollower(rest); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, follower), readAll(t, leader)) {
		t.Fatal("follower log differs from the leader's")
	}
	if got, want := follower.Epochs().Entries(), leader.Epochs().Entries(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("follower epochs %v, leader %v", got, want)
	}
}

func TestLogClosedAndDelete(t *testing.T) {
	d := newDisk(t)
	l := openLog(t, d, Config{})
	appendN(t, l, 1, 1, 0)
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendLeader(makeBatch(1, 1, 0), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after Delete: %v", err)
	}
	if _, err := l.Read(0, 1, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after Delete: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := d.Stat("topic-0"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("log directory survives Delete: %v", err)
	}
}

func TestLogScanBatches(t *testing.T) {
	size := int64(len(makeBatch(2, 10, 0)))
	l := openLog(t, newDisk(t), Config{SegmentBytes: 2 * size})
	defer l.Close()
	appendN(t, l, 6, 2, 0)
	var bases []int64
	if err := l.ScanBatches(5, func(h BatchHeader) bool { bases = append(bases, h.BaseOffset); return len(bases) < 3 }); err != nil {
		t.Fatal(err)
	}
	if len(bases) != 3 || bases[0] != 4 || bases[1] != 6 || bases[2] != 8 {
		t.Fatalf("scan from 5 visited %v, want [4 6 8]", bases)
	}
}
