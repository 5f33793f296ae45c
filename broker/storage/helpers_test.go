package storage

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// makeBatch builds a real record batch v2 of n records with values of valueSize bytes, the way a producer
// would (base offset 0, producer id -1), with franz-go's kmsg encoders and a correct CRC-32C.
func makeBatch(n, valueSize int, tag byte) []byte {
	var records []byte
	for i := 0; i < n; i++ {
		value := bytes.Repeat([]byte{tag + byte(i)}, valueSize)
		r := kmsg.Record{OffsetDelta: int32(i), Value: value}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1) // everything after the 1-byte varint 0 written for Length
		records = r.AppendTo(records)
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          0,
		Length:               int32(BatchHeaderSize - batchLogOverhead + len(records)),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(n - 1),
		FirstTimestamp:       1700000000000,
		MaxTimestamp:         1700000000000,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(n),
		Records:              records,
	}
	b := rb.AppendTo(nil)
	resign(b)
	return b
}

// resign recomputes the CRC after a test edited a CRC-covered field.
func resign(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

// quietConfig keeps expected recovery warnings out of test output.
func quietConfig(cfg Config) Config {
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

func openLog(t testing.TB, d *Disk, cfg Config) *Log {
	t.Helper()
	l, err := Open(d, "topic-0", quietConfig(cfg))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func newDisk(t testing.TB) *Disk {
	t.Helper()
	d, err := NewDisk(t.TempDir())
	if err != nil {
		t.Fatalf("NewDisk: %v", err)
	}
	return d
}

// appendN appends count batches of recs records each at epoch and returns the stored bytes of each batch
// (as patched by AppendLeader).
func appendN(t testing.TB, l *Log, count, recs int, epoch int32) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < count; i++ {
		b := makeBatch(recs, 10, byte(i))
		want := l.EndOffset()
		base, err := l.AppendLeader(b, epoch)
		if err != nil {
			t.Fatalf("AppendLeader: %v", err)
		}
		if base != want {
			t.Fatalf("AppendLeader base = %d, want %d", base, want)
		}
		out = append(out, b)
	}
	return out
}

// readAll reads the log from its start to its end through Read and returns the concatenated batches.
func readAll(t testing.TB, l *Log) []byte {
	t.Helper()
	var all []byte
	for off := l.StartOffset(); off < l.EndOffset(); {
		b, err := l.Read(off, 1<<20, l.EndOffset())
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(b) == 0 {
			t.Fatalf("Read(%d) returned nothing below end %d", off, l.EndOffset())
		}
		err = SplitBatches(b, func(_ []byte, h BatchHeader) error { off = h.NextOffset(); return nil })
		if err != nil {
			t.Fatalf("Read(%d) returned bad batches: %v", off, err)
		}
		all = append(all, b...)
	}
	return all
}
