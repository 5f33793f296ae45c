package workloads

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/history"
)

// TestProducerCrashLosesExactlyItsBuffer: 300 sends are flushed and acked; 50 more sit in a lingering batch
// when the producer crashes. The crash op's Buffered must be exactly those 50, each recorded fail, none of them
// in the final read, and every acked send must be there.
func TestProducerCrashLosesExactlyItsBuffer(t *testing.T) {
	for _, idempotent := range []bool{true, false} {
		seeds := startCluster(t, 1)
		h := newTestHistory(t)
		cfg := DefaultProducerConfig(testTopic, 1)
		cfg.EnableIdempotence = idempotent
		cfg.Linger = 30 * time.Second
		cfg.DeliveryTimeout = 2 * time.Minute
		cfg.Rate = 0
		cfg.Count = 300
		p, err := NewProducer(h.rec, seeds, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Run(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		if err := p.cl.Flush(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		p.cfg.Count = 50 // well under batch.size: they linger
		if err := p.Run(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		buffered, err := p.Crash()
		if err != nil {
			t.Fatal(err)
		}
		if st := p.Stats(); buffered != 50 || st.Buffered != 50 || st.OK != 300 || st.Fail != 50 || st.Sent != 350 {
			t.Fatalf("idempotent=%v: buffered %d, stats %+v: want 300 ok and exactly the 50 lingering buffered", idempotent, buffered, st)
		}
		res, err := FinalRead(testCtx(t), h.rec, seeds, FinalReadConfig{Topics: []string{testTopic}})
		if err != nil {
			t.Fatal(err)
		}
		final := finalValues(t, res)
		ops := h.ops()
		fails, crashBuffered := 0, -1
		for _, op := range ops {
			if op.F == history.Crash && op.Type == history.OK {
				crashBuffered = op.Buffered
			}
		}
		for v, op := range sendsByValue(ops) {
			_, read := final[v]
			switch {
			case op.Type == history.OK && !read:
				t.Fatalf("acked %s missing from the final read", v)
			case op.Type == history.Fail && read:
				t.Fatalf("%s recorded fail (never sent) but it is in the final read", v)
			case op.Type == history.Fail:
				fails++
			case op.Type == history.Info:
				t.Fatalf("%s: info, but nothing was in flight", v)
			}
		}
		if crashBuffered != 50 || fails != 50 || len(final) != 300 {
			t.Fatalf("crash op buffered %d, %d sends recorded fail, %d records read", crashBuffered, fails, len(final))
		}
	}
}

// slowReads delays every read from a broker, so produce requests pile up in flight.
type slowConn struct {
	net.Conn
	delay time.Duration
}

func (c slowConn) Read(p []byte) (int, error) {
	time.Sleep(c.delay)
	return c.Conn.Read(p)
}

func slowDial(delay time.Duration) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return slowConn{c, delay}, nil
	}
}

// TestProducerCrashWithRequestsInFlight: records sent and not yet acknowledged when the producer crashes are
// not buffered records: they complete as info, and since the broker got them they are in the final read. Only
// records that never left the client count as Buffered and fail.
func TestProducerCrashWithRequestsInFlight(t *testing.T) {
	seeds := startCluster(t, 1)
	h := newTestHistory(t)
	cfg := DefaultProducerConfig(testTopic, 1)
	cfg.EnableIdempotence = false
	cfg.MaxInFlight = 5
	cfg.BatchSize = 1024
	cfg.Rate = 0
	cfg.Count = 2000
	cfg.Dial = slowDial(100 * time.Millisecond)
	p, err := NewProducer(h.rec, seeds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.Run(testCtx(t)) }()
	waitFor(t, "some acks", func() bool { return p.Stats().OK >= 100 })
	buffered, err := p.Crash()
	if err != nil {
		t.Fatal(err)
	}
	res, err := FinalRead(testCtx(t), h.rec, seeds, FinalReadConfig{Topics: []string{testTopic}})
	if err != nil {
		t.Fatal(err)
	}
	final := finalValues(t, res)
	infoRead, fails := 0, 0
	for v, op := range sendsByValue(h.ops()) {
		_, read := final[v]
		switch {
		case op.Type == history.OK && !read:
			t.Fatalf("acked %s missing", v)
		case op.Type == history.Fail && read:
			t.Fatalf("%s recorded as never sent (fail) but the broker has it", v)
		case op.Type == history.Fail:
			fails++
		case op.Type == history.Info && read:
			infoRead++
		}
	}
	if infoRead == 0 || fails != buffered {
		t.Fatalf("in-flight records read back: %d (want some); fails %d, buffered %d", infoRead, fails, buffered)
	}
	t.Logf("stats %+v, info read back %d", p.Stats(), infoRead)
}
