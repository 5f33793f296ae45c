package broker

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn is a hand-driven Kafka connection for requests no client library would send.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, conn: c}
}

// frame builds a request frame (header v1/v2 as the request needs) for req.
func frame(req kmsg.Request, corr int32) []byte {
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// roundTrip sends req and decodes the response into resp.
func (rc *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	rc.t.Helper()
	rc.corr++
	if _, err := rc.conn.Write(frame(req, rc.corr)); err != nil {
		rc.t.Fatal(err)
	}
	body := rc.readFrame()
	if got := int32(binary.BigEndian.Uint32(body)); got != rc.corr {
		rc.t.Fatalf("correlation id %d, want %d", got, rc.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		rc.t.Fatalf("decoding %T: %v", resp, err)
	}
	return resp
}

func (rc *rawConn) readFrame() []byte {
	rc.t.Helper()
	rc.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var sz [4]byte
	if _, err := io.ReadFull(rc.conn, sz[:]); err != nil {
		rc.t.Fatalf("reading a response: %v", err)
	}
	b := make([]byte, binary.BigEndian.Uint32(sz[:]))
	if _, err := io.ReadFull(rc.conn, b); err != nil {
		rc.t.Fatalf("reading a response: %v", err)
	}
	return b
}

// expectClosed asserts the server closes the connection (EOF or reset) without answering.
func (rc *rawConn) expectClosed() {
	rc.t.Helper()
	rc.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b [1]byte
	if n, err := rc.conn.Read(b[:]); err == nil || n > 0 {
		rc.t.Fatalf("connection still open (read %d bytes, err %v)", n, err)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		rc.t.Fatal("connection neither answered nor closed")
	}
}

// idempotentBatch builds a record batch v2 of n records for producer pid/epoch starting at sequence seq.
func idempotentBatch(pid int64, epoch int16, seq int32, n int) []byte {
	var records []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte{byte('a' + i%26)}}
		rec := r.AppendTo(nil)
		records = append(records, rec...)
	}
	now := time.Now().UnixMilli()
	rb := kmsg.RecordBatch{FirstOffset: 0, PartitionLeaderEpoch: -1, Magic: 2, LastOffsetDelta: int32(n - 1),
		FirstTimestamp: now, MaxTimestamp: now, ProducerID: pid, ProducerEpoch: epoch, FirstSequence: seq,
		NumRecords: int32(n), Records: records}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

func produceReq(topic string, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 7, -1, 30000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func produceResult(t *testing.T, resp kmsg.Response) (int64, int16) {
	t.Helper()
	p := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	return p.BaseOffset, p.ErrorCode
}

func TestIdempotentRetryGetsOriginalOffset(t *testing.T) {
	tn := startTestNode(t)
	tn.createTopic("idem", 1, nil)
	rc := dialRaw(t, tn.Addr())
	ipReq := kmsg.NewPtrInitProducerIDRequest()
	ipReq.Version = 4
	ip := rc.roundTrip(ipReq).(*kmsg.InitProducerIDResponse)
	if ip.ErrorCode != 0 || ip.ProducerID < 0 {
		t.Fatalf("InitProducerId: code %d id %d", ip.ErrorCode, ip.ProducerID)
	}
	pid := ip.ProducerID
	steps := []struct {
		name       string
		epoch      int16
		seq        int32
		n          int
		wantOffset int64
		wantCode   int16
	}{
		{"first batch", 0, 0, 3, 0, 0},
		{"second batch", 0, 3, 2, 3, 0},
		{"retry of the first", 0, 0, 3, 0, 0},
		{"retry of the second", 0, 3, 2, 3, 0},
		{"gap", 0, 10, 1, -1, kerr.OutOfOrderSequenceNumber.Code},
		{"next in sequence", 0, 5, 1, 5, 0},
		{"bumped epoch restarts at 0", 1, 0, 1, 6, 0},
		{"stale epoch", 0, 6, 1, -1, kerr.InvalidProducerEpoch.Code},
	}
	for _, s := range steps {
		off, code := produceResult(t, rc.roundTrip(produceReq("idem", idempotentBatch(pid, s.epoch, s.seq, s.n))))
		if code != s.wantCode || (s.wantCode == 0 && off != s.wantOffset) {
			t.Fatalf("%s: offset %d code %d, want offset %d code %d", s.name, off, code, s.wantOffset, s.wantCode)
		}
	}
	// Stored once: 3 + 2 + 1 + 1 records.
	if _, end := tn.offsets(t, "idem"); end != 7 {
		t.Fatalf("log end %d, want 7 (retries stored once)", end)
	}
	// Producer state survives a restart (rebuilt from the log): a retry still gets its original offset.
	tn.Kill()
	tn.start()
	rc = dialRaw(t, tn.Addr())
	off, code := produceResult(t, rc.roundTrip(produceReq("idem", idempotentBatch(pid, 1, 0, 1))))
	if code != 0 || off != 6 {
		t.Fatalf("retry after restart: offset %d code %d, want 6 and no error", off, code)
	}
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	tn := startTestNode(t)
	tn.createTopic("bad", 1, nil)
	good := tn.producer("bad")
	sent := 0
	stillServes := func() {
		t.Helper()
		if err := good.ProduceSync(testCtx(t), kgo.StringRecord("ok")).FirstErr(); err != nil {
			t.Fatalf("the other client stopped being served: %v", err)
		}
		sent++
	}
	stillServes()
	unknownKey := func() []byte {
		b := frame(kmsg.NewPtrApiVersionsRequest(), 1)
		binary.BigEndian.PutUint16(b[4:], 999)
		return b
	}
	cases := []struct {
		name  string
		bytes []byte
		close bool // send then half-close (truncation)
	}{
		{"garbage", []byte("\x00\x00\x00\x20this is not a kafka request at all!"), false},
		{"oversized", []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0}, false},
		{"negative size", []byte{0xff, 0xff, 0xff, 0xf0}, false},
		{"too small", []byte{0, 0, 0, 2, 0, 0}, false},
		{"truncated", append([]byte{0, 0, 1, 0}, make([]byte, 20)...), true},
		{"unknown api key", unknownKey(), false},
		{"bad client id length", []byte{0, 0, 0, 12, 0, 18, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0, 0}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, tn.Addr())
			if _, err := rc.conn.Write(c.bytes); err != nil {
				t.Fatal(err)
			}
			if c.close {
				rc.conn.(*net.TCPConn).CloseWrite()
			}
			rc.expectClosed()
			stillServes()
		})
	}
	t.Run("unsupported ApiVersions version is answered", func(t *testing.T) {
		rc := dialRaw(t, tn.Addr())
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		b := frame(req, 7)
		binary.BigEndian.PutUint16(b[6:], 99)
		rc.conn.Write(b)
		body := rc.readFrame()
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		if err := resp.ReadFrom(body[4:]); err != nil {
			t.Fatal(err)
		}
		if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) == 0 {
			t.Fatalf("ApiVersions v99: code %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
		}
	})
	t.Run("unsupported version of another API closes", func(t *testing.T) {
		rc := dialRaw(t, tn.Addr())
		req := kmsg.NewPtrProduceRequest()
		req.Version = 2 // magic v0/v1 only: not served
		rc.conn.Write(frame(req, 1))
		rc.expectClosed()
		stillServes()
	})
}

