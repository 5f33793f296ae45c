package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestWriteFuzzCorpus regenerates the seed corpus of FuzzSplitBatches when STORAGE_WRITE_FUZZ_CORPUS=1.
// Otherwise it checks the committed corpus still holds the real batches (so the fuzzer starts from them).
func TestWriteFuzzCorpus(t *testing.T) {
	seeds := fuzzSeeds()
	dir := filepath.Join("testdata", "fuzz", "FuzzSplitBatches")
	if os.Getenv("STORAGE_WRITE_FUZZ_CORPUS") == "1" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range seeds {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("seed %s missing (regenerate with STORAGE_WRITE_FUZZ_CORPUS=1): %v", name, err)
		}
		if !bytes.Contains(got, []byte(strconv.Quote(string(b)))) {
			t.Fatalf("seed %s is stale (regenerate with STORAGE_WRITE_FUZZ_CORPUS=1)", name)
		}
	}
}

func fuzzSeeds() map[string][]byte {
	one := makeBatch(3, 20, 'a')
	two := append(bytes.Clone(one), makeBatch(2, 100, 'b')...)
	patched := bytes.Clone(one)
	PatchBaseOffset(patched, 100)
	PatchLeaderEpoch(patched, 5)
	badCRC := bytes.Clone(one)
	badCRC[len(badCRC)-1] ^= 1
	badMagic := bytes.Clone(one)
	badMagic[offMagic] = 1
	oversized := bytes.Clone(one[:BatchHeaderSize])
	binary.BigEndian.PutUint32(oversized[offLength:], 1<<30)
	return map[string][]byte{
		"real-one-batch":     one,
		"real-two-batches":   two,
		"real-patched":       patched,
		"real-big-batch":     makeBatch(40, 400, 'c'),
		"truncated":          two[:len(two)-7],
		"bad-crc":            badCRC,
		"bad-magic":          badMagic,
		"oversized-length":   oversized,
		"empty":              {},
		"garbage":            bytes.Repeat([]byte{0x5a}, 64),
		"header-only-length": one[:batchLogOverhead],
	}
}
