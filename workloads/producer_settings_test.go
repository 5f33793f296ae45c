package workloads

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/history"
)

// produceProbe is a kgo hook measuring produce requests from the client's side.
type produceProbe struct {
	since func() int64 // the history clock

	mu          sync.Mutex
	writes      int
	reads       int
	inFlight    map[int32]int // per broker: written and not yet answered
	maxInFlight int
	firstWrite  int64 // history time of the first produce write
	codecs      map[uint8]int
	batches     int
	maxBatch    int // uncompressed bytes of the largest batch
}

func newProduceProbe(since func() int64) *produceProbe {
	return &produceProbe{since: since, inFlight: map[int32]int{}, codecs: map[uint8]int{}, firstWrite: -1}
}

func (p *produceProbe) OnBrokerWrite(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != 0 || err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.firstWrite < 0 {
		p.firstWrite = p.since()
	}
	p.writes++
	p.inFlight[meta.NodeID]++
	p.maxInFlight = max(p.maxInFlight, p.inFlight[meta.NodeID])
}

func (p *produceProbe) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if key != 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reads++
	p.inFlight[meta.NodeID]--
}

func (p *produceProbe) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.codecs[m.CompressionType]++
	p.batches++
	p.maxBatch = max(p.maxBatch, m.UncompressedBytes)
}

