package faultnet

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// frame builds a Kafka-style frame: int32 length, int16 API key, then body bytes from pattern.
func frame(key int16, bodyLen, seed int) []byte {
	f := make([]byte, 4+bodyLen)
	binary.BigEndian.PutUint32(f, uint32(bodyLen))
	copy(f[4:], pattern(seed, bodyLen))
	binary.BigEndian.PutUint16(f[4:], uint16(key))
	return f
}

// The scanner follows frame boundaries however the stream is cut into reads, and flips exactly the byte the
// decision names, in exactly the frames it chose.
func TestFrameScanFlipsTheChosenByteAcrossAnySplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var stream, want []byte
		type seen struct {
			key  int16
			size int
		}
		var decided []seen
		var frames int
		for i := range 1 + rng.IntN(8) {
			key := int16(rng.IntN(4)) // 0 is Produce
			size := 2 + rng.IntN(300)
			f := frame(key, size, round*10+i)
			stream = append(stream, f...)
			w := bytes.Clone(f)
			if key == 0 && size >= 10 {
				w[4+size-5] ^= 0x5a
			}
			want = append(want, w...)
			frames++
		}
		got := bytes.Clone(stream)
		var s frameScan
		for rest := got; len(rest) > 0; {
			k := 1 + rng.IntN(min(len(rest), 64))
			s.scan(rest[:k], func(key int16, size int) int {
				decided = append(decided, seen{key, size})
				if key == 0 && size >= 10 {
					return size - 5
				}
				return -1
			})
			rest = rest[k:]
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: first difference at byte %d of %d", round, firstDiff(got, want), len(want))
		}
		if len(decided) != frames {
			t.Fatalf("round %d: %d decisions for %d frames: the scanner lost a frame boundary", round, len(decided), frames)
		}
	}
}

// Under CorruptProduce with fraction 1, every produce request a client sends to the node arrives with one byte
// flipped after its API key, at a place drawn anew each time; other requests, traffic between nodes, and
// everything after the heal arrive intact.
func TestCorruptProduceHitsOnlyProduceRequestsFromClients(t *testing.T) {
	n := newTestNet(t)
	dialed, accepted := pair(t, n, "node-1", Client)
	id := mustFault(t)(n.CorruptProduce("node-1", 1, rand.New(rand.NewPCG(3, 4))))

	produce := frame(0, 400, 1)
	where := map[int]bool{}
	for range 20 {
		go func() { _, _ = dialed.Write(produce) }()
		got := make([]byte, len(produce))
		if err := accepted.SetReadDeadline(time.Now().Add(patience)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(accepted, got); err != nil {
			t.Fatalf("read the produce request: %v", err)
		}
		var diffs []int
		for i := range got {
			if got[i] != produce[i] {
				diffs = append(diffs, i-4)
			}
		}
		if len(diffs) != 1 || diffs[0] < 2 {
			t.Fatalf("want exactly one flipped byte after the API key, got body offsets %v", diffs)
		}
		where[diffs[0]] = true
	}
	if len(where) < 10 {
		t.Fatalf("20 corrupted requests were hit at only %d places: the place is not drawn anew", len(where))
	}

	metadata := frame(3, 400, 2)
	go func() { _, _ = dialed.Write(metadata) }()
	readExactly(t, accepted, metadata, "a metadata request under the corrupt fault")

	nodeDialed, nodeAccepted := pair(t, n, "node-1", "node-2")
	go func() { _, _ = nodeDialed.Write(produce) }()
	readExactly(t, nodeAccepted, produce, "a produce-keyed frame between nodes")

	if err := n.Heal(id); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = dialed.Write(produce) }()
	readExactly(t, accepted, produce, "a produce request after heal")
}

func TestCorruptProduceValidation(t *testing.T) {
	n := newTestNet(t)
	rng := rand.New(rand.NewPCG(1, 1))
	for _, tc := range []struct {
		node     string
		fraction float64
		rng      *rand.Rand
	}{{"node-1", 0, rng}, {"node-1", 1.5, rng}, {"node-9", 0.5, rng}, {"node-1", 0.5, nil}, {Client, 0.5, rng}} {
		if _, err := n.CorruptProduce(tc.node, tc.fraction, tc.rng); err == nil {
			t.Errorf("CorruptProduce(%q, %v, rng=%v) accepted", tc.node, tc.fraction, tc.rng != nil)
		}
	}
}
