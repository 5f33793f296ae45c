package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

func TestParseBatch(t *testing.T) {
	good := makeBatch(3, 20, 'a')
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	tests := []struct {
		name    string
		b       []byte
		wantErr string // substring; empty means valid
	}{
		{"good", good, ""},
		{"good with trailing bytes", append(bytes.Clone(good), 1, 2, 3), ""},
		{"bad crc", edit(func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }), "CRC-32C mismatch"},
		{"bad magic", edit(func(b []byte) []byte { b[offMagic] = 1; return b }), "magic 1"},
		{"truncated body", good[:len(good)-1], "truncated batch"},
		{"truncated header", good[:40], "truncated header"},
		{"too short for length", good[:7], "cannot hold"},
		{"oversized length", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLength:], MaxBatchBytes)
			return b
		}), "exceeds"},
		{"negative length", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLength:], 0xffffffff)
			return b
		}), "below the v2 header minimum"},
		{"negative last offset delta", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0xffffffff)
			resign(b)
			return b
		}), "negative last offset delta"},
		{"negative record count", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offNumRecords:], 0x80000000)
			resign(b)
			return b
		}), "negative record count"},
		{"offset overflow", edit(func(b []byte) []byte { PatchBaseOffset(b, 1<<63-2); return b }), "out of range"},
		{"garbage", bytes.Repeat([]byte{0xab}, 100), ""},
	}
	tests[len(tests)-1].wantErr = "below the v2 header minimum" // 0xabababab is negative as int32
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseBatch(tt.b)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseBatch: %v", err)
				}
				if h.NumRecords != 3 || h.LastOffsetDelta != 2 || h.Size() != len(good) || h.Magic != 2 || h.ProducerID != -1 {
					t.Fatalf("header = %+v", h)
				}
				return
			}
			if !errors.Is(err, ErrCorruptBatch) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseBatch error = %v, want ErrCorruptBatch containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestPatchKeepsCRCValid(t *testing.T) {
	b := makeBatch(4, 10, 'x')
	PatchBaseOffset(b, 1234)
	PatchLeaderEpoch(b, 7)
	h, err := ParseBatch(b)
	if err != nil {
		t.Fatalf("ParseBatch after patching: %v", err)
	}
	if h.BaseOffset != 1234 || h.PartitionLeaderEpoch != 7 || h.LastOffset() != 1237 || h.NextOffset() != 1238 {
		t.Fatalf("patched header = %+v", h)
	}
	if h.IsControl() || h.IsTransactional() {
		t.Fatalf("attributes misread: %+v", h)
	}
}

func TestSplitBatches(t *testing.T) {
	a, b, c := makeBatch(1, 5, 'a'), makeBatch(2, 50, 'b'), makeBatch(3, 500, 'c')
	blob := bytes.Join([][]byte{a, b, c}, nil)
	tests := []struct {
		name      string
		blob      []byte
		wantSizes []int
		wantErr   string
	}{
		{"empty", nil, nil, ""},
		{"three", blob, []int{len(a), len(b), len(c)}, ""},
		{"trailing partial batch", blob[:len(blob)-10], []int{len(a), len(b)}, "batch at byte"},
		{"trailing garbage", append(bytes.Clone(blob), 0, 0, 0), []int{len(a), len(b), len(c)}, "cannot hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sizes []int
			err := SplitBatches(tt.blob, func(batch []byte, h BatchHeader) error {
				if len(batch) != h.Size() {
					t.Fatalf("batch of %d bytes, header says %d", len(batch), h.Size())
				}
				sizes = append(sizes, len(batch))
				return nil
			})
			if tt.wantErr == "" && err != nil {
				t.Fatalf("SplitBatches: %v", err)
			}
			if tt.wantErr != "" && (!errors.Is(err, ErrCorruptBatch) || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("SplitBatches error = %v, want ErrCorruptBatch containing %q", err, tt.wantErr)
			}
			if len(sizes) != len(tt.wantSizes) {
				t.Fatalf("got batches %v, want %v", sizes, tt.wantSizes)
			}
			for i := range sizes {
				if sizes[i] != tt.wantSizes[i] {
					t.Fatalf("got batches %v, want %v", sizes, tt.wantSizes)
				}
			}
		})
	}
	stop := errors.New("stop")
	calls := 0
	if err := SplitBatches(blob, func([]byte, BatchHeader) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("callback error not returned at once: err=%v calls=%d", err, calls)
	}
}

// FuzzSplitBatches feeds arbitrary bytes to the batch splitter: it must never panic, every batch it hands out
// must be exactly its header's size and valid, and on success the batches must tile the input. Seeds
// (testdata/fuzz/FuzzSplitBatches) include real batches built with franz-go's kmsg.
func FuzzSplitBatches(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		total := 0
		err := SplitBatches(data, func(batch []byte, h BatchHeader) error {
			if len(batch) != h.Size() || h.Magic != 2 || h.LastOffsetDelta < 0 || h.NumRecords < 0 {
				t.Fatalf("bad batch handed out: %d bytes, header %+v", len(batch), h)
			}
			if _, err := ParseBatch(batch); err != nil {
				t.Fatalf("batch handed out does not parse alone: %v", err)
			}
			total += len(batch)
			return nil
		})
		if err == nil && total != len(data) {
			t.Fatalf("success but batches cover %d of %d bytes", total, len(data))
		}
		if err != nil && !errors.Is(err, ErrCorruptBatch) {
			t.Fatalf("error is not ErrCorruptBatch: %v", err)
		}
	})
}