// runProducer runs one producer to completion with a probe attached and returns it and the producer.
func runProducer(t *testing.T, seeds []string, h *testHistory, cfg ProducerConfig) (*Producer, *produceProbe) {
	t.Helper()
	probe := newProduceProbe(h.w.Since)
	cfg.Opts = append(cfg.Opts, kgo.WithHooks(probe))
	p, err := NewProducer(h.rec, seeds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	return p, probe
}

// TestProducerSettingsReachClient: every Kafka setting lands in the client's configuration as the mapped kgo
// option.
func TestProducerSettingsReachClient(t *testing.T) {
	seeds := startCluster(t, 1)
	cfg := DefaultProducerConfig(testTopic, 1)
	for _, kv := range [][2]string{
		{"acks", "1"}, {"enable.idempotence", "false"}, {"retries", "7"},
		{"max.in.flight.requests.per.connection", "3"}, {"request.timeout.ms", "1234"},
		{"delivery.timeout.ms", "98765"}, {"linger.ms", "17"}, {"batch.size", "4096"}, {"compression.type", "zstd"},
	} {
		if err := cfg.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	p, err := NewProducer(newTestHistory(t).rec, seeds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	for _, c := range []struct {
		key  string
		opt  any
		want any
	}{
		{"acks", kgo.RequiredAcks, kgo.LeaderAck()},
		{"enable.idempotence", kgo.DisableIdempotentWrite, true},
		{"retries", kgo.RecordRetries, int64(7)},
		{"max.in.flight.requests.per.connection", kgo.MaxProduceRequestsInflightPerBroker, 3},
		{"request.timeout.ms", kgo.ProduceRequestTimeout, 1234 * time.Millisecond},
		{"delivery.timeout.ms", kgo.RecordDeliveryTimeout, 98765 * time.Millisecond},
		{"linger.ms", kgo.ProducerLinger, 17 * time.Millisecond},
		{"batch.size", kgo.ProducerBatchMaxBytes, int32(4096)},
		{"max.pending", kgo.MaxBufferedRecords, int64(1000)},
	} {
		if got := p.cl.OptValue(c.opt); got != c.want {
			t.Errorf("%s: client has %v (%T), want %v (%T)", c.key, got, got, c.want, c.want)
		}
	}
	codecs, _ := p.cl.OptValue(kgo.ProducerBatchCompression).([]kgo.CompressionCodec)
	if len(codecs) != 1 || codecs[0] != kgo.ZstdCompression() {
		t.Errorf("compression.type: client has %v", codecs)
	}
}

// TestProducerConfigValidate: bad values are rejected with the key named.
func TestProducerConfigValidate(t *testing.T) {
	for _, c := range []struct {
		set  [][2]string
		want string
	}{
		{[][2]string{{"acks", "2"}}, "acks"},
		{[][2]string{{"acks", "1"}}, "enable.idempotence=true requires acks=all"},
		{[][2]string{{"max.in.flight.requests.per.connection", "1"}}, "max.in.flight.requests.per.connection=1 with enable.idempotence=true"},
		{[][2]string{{"compression.type", "brotli"}}, "compression.type"},
		{[][2]string{{"delivery.timeout.ms", "1000"}}, "delivery.timeout.ms"},
		{[][2]string{{"batch.size", "10"}}, "batch.size"},
		{[][2]string{{"retries", "-1"}}, "retries"},
		{[][2]string{{"enable.idempotence", "false"}, {"max.in.flight.requests.per.connection", "0"}}, "max.in.flight"},
	} {
		cfg := DefaultProducerConfig(testTopic, 1)
		for _, kv := range c.set {
			if err := cfg.Set(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error naming %q", c.set, err, c.want)
		}
	}
	if cfg := DefaultProducerConfig(testTopic, 1); cfg.Validate() != nil {
		t.Errorf("defaults invalid: %v", cfg.Validate())
	}
	cfg := DefaultProducerConfig(testTopic, 1)
	if err := cfg.Set("no.such.key", "1"); err == nil {
		t.Error("unknown key accepted")
	}
}

// TestAcksZeroGetsNoResponse: with acks=0 the broker answers no produce request; with acks=1 it answers each.
func TestAcksZeroGetsNoResponse(t *testing.T) {
	seeds := startCluster(t, 1)
	for _, acks := range []string{"0", "1"} {
		h := newTestHistory(t)
		cfg := DefaultProducerConfig(testTopic, 1)
		cfg.Acks, cfg.EnableIdempotence, cfg.Rate, cfg.Count = acks, false, 0, 200
		p, probe := runProducer(t, seeds, h, cfg)
		probe.mu.Lock()
		writes, reads := probe.writes, probe.reads
		probe.mu.Unlock()
		if st := p.Stats(); st.OK != 200 || writes == 0 {
			t.Fatalf("acks=%s: stats %+v, %d produce requests", acks, st, writes)
		}
		switch {
		case acks == "0" && reads != 0:
			t.Fatalf("acks=0: %d produce responses read, want none", reads)
		case acks == "1" && reads != writes:
			t.Fatalf("acks=1: %d responses for %d requests", reads, writes)
		}
		for _, op := range sendsByValue(h.ops()) {
			if acks == "0" && op.Offset != -1 {
				t.Fatalf("acks=0 send %s acked at offset %d: the broker never said", op.Value, op.Offset)
			}
		}
	}
}

// TestMaxInFlightOne: with max.in.flight.requests.per.connection=1 no broker ever has two produce requests of the
// client in flight; with 5 and slow responses it does (so the measure can see it).
func TestMaxInFlightOne(t *testing.T) {
	seeds := startCluster(t, 3)
	for _, inflight := range []int{1, 5} {
		h := newTestHistory(t)
		cfg := DefaultProducerConfig(testTopic, 3)
		cfg.EnableIdempotence, cfg.MaxInFlight = false, inflight
		cfg.Rate, cfg.Count, cfg.BatchSize, cfg.Linger = 0, 3000, 1024, 0
		cfg.Dial = slowDial(20 * time.Millisecond)
		p, probe := runProducer(t, seeds, h, cfg)
		if st := p.Stats(); st.OK != 3000 {
			t.Fatalf("max.in.flight=%d: stats %+v", inflight, st)
		}
		probe.mu.Lock()
		most := probe.maxInFlight
		probe.mu.Unlock()
		if inflight == 1 && most != 1 || inflight == 5 && (most < 2 || most > 5) {
			t.Fatalf("max.in.flight=%d: at most %d produce requests in flight to one broker", inflight, most)
		}
		t.Logf("max.in.flight=%d: max observed %d", inflight, most)
	}
}

// TestCompressionCodecUsed: batches are written with the configured codec, and the records read back intact.
// kgo sends a batch uncompressed when compressing it would not make it smaller (a batch of one or two records
// after a timing split), so codec none may appear beside the configured one, never another codec.
func TestCompressionCodecUsed(t *testing.T) {
	seeds := startCluster(t, 1)
	codes := map[string]uint8{"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		h := newTestHistory(t)
		cfg := DefaultProducerConfig(testTopic, 1)
		cfg.CompressionType, cfg.Rate, cfg.Count = codec, 0, 100
		p, probe := runProducer(t, seeds, h, cfg)
		// kgo runs OnProduceBatchWritten after it finishes the records' promises, so the hook may trail Close.
		var got map[uint8]int
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			probe.mu.Lock()
			got = maps.Clone(probe.codecs)
			probe.mu.Unlock()
			if len(got) > 0 || time.Now().After(deadline) {
				break
			}
		}
		others := maps.Clone(got)
		delete(others, codes[codec])
		delete(others, codes["none"])
		if len(others) != 0 || got[codes[codec]] == 0 {
			t.Fatalf("compression.type=%s: batches by codec %v", codec, got)
		}
		if p.tap.blind {
			t.Fatalf("compression.type=%s: the wire tap could not read the batches", codec)
		}
		if st := p.Stats(); st.OK != 100 {
			t.Fatalf("compression.type=%s: %+v", codec, st)
		}
	}
}

// TestLingerHonoured: a lone record waits linger.ms before its produce request is written.
func TestLingerHonoured(t *testing.T) {
	seeds := startCluster(t, 1)
	h := newTestHistory(t)
	cfg := DefaultProducerConfig(testTopic, 1)
	cfg.Linger, cfg.Count = 300*time.Millisecond, 1
	probe := newProduceProbe(h.w.Since)
	cfg.Opts = []kgo.Opt{kgo.WithHooks(probe)}
	p, err := NewProducer(h.rec, seeds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if err := p.Run(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the send to complete", func() bool { return p.Stats().OK == 1 }) // no flush: linger alone sends it
	var invoked int64 = -1
	for _, op := range h.ops() {
		if op.F == history.Send && op.Type == history.Invoke {
			invoked = op.Time
		}
	}
	probe.mu.Lock()
	written := probe.firstWrite
	probe.mu.Unlock()
	if wait := time.Duration(written - invoked); invoked < 0 || written < 0 || wait < 290*time.Millisecond {
		t.Fatalf("record invoked at %d, produce written at %d: waited %v, want at least linger.ms=300ms", invoked, written, wait)
	}
}

// TestBatchSizeCapsBatches: no batch exceeds batch.size, and a small batch.size makes many batches.
func TestBatchSizeCapsBatches(t *testing.T) {
	seeds := startCluster(t, 1)
	h := newTestHistory(t)
	cfg := DefaultProducerConfig(testTopic, 1)
	cfg.BatchSize, cfg.Rate, cfg.Count, cfg.Linger = 1024, 0, 1000, 50*time.Millisecond
	_, probe := runProducer(t, seeds, h, cfg)
	probe.mu.Lock()
	defer probe.mu.Unlock()
	if probe.maxBatch > 1024 || probe.batches < 10 {
		t.Fatalf("batch.size=1024: %d batches, largest %d bytes", probe.batches, probe.maxBatch)
	}
}
