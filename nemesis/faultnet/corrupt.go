package faultnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// KindCorrupt flips one byte in some produce requests (CorruptProduce).
const KindCorrupt Kind = "corrupt"

// produceAPIKey is the Kafka API key of Produce requests, the only ones a corrupt fault touches.
const produceAPIKey = 0

// CorruptProduce makes a share (0 < fraction <= 1) of the Kafka produce requests that clients send to node
// arrive with one byte flipped, as a faulty NIC, switch or proxy would pass them on beyond TCP's own checksum.
// The byte is drawn uniformly from the request after its API key (header, topic and partition fields, record
// data): the layer finds requests by the frames' length prefixes and API keys and knows nothing else of the
// protocol. What happens next is the broker's and the client's business: Kafka's CRC-32C covers only the record
// data (CORRUPT_MESSAGE), a flipped partition or topic name draws an answer about a partition the client never
// asked for, a flipped header may cost the connection. Which requests are hit, and where, is drawn from rng.
// Heal(id) ends it.
func (n *Net) CorruptProduce(node string, fraction float64, rng *rand.Rand) (FaultID, error) {
	if !(fraction > 0 && fraction <= 1) {
		return 0, fmt.Errorf("faultnet: corrupt on %s: fraction %v is not in (0, 1]", node, fraction)
	}
	if rng == nil {
		return 0, errors.New("faultnet: corrupt: a seeded rand source is required")
	}
	if err := n.checkNode(node, false); err != nil {
		return 0, fmt.Errorf("faultnet: corrupt: %w", err)
	}
	id, _ := n.add(&fault{kind: KindCorrupt, node: node, fraction: fraction, rng: rng})
	return id, nil
}

// corruptAt decides, for a produce request of size bytes (after the length prefix) that a client is sending to
// node, the offset in it of the byte to flip, or -1. It draws from the first active corrupt fault on node.
func (n *Net) corruptAt(node string, size int) int {
	if n.quiet() || size <= 2 {
		return -1
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, f := range n.faults {
		if f.kind != KindCorrupt || f.node != node {
			continue
		}
		if f.rng.Float64() >= f.fraction {
			return -1
		}
		return 2 + f.rng.IntN(size-2)
	}
	return -1
}

// frameScan follows the Kafka frames a client sends (int32 big-endian length, then that many bytes starting
// with the int16 API key), so a corrupt fault can aim inside one. It reads only the six header bytes of each
// frame and skips the rest. Owned by the connection's reader (conn.readMu).
type frameScan struct {
	sizeN int   // bytes of the length prefix seen so far (0-4)
	size  int   // the current frame's length
	pos   int   // bytes of the current frame's body seen so far
	key   int16 // API key, once pos >= 2
	flip  int   // body offset to flip in the current frame, or -1
}

// scan advances over p, which is about to be delivered to the broker, flipping the byte decide chose.
// decide gets the API key and frame length once both are known.
func (s *frameScan) scan(p []byte, decide func(key int16, size int) int) {
	for len(p) > 0 {
		if s.sizeN < 4 {
			s.size = s.size<<8 | int(p[0])
			s.sizeN++
			p = p[1:]
			if s.sizeN == 4 {
				s.pos, s.key, s.flip = 0, 0, -1
				if int32(s.size) <= 0 {
					// Not a frame a broker accepts (it will close the connection); start over on the next byte.
					s.sizeN, s.size = 0, 0
				}
			}
			continue
		}
		if s.pos < 2 {
			s.key = s.key<<8 | int16(p[0])
			s.pos++
			p = p[1:]
			if s.pos == 2 {
				s.flip = decide(s.key, s.size)
			}
		} else {
			k := min(len(p), s.size-s.pos)
			if s.flip >= s.pos && s.flip < s.pos+k {
				p[s.flip-s.pos] ^= 0x5a
			}
			s.pos += k
			p = p[k:]
		}
		if s.pos >= s.size {
			s.sizeN, s.size = 0, 0
		}
	}
}

// delivered runs the frame scanner over bytes a client sent that Read hands to the broker.
func (c *conn) delivered(p []byte) {
	if c.remote != Client || len(p) == 0 {
		return
	}
	c.scan.scan(p, func(key int16, size int) int {
		if key != produceAPIKey {
			return -1
		}
		return c.n.corruptAt(c.local, size)
	})
}
