package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Test codecs beyond the batch attribute's: snappy framed the way the Java client's xerial library writes it
// (two chunks), and LZ4 frames of 64 KiB blocks (the default 4 MiB blocks make each reader allocate 4 MiB,
// which the race detector makes slow: the oracle test uses small blocks).
const (
	snappyXerial = 100 + iota
	lz4SmallBlocks
)

var testCodecs = []int{codecNone, codecGzip, codecSnappy, snappyXerial, codecLZ4, lz4SmallBlocks, codecZstd}

// oracleCodecs leave out the slow-under-race 4 MiB LZ4 blocks.
var oracleCodecs = []int{codecNone, codecGzip, codecSnappy, snappyXerial, lz4SmallBlocks, codecZstd}

// attrCodec is the batch attribute value of a test codec.
func attrCodec(codec int) int16 {
	switch codec {
	case snappyXerial:
		return codecSnappy
	case lz4SmallBlocks:
		return codecLZ4
	}
	return int16(codec)
}

func compressForTest(t testing.TB, codec int, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch codec {
	case codecNone:
		return raw
	case codecGzip:
		w := gzip.NewWriter(&buf)
		_, _ = w.Write(raw)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case codecSnappy:
		return s2.EncodeSnappy(nil, raw)
	case snappyXerial:
		buf.Write(xerialMagic)
		buf.Write([]byte{0, 0, 0, 1, 0, 0, 0, 1})
		half := len(raw) / 2
		for _, part := range [][]byte{raw[:half], raw[half:]} {
			block := s2.EncodeSnappy(nil, part)
			buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(block))))
			buf.Write(block)
		}
	case codecLZ4, lz4SmallBlocks:
		w := lz4.NewWriter(&buf)
		if codec == lz4SmallBlocks {
			if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
				t.Fatal(err)
			}
		}
		_, _ = w.Write(raw)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case codecZstd:
		w, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(raw)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown test codec %d", codec)
	}
	return buf.Bytes()
}

// tsBatch builds a batch whose record i has timestamp ts[i] (CreateTime), compressed with codec, as a
// producer writes it: base timestamp the first record's, max timestamp the largest, keys and values
// present so skipping them is exercised.
func tsBatch(t testing.TB, codec int, ts []int64) []byte {
	t.Helper()
	var raw []byte
	maxTS := ts[0]
	for i, x := range ts {
		maxTS = max(maxTS, x)
		r := kmsg.Record{TimestampDelta64: x - ts[0], OffsetDelta: int32(i), Key: []byte(fmt.Sprintf("k%d", i)),
			Value: bytes.Repeat([]byte{byte(i)}, 20+i), Headers: []kmsg.Header{{Key: "h", Value: []byte("v")}}}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1)
		raw = r.AppendTo(raw)
	}
	records := compressForTest(t, codec, raw)
	attrs := attrCodec(codec)
	rb := kmsg.RecordBatch{
		Length: int32(BatchHeaderSize - batchLogOverhead + len(records)), PartitionLeaderEpoch: -1, Magic: 2,
		Attributes: attrs, LastOffsetDelta: int32(len(ts) - 1), FirstTimestamp: ts[0], MaxTimestamp: maxTS,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(ts)), Records: records,
	}
	b := rb.AppendTo(nil)
	resign(b)
	if _, err := ParseBatch(b); err != nil {
		t.Fatalf("test batch does not parse: %v", err)
	}
	return b
}

func TestForEachRecordEveryCodec(t *testing.T) {
	ts := []int64{1000, 1300, 1200, 1400, 900}
	for _, codec := range testCodecs {
		t.Run(fmt.Sprint(codec), func(t *testing.T) {
			b := tsBatch(t, codec, ts)
			PatchBaseOffset(b, 40)
			var got []RecordTimestamp
			if err := ForEachRecord(b, func(r RecordTimestamp) bool { got = append(got, r); return true }); err != nil {
				t.Fatalf("ForEachRecord: %v", err)
			}
			if len(got) != len(ts) {
				t.Fatalf("got %d records, want %d: %v", len(got), len(ts), got)
			}
			for i, r := range got {
				if r.Offset != 40+int64(i) || r.Timestamp != ts[i] {
					t.Fatalf("record %d = %+v, want offset %d timestamp %d", i, r, 40+i, ts[i])
				}
			}
			n := 0
			_ = ForEachRecord(b, func(RecordTimestamp) bool { n++; return n < 2 })
			if n != 2 {
				t.Fatalf("ForEachRecord went on after fn returned false: %d calls", n)
			}
		})
	}
}

