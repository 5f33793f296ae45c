package workloads

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkatrial/kafkatrial/history"
)

// DialFunc opens a client connection; scenarios pass the nemesis network's dialer here so that faults act on
// the clients' TCP connections.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// errCut is what every connection of a crashed client returns: the process is dead, nothing more leaves it.
var errCut = errors.New("client crashed: connection cut")

// wire owns every connection of one client. It exists for two reasons:
//
//   - Crash must behave like a process death: cut stops every further byte in both directions at once, before
//     the client library gets a chance to flush, commit or leave its group.
//   - A producer must know, per record, whether it was ever handed to a broker. franz-go reports only an error
//     per record, and its errors (ErrRecordTimeout, ErrAborting, ErrClientClosed, ...) are raised for records
//     that were sent as well as for records that never left the buffer. So the tap reads each produce request as
//     it is written to a socket and counts, per record value, the requests that carried it.
type wire struct {
	dial DialFunc
	tap  *produceTap // nil for clients that do not produce

	cut   atomic.Bool
	mu    sync.Mutex // guards conns
	conns map[*tapConn]struct{}
}

func newWire(dial DialFunc, tap *produceTap) *wire {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	return &wire{dial: dial, tap: tap, conns: make(map[*tapConn]struct{})}
}

// dialer is the function handed to kgo.Dialer.
func (w *wire) dialer(ctx context.Context, network, addr string) (net.Conn, error) {
	if w.cut.Load() {
		return nil, errCut
	}
	c, err := w.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &tapConn{Conn: c, w: w}
	w.mu.Lock()
	w.conns[tc] = struct{}{}
	cut := w.cut.Load()
	w.mu.Unlock()
	if cut {
		_ = tc.Close()
		return nil, errCut
	}
	return tc, nil
}

// cutAll makes every current and future connection fail and closes the sockets. After it returns no byte
// of this client reaches a broker.
func (w *wire) cutAll() {
	w.cut.Store(true)
	w.mu.Lock()
	conns := make([]*tapConn, 0, len(w.conns))
	for c := range w.conns {
		conns = append(conns, c)
	}
	w.mu.Unlock()
	for _, c := range conns {
		_ = c.Conn.Close() // unblocks a write stuck on a full socket
		c.wmu.Lock()       // waits for a write in progress, so its records are counted before cutAll returns
		c.wmu.Unlock()
	}
}

// tapConn is one client connection.
type tapConn struct {
	net.Conn
	w *wire

	wmu  sync.Mutex // serializes Write with cutAll; kgo writes one request per Write from one goroutine
	skip int        // bytes still to come of a frame already counted (after a short write)
	seqs []int64    // scratch: the sequence numbers one write carried (guarded by wmu)

	// awaiting holds, by correlation id, the produce requests written on this connection whose answers the tap
	// reads (guarded by amu: Write and Read run on different goroutines).
	amu      sync.Mutex
	awaiting map[int32]*sentRequest
	resp     respScan // owned by Read
}

func (c *tapConn) Read(p []byte) (int, error) {
	if c.w.cut.Load() {
		return 0, errCut
	}
	n, err := c.Conn.Read(p)
	if c.w.tap != nil && n > 0 {
		// The client sees these bytes only after this returns, so a rejection is on record before its promise.
		c.resp.scan(p[:n], c)
	}
	return n, err
}

func (c *tapConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.w.cut.Load() {
		return 0, errCut
	}
	n, err := c.Conn.Write(p)
	if c.w.tap != nil && n > 0 {
		c.skip, c.seqs = c.w.tap.observe(p, n, c.skip, c.seqs[:0], c)
	}
	return n, err
}

func (c *tapConn) Close() error {
	c.w.mu.Lock()
	delete(c.w.conns, c)
	c.w.mu.Unlock()
	err := c.Conn.Close()
	if c.w.tap != nil {
		c.w.tap.closed(c)
	}
	return err
}

// produceTap counts, per pending send, the produce requests written to a socket that carried its record.
// Records are identified by their value, which names the producer's process and sequence number.
type produceTap struct {
	process int
	decomp  kgo.Decompressor

	mu      sync.Mutex // guards everything below
	pending map[int64]*sendState
	blind   bool // a request could not be parsed: every count from now on is unknown

	// Failures of records that no request had carried yet wait here until the client can no longer write
	// them (settle, unsure.go).
	lastAdded int64              // the newest sequence number added
	written   map[*tapConn]int64 // per connection that carried our records, the newest sequence number written on it
	unsure    map[int64]*unsureFail
	order     []*unsureFail // unsure in failure order
	emit      func([]history.Op)
}

// newProduceTap returns a tap for process; emit appends completions whose outcome it settled late.
func newProduceTap(process int, capacity int, emit func([]history.Op)) *produceTap {
	return &produceTap{process: process, decomp: kgo.DefaultDecompressor(), pending: make(map[int64]*sendState, capacity),
		written: make(map[*tapConn]int64), unsure: make(map[int64]*unsureFail), emit: emit}
}

