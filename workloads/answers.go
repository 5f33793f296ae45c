package workloads

import (
	"encoding/binary"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkatrial/kafkatrial/history"
)

// The tap also reads the brokers' answers to produce requests. franz-go, when a broker rejects one batch of a
// partition, fails every record it holds for that partition with the same error, including later batches that
// were already in flight and that the broker may well have appended. So an error like CORRUPT_MESSAGE on a
// record proves nothing about that record by itself; only the broker's own answer to each request that carried
// it does. A record's failure is definite only when every request that carried it was answered with a
// rejection given before the append (rejectedBeforeAppend).

// maxAnswerBytes bounds one produce response the tap buffers to read (answers to our requests are a few
// hundred bytes); a larger one makes the tap stop trusting its counts.
const maxAnswerBytes = 1 << 20

// sentRequest is one produce request written on a connection and not yet answered.
type sentRequest struct {
	corr    int32
	version int16
	parts   []sentPartition
}

// sentPartition is one partition of a sent request and the sequence numbers of our records in it.
type sentPartition struct {
	topic     string
	partition int32
	seqs      []int64
}

// await registers a request whose answer the connection's reader will match.
func (c *tapConn) await(r *sentRequest) {
	c.amu.Lock()
	if c.awaiting == nil {
		c.awaiting = make(map[int32]*sentRequest)
	}
	c.awaiting[r.corr] = r
	c.amu.Unlock()
}

// claim removes and returns the request answered under corr, if the tap is waiting for it.
func (c *tapConn) claim(corr int32) *sentRequest {
	c.amu.Lock()
	defer c.amu.Unlock()
	r := c.awaiting[corr]
	delete(c.awaiting, corr)
	return r
}

// respScan follows the response frames read on a connection (int32 length, then the body starting with the
// correlation id) and buffers only the answers to produce requests the tap is waiting for.
type respScan struct {
	hdr  [8]byte // length and correlation id of the current frame
	hdrN int
	left int          // body bytes of the current frame still to come, after the correlation id
	req  *sentRequest // the request this frame answers, or nil to skip it
	body []byte       // the frame after its correlation id, while req != nil
}

// scan advances over bytes just read and hands every complete answer to the tap.
func (s *respScan) scan(p []byte, c *tapConn) {
	for len(p) > 0 {
		if s.hdrN < len(s.hdr) {
			k := copy(s.hdr[s.hdrN:], p)
			s.hdrN += k
			p = p[k:]
			if s.hdrN < len(s.hdr) {
				return
			}
			size := int(int32(binary.BigEndian.Uint32(s.hdr[:])))
			if size < 4 {
				c.w.tap.lostTrack() // not a Kafka response stream we can follow
				s.hdrN = 0
				return
			}
			s.left = size - 4
			s.req = c.claim(int32(binary.BigEndian.Uint32(s.hdr[4:])))
			if s.req != nil && s.left > maxAnswerBytes {
				c.w.tap.lostTrack()
				s.req = nil
			}
			s.body = s.body[:0]
		}
		k := min(len(p), s.left)
		if s.req != nil {
			s.body = append(s.body, p[:k]...)
		}
		s.left -= k
		p = p[k:]
		if s.left == 0 {
			if s.req != nil {
				c.w.tap.answered(s.req, s.body)
			}
			s.hdrN, s.req = 0, nil
		}
	}
}

// answered marks, for each record of req, whether the broker's answer rejected its partition before the append.
func (t *produceTap) answered(req *sentRequest, body []byte) {
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = req.version
	pos := 0
	if resp.IsFlexible() {
		var err error
		if pos, err = skipTags(body, 0); err != nil {
			t.lostTrack()
			return
		}
	}
	if err := resp.ReadFrom(body[pos:]); err != nil {
		t.lostTrack()
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, sp := range req.parts {
		code, found := int16(0), false
		for i := range resp.Topics {
			if resp.Topics[i].Topic != sp.topic {
				continue
			}
			for j := range resp.Topics[i].Partitions {
				if resp.Topics[i].Partitions[j].Partition == sp.partition {
					code, found = resp.Topics[i].Partitions[j].ErrorCode, true
				}
			}
		}
		if !found || !rejectedBeforeAppend(code) {
			continue
		}
		for _, seq := range sp.seqs {
			if s := t.pending[seq]; s != nil {
				s.rejected++
			}
		}
	}
}

// lostTrack makes every count unknown from now on (the answer to a failure is then info, never fail).
func (t *produceTap) lostTrack() {
	t.mu.Lock()
	t.blind = true
	t.mu.Unlock()
}

// rejectedBeforeAppend reports whether a broker's error code for a partition of a produce request means the
// batch was not appended: the broker-side rows of sendRules whose outcome is fail.
func rejectedBeforeAppend(code int16) bool {
	if code == 0 {
		return false
	}
	err := kerr.ErrorForCode(code)
	return slices.ContainsFunc(sendRules, func(r sendRule) bool { return r.outcome == history.Fail && r.err == err })
}
