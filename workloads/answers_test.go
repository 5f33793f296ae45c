package workloads

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkatrial/kafkatrial/history"
)

// corruptConn flips a byte inside the record data of some produce requests on their way to the broker, below
// the wire tap (as a faulty network would), and delays reads so that requests pile up in flight.
type corruptConn struct {
	net.Conn
	mu  *sync.Mutex
	rng *rand.Rand
}

func (c corruptConn) Read(p []byte) (int, error) {
	time.Sleep(5 * time.Millisecond)
	return c.Conn.Read(p)
}

func (c corruptConn) Write(p []byte) (int, error) {
	// kgo writes one whole request per Write. A produce request ends with its record batch and then, from v9
	// on, three empty tag sections; 8 bytes from the end is inside the last record.
	if len(p) > 100 && binary.BigEndian.Uint16(p[4:]) == 0 {
		c.mu.Lock()
		hit := c.rng.IntN(8) == 0
		c.mu.Unlock()
		if hit {
			q := append([]byte(nil), p...)
			q[len(q)-8] ^= 0xff
			n, err := c.Conn.Write(q)
			return min(n, len(p)), err
		}
	}
	return c.Conn.Write(p)
}

// TestRejectedBatchDoesNotCondemnBatchesInFlight: when the broker rejects one batch (CORRUPT_MESSAGE, its CRC
// check), franz-go fails every record it holds for the partition with that error, including batches already in
// flight that the broker appended. Only the records whose own request was rejected may be recorded as fail; the
// others are info, and some of them are in the log.
func TestRejectedBatchDoesNotCondemnBatchesInFlight(t *testing.T) {
	seeds := startCluster(t, 1)
	h := newTestHistory(t)
	cfg := DefaultProducerConfig(testTopic, 1)
	cfg.EnableIdempotence = false
	cfg.MaxInFlight = 5
	cfg.Linger = time.Millisecond
	cfg.BatchSize = 1024
	cfg.Rate = 0
	cfg.Count = 3000
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(7, 7))
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return corruptConn{c, &mu, rng}, nil
	}
	runProducer(t, seeds, h, cfg)
	res, err := FinalRead(testCtx(t), h.rec, seeds, FinalReadConfig{Topics: []string{testTopic}})
	if err != nil {
		t.Fatal(err)
	}
	final := finalValues(t, res)
	var fails, infoRead int
	for v, op := range sendsByValue(h.ops()) {
		_, read := final[v]
		switch {
		case op.Type == history.OK && !read:
			t.Fatalf("acked %s missing", v)
		case op.Type == history.Fail && read:
			t.Fatalf("%s recorded as a definite failure (%s) but the broker appended it", v, op.Error)
		case op.Type == history.Fail:
			fails++
		case op.Type == history.Info && read:
			infoRead++
		}
	}
	if fails == 0 || infoRead == 0 {
		t.Fatalf("definite failures %d, failed-by-the-client-but-appended %d: want both (the corruption did not bite)", fails, infoRead)
	}
	t.Logf("definite failures %d; records kgo failed although the broker appended them (info): %d", fails, infoRead)
}

// A failure of a record no request had carried is recorded only once the client can no longer write it: fail
// when every connection has since written a newer record (or closed), info when a request carries it after all.
func TestUnsureFailuresSettle(t *testing.T) {
	var got []history.Op
	tap := newProduceTap(1, 8, func(ops []history.Op) { got = append(got, ops...) })
	a, b := &tapConn{}, &tapConn{}
	for seq := range int64(6) {
		tap.add(&sendState{seq: seq})
	}
	tap.wrote(a, []int64{0})
	tap.wrote(b, []int64{1})
	for _, seq := range []int64{2, 3} { // failed before any request carried them
		tap.take(seq)
		tap.release(seq, &history.Op{Type: history.Fail, Value: history.Value(1, seq)})
	}
	if len(got) != 0 {
		t.Fatalf("settled %v before the client stopped being able to write them", got)
	}
	tap.wrote(a, []int64{3})    // a request serialized before the failure still goes out: 3 is info
	tap.add(&sendState{seq: 6}) // invoked after the failures
	tap.wrote(a, []int64{6})
	if len(got) != 1 || got[0].Value != history.Value(1, 3) || got[0].Type != history.Info {
		t.Fatalf("after the late write of 3: settled %v, want only 3 as info", got)
	}
	tap.closed(b) // b writes nothing more, and a wrote a newer record: 2 was never written
	if len(got) != 2 || got[1].Value != history.Value(1, 2) || got[1].Type != history.Fail {
		t.Fatalf("after b closed: settled %v, want 2 as fail", got)
	}
	tap.take(4)
	tap.release(4, &history.Op{Type: history.Fail, Value: history.Value(1, 4)})
	tap.settleAll()
	if len(got) != 3 || got[2].Type != history.Fail {
		t.Fatalf("settleAll: settled %v, want 4 as fail", got)
	}
}

// FuzzAnswers feeds arbitrary bytes to the tap's reader of broker answers, cut at an arbitrary point: it may
// stop trusting its counts, but never panics, and never marks a record rejected without a well-formed answer.
func FuzzAnswers(f *testing.F) {
	resp := kmsg.NewPtrProduceResponse()
	resp.Version = 9
	rt := kmsg.NewProduceResponseTopic()
	rt.Topic = "trial"
	rp := kmsg.NewProduceResponseTopicPartition()
	rp.ErrorCode = kerr.CorruptMessage.Code
	rt.Partitions = append(rt.Partitions, rp)
	resp.Topics = append(resp.Topics, rt)
	body := resp.AppendTo([]byte{0, 0, 0, 1, 0}) // correlation id 1, empty header tags
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	f.Add(append(frame, body...), uint8(3))
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 1}, uint8(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		tap := newProduceTap(1, 1, nil)
		tap.add(&sendState{seq: 7})
		c := &tapConn{w: &wire{tap: tap}}
		c.await(&sentRequest{corr: 1, version: 9, parts: []sentPartition{{topic: "trial", partition: 0, seqs: []int64{7}}}})
		k := min(int(cut), len(data))
		c.resp.scan(data[:k], c)
		c.resp.scan(data[k:], c)
		if s, _, rejected := tap.take(7); s != nil && rejected > 0 && !bytes.Contains(data, []byte("trial")) {
			t.Fatalf("record marked rejected by an answer that names no topic trial")
		}
	})
}