// add registers a send before its record is handed to the client.
func (t *produceTap) add(s *sendState) {
	t.mu.Lock()
	t.pending[s.seq] = s
	t.lastAdded = s.seq
	t.mu.Unlock()
}

// take returns the send of seq, how many requests carried it (-1: unknown) and how many of those the broker
// rejected before appending. The send stays registered (writes still count) until release.
func (t *produceTap) take(seq int64) (*sendState, int, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.pending[seq]
	if t.blind || s == nil {
		return s, -1, 0
	}
	return s, s.writes, s.rejected
}

// observe counts the records of every produce request that has bytes in p[:n]. skip is the number of bytes at
// the start of p that belong to a frame counted by an earlier write; the first return value is the same for the
// next write. The requests are parsed into seqs (scratch space, returned for reuse) without holding the tap's
// lock, so parsing never stalls the sender registering new records; the counts are then applied at once.
func (t *produceTap) observe(p []byte, n int, skip int, seqs []int64, c *tapConn) (int, []int64) {
	if skip >= n {
		return skip - n, seqs
	}
	pos := skip
	blind := false
	for pos < n {
		if len(p)-pos < 4 {
			blind = true
			break
		}
		size := int(binary.BigEndian.Uint32(p[pos:]))
		end := pos + 4 + size
		if size < 0 || end > len(p) {
			// A frame split across writes is something kgo never does; rather than guess, stop trusting counts.
			blind = true
			break
		}
		var err error
		var sent *sentRequest
		if seqs, sent, err = t.scanFrame(p[pos+4:end], seqs); err != nil {
			blind = true
		}
		if sent != nil && c != nil {
			c.await(sent)
		}
		pos = end
	}
	t.mu.Lock()
	if blind {
		t.blind = true
		ready := t.settleLocked(true)
		t.mu.Unlock()
		t.emitAll(ready)
		return 0, seqs
	}
	t.mu.Unlock()
	t.wrote(c, seqs)
	return pos - n, seqs
}

// wrote counts one write on c that carried the records of seqs, and settles what that allows.
func (t *produceTap) wrote(c *tapConn, seqs []int64) {
	t.mu.Lock()
	if len(seqs) > 0 && c != nil {
		t.written[c] = max(t.written[c], slices.Max(seqs))
	}
	for _, seq := range seqs {
		if s := t.pending[seq]; s != nil {
			s.writes++
		} else if u := t.unsure[seq]; u != nil {
			u.written = true
		}
	}
	ready := t.settleLocked(false)
	t.mu.Unlock()
	t.emitAll(ready)
}