// TestBadInputErrorsNameTheProblem: the errors logged for a closed connection say what was wrong with the bytes.
func TestBadInputErrorsNameTheProblem(t *testing.T) {
	_, err := readFrame(bytes.NewReader([]byte{0xff, 0xff, 0xff, 0xf0}), 1<<20)
	if err == nil || !strings.Contains(err.Error(), "negative size -16") {
		t.Fatalf("negative frame size: %v", err)
	}
	_, err = readFrame(bytes.NewReader([]byte{0x7f, 0xff, 0xff, 0xff}), 1<<20)
	if err == nil || !strings.Contains(err.Error(), "frame of 2147483647 bytes, limit 1048576") {
		t.Fatalf("oversized frame: %v", err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version = 7
	f := frame(req, 1)[4:]
	var n Node
	_, err = n.handleFrame(&connCtx{}, f[:len(f)-3], nil)
	if err == nil || err.Error() != "malformed Produce v7 request: the body ends before the fields it declares" {
		t.Fatalf("truncated body: %v", err)
	}
}

// TestIdleConnectionsAreClosed: connections.max.idle.ms lets go of a client that sends nothing, or stops inside
// a frame, and only of it: a connection in use is answered, and one that pauses less than the limit between
// requests stays open.
func TestIdleConnectionsAreClosed(t *testing.T) {
	const idle = 500 * time.Millisecond
	tn := startTestNode(t, func(c *Config) { c.Timing.ConnectionsMaxIdle = idle })
	apiVersions := func(rc *rawConn, corr int32) {
		t.Helper()
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		if _, err := rc.conn.Write(frame(req, corr)); err != nil {
			t.Fatal(err)
		}
		rc.readFrame()
	}
	silent := dialRaw(t, tn.Addr())
	stalled := dialRaw(t, tn.Addr())
	if _, err := stalled.conn.Write([]byte{0, 0, 0, 100, 0, 18}); err != nil { // 6 bytes of a 104-byte frame
		t.Fatal(err)
	}
	busy := dialRaw(t, tn.Addr())
	start := time.Now()
	for i := range 8 { // 8 x idle/5 between requests: open well past the limit, never idle half as long
		apiVersions(busy, int32(i))
		time.Sleep(idle / 5)
	}
	silent.expectClosed()
	stalled.expectClosed()
	if d := time.Since(start); d < idle {
		t.Fatalf("closed after %v, before connections.max.idle.ms %v", d, idle)
	}
	apiVersions(busy, 99)
}
