package storage

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// Benchmarks compare the Log with a plain os.File doing the same I/O on the same bytes in the same run:
// the reference is the floor the Log's bookkeeping adds to. Run:
//
//	go test ./broker/storage/ -run '^$' -bench . -benchtime 2s

// benchBatch is a ~16 KiB batch of 100 byte records, like a producer's default-sized batch.
func benchBatch() []byte {
	n := 1
	for len(makeBatch(n+1, 100, 0)) <= 16<<10 {
		n++
	}
	return makeBatch(n, 100, 0)
}

// benchResetBytes bounds the disk a benchmark fills: at this size the file is cut back (timer stopped).
const benchResetBytes = 256 << 20

func BenchmarkAppendLeader(b *testing.B) {
	batch := benchBatch()
	for _, flush := range []bool{false, true} {
		name := "page-cache"
		cfg := Config{}
		if flush {
			name, cfg.FlushMessages = "fsync-each", 1
		}
		b.Run(name+"/log", func(b *testing.B) {
			l := openLog(b, newDisk(b), cfg)
			defer l.Close()
			b.SetBytes(int64(len(batch)))
			b.ResetTimer()
			written := 0
			for i := 0; i < b.N; i++ {
				if written >= benchResetBytes {
					b.StopTimer()
					if err := l.TruncateTo(0); err != nil {
						b.Fatal(err)
					}
					if err := l.AssignEpoch(1, 0); err != nil {
						b.Fatal(err)
					}
					written = 0
					b.StartTimer()
				}
				if _, err := l.AppendLeader(batch, 1); err != nil {
					b.Fatal(err)
				}
				written += len(batch)
			}
		})
		b.Run(name+"/osfile", func(b *testing.B) {
			f, err := os.OpenFile(filepath.Join(b.TempDir(), "ref"), os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(int64(len(batch)))
			b.ResetTimer()
			var pos int64
			for i := 0; i < b.N; i++ {
				if pos >= benchResetBytes {
					b.StopTimer()
					if err := f.Truncate(0); err != nil {
						b.Fatal(err)
					}
					pos = 0
					b.StartTimer()
				}
				if _, err := f.WriteAt(batch, pos); err != nil {
					b.Fatal(err)
				}
				if flush {
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
				}
				pos += int64(len(batch))
			}
		})
	}
}

func BenchmarkRead(b *testing.B) {
	const batches = 1024 // 16 MiB, served from the page cache after the first pass
	batch := benchBatch()
	h, err := ParseBatch(batch)
	if err != nil {
		b.Fatal(err)
	}
	recs := int64(h.NumRecords)
	l := openLog(b, newDisk(b), Config{})
	defer l.Close()
	ref, err := os.OpenFile(filepath.Join(b.TempDir(), "ref"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer ref.Close()
	for i := 0; i < batches; i++ {
		if _, err := l.AppendLeader(batch, 1); err != nil {
			b.Fatal(err)
		}
		if _, err := ref.WriteAt(batch, int64(i*len(batch))); err != nil {
			b.Fatal(err)
		}
	}
	for _, per := range []int{1, 64} {
		size := per * len(batch)
		b.Run(name(per)+"/log", func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				first := int64(i*per) % batches
				out, err := l.Read(first*recs, size, math.MaxInt64)
				if err != nil {
					b.Fatal(err)
				}
				if len(out) != size {
					b.Fatalf("read %d bytes, want %d", len(out), size)
				}
			}
		})
		b.Run(name(per)+"/osfile", func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := 0; i < b.N; i++ {
				first := int64(i*per) % batches
				out := make([]byte, size)
				if _, err := ref.ReadAt(out, first*int64(len(batch))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func name(batches int) string {
	if batches == 1 {
		return "1-batch"
	}
	return "64-batches"
}