func TestForEachRecordLogAppendTimeUsesTheBatchMax(t *testing.T) {
	b := tsBatch(t, codecNone, []int64{1000, 1300, 1200})
	binary.BigEndian.PutUint16(b[offAttributes:], attrLogAppendTime)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], 5555)
	resign(b)
	var got []int64
	if err := ForEachRecord(b, func(r RecordTimestamp) bool { got = append(got, r.Timestamp); return true }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[5555 5555 5555]" {
		t.Fatalf("LogAppendTime record timestamps = %v, want the batch max 5555 for each", got)
	}
}

func TestForEachRecordRejectsMalformedRecords(t *testing.T) {
	good := tsBatch(t, codecNone, []int64{1, 2, 3})
	tests := []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"count above the records held", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offNumRecords:], 4)
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 3)
			return b
		}},
		{"offset delta past the batch", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[offLastOffsetDelta:], 0)
			binary.BigEndian.PutUint32(b[offNumRecords:], 3)
			return b
		}},
		{"record length past the data", func([]byte) []byte {
			return rawRecordsBatch(append(binary.AppendVarint(nil, 1000), make([]byte, 10)...), 1)
		}},
		{"negative record length", func([]byte) []byte {
			return rawRecordsBatch(append(binary.AppendVarint(nil, -1), make([]byte, 10)...), 1)
		}},
		{"record length shorter than its fields", func([]byte) []byte {
			rec := binary.AppendVarint(nil, 2)  // length 2, but
			rec = append(rec, 0)                // attributes,
			rec = binary.AppendVarint(rec, 300) // a 2-byte timestamp delta
			rec = binary.AppendVarint(rec, 0)   // and the offset delta follow
			return rawRecordsBatch(append(rec, 0, 0, 0, 0), 1)
		}},
		{"unknown codec", func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[offAttributes:], 6)
			return b
		}},
		{"gzip codec on plain bytes", func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[offAttributes:], codecGzip)
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.edit(bytes.Clone(good))
			resign(b)
			err := ForEachRecord(b, func(RecordTimestamp) bool { return true })
			if !errors.Is(err, ErrCorruptBatch) {
				t.Fatalf("ForEachRecord = %v, want an ErrCorruptBatch", err)
			}
		})
	}
}

// rawRecordsBatch wraps hand-made (uncompressed) record bytes in a valid batch header of n records.
func rawRecordsBatch(records []byte, n int32) []byte {
	rb := kmsg.RecordBatch{Length: int32(BatchHeaderSize - batchLogOverhead + len(records)), PartitionLeaderEpoch: -1,
		Magic: 2, LastOffsetDelta: n - 1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: n, Records: records}
	b := rb.AppendTo(nil)
	resign(b)
	return b
}

func TestForEachRecordBoundsDecompression(t *testing.T) {
	// A small zstd batch whose one record claims to inflate past the bound: refused, nothing inflated for it.
	raw := binary.AppendVarint(nil, MaxDecompressedRecords+1)
	raw = append(raw, make([]byte, 4096)...)
	b := rawRecordsBatch(compressForTest(t, codecZstd, raw), 1)
	binary.BigEndian.PutUint16(b[offAttributes:], codecZstd)
	resign(b)
	err := ForEachRecord(b, func(RecordTimestamp) bool { return true })
	if !errors.Is(err, ErrCorruptBatch) || !strings.Contains(err.Error(), "bound") {
		t.Fatalf("ForEachRecord = %v, want an ErrCorruptBatch naming the bound", err)
	}
}

// tsRecord is the test oracle's view of the log: every record in offset order.
type tsRecord struct {
	offset, ts int64
	epoch      int32
}

func oracleFind(recs []tsRecord, target, from int64) (TimestampOffset, bool) {
	for _, r := range recs {
		if r.offset >= from && r.ts >= target {
			return TimestampOffset{Timestamp: r.ts, Offset: r.offset, LeaderEpoch: r.epoch}, true
		}
	}
	return TimestampOffset{}, false
}

func oracleMax(recs []tsRecord) (TimestampOffset, bool) {
	var best tsRecord
	for i, r := range recs {
		if i == 0 || r.ts > best.ts {
			best = r
		}
	}
	return TimestampOffset{Timestamp: best.ts, Offset: best.offset, LeaderEpoch: best.epoch}, len(recs) > 0
}

// checkAgainstOracle compares every search of the log with the oracle, for every target around the
// timestamps used and several starting offsets.
func checkAgainstOracle(t *testing.T, l *Log, recs []tsRecord, stage string) {
	t.Helper()
	froms := []int64{0, 1, 37, 150, 301}
	for target := int64(-1); target <= 2100; target += 7 {
		for _, from := range froms {
			got, ok, err := l.FindOffsetByTimestamp(target, from)
			if err != nil {
				t.Fatalf("%s: FindOffsetByTimestamp(%d, %d): %v", stage, target, from, err)
			}
			want, wantOK := oracleFind(recs, target, from)
			if ok != wantOK || got != want {
				t.Fatalf("%s: FindOffsetByTimestamp(%d, %d) = %+v %v, want %+v %v", stage, target, from, got, ok, want, wantOK)
			}
		}
	}
	got, ok, err := l.MaxTimestampOffset()
	if err != nil {
		t.Fatalf("%s: MaxTimestampOffset: %v", stage, err)
	}
	if want, wantOK := oracleMax(recs); ok != wantOK || got != want {
		t.Fatalf("%s: MaxTimestampOffset = %+v %v, want %+v %v", stage, got, ok, want, wantOK)
	}
}