// scanFrame parses one request (header and body) and appends the sequence numbers of our records in a produce
// request to seqs. For a produce request that will be answered (acks != 0) it also returns what the request
// carried, so the answer can be matched to the records.
func (t *produceTap) scanFrame(frame []byte, seqs []int64) ([]int64, *sentRequest, error) {
	if len(frame) < 10 {
		return seqs, nil, fmt.Errorf("request header of %d bytes", len(frame))
	}
	key := int16(binary.BigEndian.Uint16(frame))
	if key != 0 {
		return seqs, nil, nil
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = int16(binary.BigEndian.Uint16(frame[2:]))
	corr := int32(binary.BigEndian.Uint32(frame[4:]))
	pos := 8
	idLen := int(int16(binary.BigEndian.Uint16(frame[pos:])))
	pos += 2
	if idLen > 0 {
		pos += idLen
	}
	if req.IsFlexible() {
		var err error
		if pos, err = skipTags(frame, pos); err != nil {
			return seqs, nil, err
		}
	}
	if pos > len(frame) {
		return seqs, nil, fmt.Errorf("produce request header overruns the frame")
	}
	if err := req.UnsafeReadFrom(frame[pos:]); err != nil {
		return seqs, nil, fmt.Errorf("decoding produce request v%d: %w", req.Version, err)
	}
	var sent *sentRequest
	if req.Acks != 0 {
		sent = &sentRequest{corr: corr, version: req.Version}
	}
	var err error
	for i := range req.Topics {
		for j := range req.Topics[i].Partitions {
			from := len(seqs)
			if seqs, err = t.scanBatches(req.Topics[i].Partitions[j].Records, seqs); err != nil {
				return seqs, nil, err
			}
			if sent != nil && len(seqs) > from {
				// UnsafeReadFrom aliases the frame; the topic name must outlive it.
				sent.parts = append(sent.parts, sentPartition{topic: strings.Clone(req.Topics[i].Topic),
					partition: req.Topics[i].Partitions[j].Partition, seqs: slices.Clone(seqs[from:])})
			}
		}
	}
	if sent != nil && len(sent.parts) == 0 {
		sent = nil
	}
	return seqs, sent, nil
}

// skipTags skips a tagged-field section starting at pos.
func skipTags(b []byte, pos int) (int, error) {
	if pos > len(b) {
		return 0, fmt.Errorf("tagged fields past the end")
	}
	num, n := binary.Uvarint(b[pos:])
	if n <= 0 || num > uint64(len(b)) {
		return 0, fmt.Errorf("bad tagged field count")
	}
	pos += n
	for range num {
		_, n = binary.Uvarint(b[pos:])
		if n <= 0 {
			return 0, fmt.Errorf("bad tag")
		}
		pos += n
		size, n := binary.Uvarint(b[pos:])
		if n <= 0 || size > uint64(len(b)-pos-n) {
			return 0, fmt.Errorf("bad tag size")
		}
		pos += n + int(size)
	}
	return pos, nil
}

// batchHeaderLen is the size of a v2 record batch header up to and including the record count.
const batchHeaderLen = 61

// scanBatches walks the record batches of one partition and appends the sequence numbers of our records.
func (t *produceTap) scanBatches(b []byte, seqs []int64) ([]int64, error) {
	for len(b) > 0 {
		if len(b) < batchHeaderLen {
			return seqs, fmt.Errorf("record batch of %d bytes", len(b))
		}
		length := int(int32(binary.BigEndian.Uint32(b[8:])))
		end := 12 + length
		if length < batchHeaderLen-12 || end > len(b) {
			return seqs, fmt.Errorf("record batch length %d", length)
		}
		if magic := b[16]; magic != 2 {
			return seqs, fmt.Errorf("record batch magic %d", magic)
		}
		codec := kgo.CompressionCodecType(binary.BigEndian.Uint16(b[21:]) & 0x7)
		count := int(int32(binary.BigEndian.Uint32(b[57:])))
		records := b[batchHeaderLen:end]
		if codec != kgo.CodecNone {
			var err error
			if records, err = t.decomp.Decompress(records, codec); err != nil {
				return seqs, fmt.Errorf("decompressing a produced batch: %w", err)
			}
		}
		var err error
		if seqs, err = t.scanRecords(records, count, seqs); err != nil {
			return seqs, err
		}
		b = b[end:]
	}
	return seqs, nil
}

// scanRecords walks count records (v2 format: varint-prefixed) and appends the sequence numbers of our values.
func (t *produceTap) scanRecords(b []byte, count int, seqs []int64) ([]int64, error) {
	for range count {
		length, n := binary.Varint(b)
		if n <= 0 || length < 0 || int(length) > len(b)-n {
			return seqs, fmt.Errorf("bad record length")
		}
		rec := b[n : n+int(length)]
		b = b[n+int(length):]
		pos := 1 // attributes
		var err error
		for range 2 { // timestamp delta, offset delta
			if pos, err = skipVarint(rec, pos); err != nil {
				return seqs, err
			}
		}
		if _, pos, err = varBytes(rec, pos); err != nil { // key
			return seqs, err
		}
		value, _, err := varBytes(rec, pos)
		if err != nil {
			return seqs, err
		}
		if process, seq, ok := parseValueBytes(value); ok && process == t.process {
			seqs = append(seqs, seq)
		}
	}
	return seqs, nil
}

func skipVarint(b []byte, pos int) (int, error) {
	if pos > len(b) {
		return 0, fmt.Errorf("record overrun")
	}
	_, n := binary.Varint(b[pos:])
	if n <= 0 {
		return 0, fmt.Errorf("bad varint in record")
	}
	return pos + n, nil
}

// varBytes reads a varint-length-prefixed byte string (length -1 is null).
func varBytes(b []byte, pos int) ([]byte, int, error) {
	if pos > len(b) {
		return nil, 0, fmt.Errorf("record overrun")
	}
	l, n := binary.Varint(b[pos:])
	if n <= 0 || l < -1 || int(l) > len(b)-pos-n {
		return nil, 0, fmt.Errorf("bad length in record")
	}
	pos += n
	if l <= 0 {
		return nil, pos, nil
	}
	return b[pos : pos+int(l)], pos + int(l), nil
}

// parseValueBytes is history.ParseValue on bytes, without allocating.
func parseValueBytes(v []byte) (process int, seq int64, ok bool) {
	i := 0
	for i < len(v) && v[i] != '-' {
		if v[i] < '0' || v[i] > '9' || i > 9 {
			return 0, 0, false
		}
		process = process*10 + int(v[i]-'0')
		i++
	}
	if i == 0 || i >= len(v)-1 || len(v)-i-1 > 18 {
		return 0, 0, false
	}
	for _, c := range v[i+1:] {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		seq = seq*10 + int64(c-'0')
	}
	return process, seq, true
}