// TestTimestampSearchMatchesOracle fills a log of many small segments and a dense index with batches of
// every codec whose record timestamps wander up and down, and checks every search against a linear scan of
// the records: as written, after truncation into the middle of a segment, and after a reopen (the time index
// is rebuilt by recovery).
func TestTimestampSearchMatchesOracle(t *testing.T) {
	d := newDisk(t)
	cfg := Config{SegmentBytes: 3000, IndexIntervalBytes: 200}
	l := openLog(t, d, cfg)
	rng := rand.New(rand.NewPCG(7, 11))
	var recs []tsRecord
	base := int64(1000)
	for i := 0; i < 120; i++ {
		n := 1 + rng.IntN(6)
		ts := make([]int64, n)
		for j := range ts {
			// A drifting clock with jitter: mostly rising, sometimes far behind (a slow producer).
			base += int64(rng.IntN(12))
			ts[j] = base - int64(rng.IntN(40))
		}
		epoch := int32(1 + i/40)
		off, err := l.AppendLeader(tsBatch(t, oracleCodecs[i%len(oracleCodecs)], ts), epoch)
		if err != nil {
			t.Fatal(err)
		}
		for j, x := range ts {
			recs = append(recs, tsRecord{offset: off + int64(j), ts: x, epoch: epoch})
		}
	}
	if len(l.segs) < 5 {
		t.Fatalf("the test wants several segments, got %d", len(l.segs))
	}
	if len(l.segs[0].index.entries) < 3 {
		t.Fatalf("the test wants index entries in a segment, got %d", len(l.segs[0].index.entries))
	}
	checkAgainstOracle(t, l, recs, "as appended")

	// Cut inside a middle segment: the segment's max timestamp and later searches must forget the tail.
	cut := recs[len(recs)*3/5].offset
	if err := l.TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	end := l.EndOffset()
	for len(recs) > 0 && recs[len(recs)-1].offset >= end {
		recs = recs[:len(recs)-1]
	}
	checkAgainstOracle(t, l, recs, "after truncation")

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, d, cfg)
	defer l.Close()
	checkAgainstOracle(t, l, recs, "after reopen")
}

func TestTimestampSearchEmptyLog(t *testing.T) {
	l := openLog(t, newDisk(t), Config{})
	defer l.Close()
	if _, ok, err := l.FindOffsetByTimestamp(0, 0); ok || err != nil {
		t.Fatalf("FindOffsetByTimestamp on an empty log = %v, %v; want nothing", ok, err)
	}
	if _, ok, err := l.MaxTimestampOffset(); ok || err != nil {
		t.Fatalf("MaxTimestampOffset on an empty log = %v, %v; want nothing", ok, err)
	}
}

func TestMaxTimestampOffsetTakesTheFirstRecordWithIt(t *testing.T) {
	l := openLog(t, newDisk(t), Config{})
	defer l.Close()
	for _, ts := range [][]int64{{10, 20}, {50, 30, 50}, {50, 40}} {
		if _, err := l.AppendLeader(tsBatch(t, lz4SmallBlocks, ts), 4); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := l.MaxTimestampOffset()
	if err != nil || !ok || got != (TimestampOffset{Timestamp: 50, Offset: 2, LeaderEpoch: 4}) {
		t.Fatalf("MaxTimestampOffset = %+v %v %v, want timestamp 50 at offset 2 (the first record with it), epoch 4", got, ok, err)
	}
}

func FuzzForEachRecord(f *testing.F) {
	for _, codec := range testCodecs {
		f.Add(tsBatch(f, codec, []int64{5, 9, 7}))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b) // no CRC check: ForEachRecord does not need one, and mutations keep going
		if err != nil {
			return
		}
		n := int32(0)
		err = ForEachRecord(b, func(r RecordTimestamp) bool {
			n++
			if r.Offset < h.BaseOffset || r.Offset > h.LastOffset() {
				t.Fatalf("record offset %d outside the batch [%d, %d]", r.Offset, h.BaseOffset, h.LastOffset())
			}
			return true
		})
		if err != nil && !errors.Is(err, ErrCorruptBatch) {
			t.Fatalf("error %v does not wrap ErrCorruptBatch", err)
		}
		if err == nil && n != h.NumRecords {
			t.Fatalf("%d records read without error, header says %d", n, h.NumRecords)
		}
	})
}
