package workloads

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/history"
)

// Producer is one producer process: a franz-go client sending unique values (history.Value(process, seq)) and
// recording every send's invoke and its one completion (ok with the offset, fail, or info; see sendRules).
// A producer that crashed stays dead; the scenario starts a new Producer, which gets a new process number.
type Producer struct {
	cfg     ProducerConfig
	rec     *Recorder
	process int
	cl      *kgo.Client
	wire    *wire
	tap     *produceTap
	promise func(*kgo.Record, error) // one method value for every send, so sending allocates no closure
	noAcks  bool                     // acks=0: an ok carries no offset
	states  sync.Pool                // recycled sendStates: the client drops its record pointer once the promise returns

	inflight atomic.Int64   // sends outstanding (the async window)
	space    chan struct{}  // signalled when a completion opens the full window
	syncDone chan struct{}  // sync mode: the promise of the one outstanding send signals here
	pending  sync.WaitGroup // sends invoked and not yet completed

	loopMu  sync.Mutex // guards stopped and the start of Run
	stopped bool
	stop    chan struct{} // closed when Crash or Close begins: Run issues nothing more
	loop    sync.WaitGroup
	running bool  // a Run is in progress (guarded by loopMu)
	nextSeq int64 // the sequence number of the next send, across Runs (owned by the running Run)
	rng     *rand.Rand

	crashing atomic.Bool // set when Crash begins
	ended    atomic.Bool // Crash or Close ran
	stats    struct{ sent, ok, fail, info, buffered atomic.Int64 }
}

// ProducerStats counts a producer's sends by outcome. Buffered counts the records its crash found in the
// client never handed to a broker (each is also a fail).
type ProducerStats struct {
	Process                        int
	Sent, OK, Fail, Info, Buffered int64
}

// NewProducer validates cfg, takes a new process number and starts a client for seeds. Nothing is sent until Run.
func NewProducer(rec *Recorder, seeds []string, cfg ProducerConfig) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("producer config: %w", err)
	}
	p := &Producer{
		cfg:      cfg,
		rec:      rec,
		process:  rec.NewProcess(),
		space:    make(chan struct{}, 1),
		syncDone: make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	p.promise = p.complete
	p.rng = rand.New(rand.NewPCG(cfg.Seed, uint64(p.process)))
	p.noAcks = cfg.Acks == "0"
	p.tap = newProduceTap(p.process, cfg.MaxPending, p.settled)
	p.wire = newWire(cfg.Dial, p.tap)
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.Dialer(p.wire.dialer),
		kgo.ClientID("kafkatrial-producer-" + strconv.Itoa(p.process)),
		kgo.DisableClientMetrics(),
	}
	opts = append(opts, cfg.kgoOpts()...)
	opts = append(opts, cfg.Opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting producer client %d: %w", p.process, err)
	}
	p.cl = cl
	return p, nil
}

// Process returns the producer's process number.
func (p *Producer) Process() int { return p.process }

// Stats returns the counts so far.
func (p *Producer) Stats() ProducerStats {
	return ProducerStats{
		Process: p.process, Sent: p.stats.sent.Load(), OK: p.stats.ok.Load(), Fail: p.stats.fail.Load(),
		Info: p.stats.info.Load(), Buffered: p.stats.buffered.Load(),
	}
}

// errEnded is returned when a producer is used after Crash or Close, or Run is called during a Run.
var errEnded = errors.New("producer crashed, closed or already running")

// Run sends until ctx ends, Count sends were issued, or Crash/Close begins. It returns once it stops issuing;
// outstanding sends complete in the background (Close waits for them, Crash settles them). Run may be called
// again (not concurrently): the sequence numbers continue.
func (p *Producer) Run(ctx context.Context) error {
	p.loopMu.Lock()
	if p.stopped || p.running {
		p.loopMu.Unlock()
		return errEnded
	}
	p.running = true
	p.loop.Add(1)
	p.loopMu.Unlock()
	defer func() {
		p.loopMu.Lock()
		p.running = false
		p.loopMu.Unlock()
		p.loop.Done()
	}()
	var interval time.Duration
	if p.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / p.cfg.Rate)
	}
	pace := time.NewTimer(0)
	defer pace.Stop()
	start := time.Now()
	for n := int64(0); p.cfg.Count == 0 || n < p.cfg.Count; n++ {
		if interval > 0 {
			if wait := time.Until(start.Add(time.Duration(n) * interval)); wait > 0 {
				pace.Reset(wait)
				select {
				case <-pace.C:
				case <-ctx.Done():
					return nil
				case <-p.stop:
					return nil
				}
			}
		}
		for p.inflight.Load() >= int64(p.cfg.MaxPending) {
			select {
			case <-p.space:
			case <-ctx.Done():
				return nil
			case <-p.stop:
				return nil
			}
		}
		select { // a stop that raced the window wins: a crash must not see a send begin after it
		case <-p.stop:
			return nil
		default:
		}
		p.inflight.Add(1)
		p.send(p.nextSeq, int32(p.rng.Uint64N(uint64(p.cfg.Partitions))))
		p.nextSeq++
		if !p.cfg.Async {
			select {
			case <-p.syncDone:
			case <-p.stop:
				return nil
			}
		}
	}
	return nil
}

// sendState is one outstanding send. The record lives here so the client can hold a pointer to it.
type sendState struct {
	seq      int64
	writes   int // produce requests that carried the record (guarded by the tap's mu)
	rejected int // of those, the ones the broker answered with a rejection before the append (same guard)
	rec      kgo.Record
}

// send records the invoke and hands the record to the client. The value's bytes are shared between the history
// op (a string) and the record (a []byte the client only reads), so a send allocates the value once.
func (p *Producer) send(seq int64, partition int32) {
	value := history.Value(p.process, seq)
	s, _ := p.states.Get().(*sendState)
	if s == nil {
		s = new(sendState)
	}
	s.seq = seq
	s.rec.Topic = p.cfg.Topic
	s.rec.Partition = partition
	s.rec.Value = unsafe.Slice(unsafe.StringData(value), len(value))
	p.tap.add(s)
	p.pending.Add(1)
	p.stats.sent.Add(1)
	p.rec.append(&history.Op{Process: p.process, Type: history.Invoke, F: history.Send,
		Topic: p.cfg.Topic, Partition: partition, Value: value})
	// Background, not Run's ctx: ending a run must not cancel records already handed over.
	p.cl.Produce(context.Background(), &s.rec, p.promise)
}

// settled records the completions of failures the tap held (unsure.go).
func (p *Producer) settled(ops []history.Op) {
	for i := range ops {
		if ops[i].Type == history.Fail {
			p.stats.fail.Add(1)
		} else {
			p.stats.info.Add(1)
		}
		p.rec.append(&ops[i])
	}
}

// complete is the promise of every send: it maps the outcome through sendOutcome and records the completion.
func (p *Producer) complete(r *kgo.Record, err error) {
	_, seq, _ := parseValueBytes(r.Value)
	s, writes, rejected := p.tap.take(seq)
	t := sendOutcome(err, writes, rejected)
	var held *history.Op
	op := history.Op{Process: p.process, Type: t, F: history.Send, Topic: r.Topic, Partition: r.Partition,
		Value: unsafe.String(unsafe.SliceData(r.Value), len(r.Value))}
	switch t {
	case history.OK:
		op.Offset = r.Offset
		if p.noAcks {
			// With acks=0 the broker never answers; kgo numbers the records from 0 within each batch. Those
			// numbers are not offsets, so the history says "unknown".
			op.Offset = -1
		}
		p.stats.ok.Add(1)
	case history.Fail:
		op.Error = err.Error()
		if writes == 0 && !p.crashing.Load() && !errors.Is(err, kgo.ErrMaxBuffered) {
			// franz-go may still write a request it serialized before failing the record: the tap settles it.
			held = &op
			break
		}
		p.stats.fail.Add(1)
		if writes == 0 && p.crashing.Load() {
			p.stats.buffered.Add(1)
		}
	default:
		op.Error = err.Error()
		p.stats.info.Add(1)
	}
	p.tap.release(seq, held)
	if held == nil {
		p.rec.append(&op)
	}
	if s != nil {
		*s = sendState{} // kgo reads a non-zero Timestamp as the record's own, so nothing may survive reuse
		p.states.Put(s)
	}
	if p.inflight.Add(-1) == int64(p.cfg.MaxPending)-1 {
		select { // only the one sender waits, and only on a full window
		case p.space <- struct{}{}:
		default:
		}
	}
	if !p.cfg.Async {
		select {
		case p.syncDone <- struct{}{}:
		default:
		}
	}
	p.pending.Done()
}

// halt stops Run from issuing more sends and waits until it has returned.
func (p *Producer) halt() {
	p.loopMu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.stop)
	}
	p.loopMu.Unlock()
	p.loop.Wait()
}

// Crash kills the producer like a process death: sending stops, every connection is cut at once (no further
// byte reaches a broker), and the client is closed, failing what it still buffers. Every outstanding send gets
// its completion: fail for records that never left the client, info or fail per sendRules for the others.
// Then the crash op is recorded with Buffered = the records that never left. Returns Buffered.
func (p *Producer) Crash() (int, error) {
	if !p.ended.CompareAndSwap(false, true) {
		return 0, errEnded
	}
	p.crashing.Store(true)
	p.halt()
	p.wire.cutAll()
	p.cl.Close()
	p.pending.Wait()
	p.tap.settleAll()
	buffered := int(p.stats.buffered.Load())
	p.rec.pair(history.Op{Process: p.process, F: history.Crash, Buffered: buffered}, history.OK)
	return buffered, p.rec.Err()
}

// Close stops sending, waits (bounded by ctx) for every outstanding send's outcome, and closes the client.
// Sends still outstanding when ctx ends are completed by the client's close (info, or fail if never sent).
func (p *Producer) Close(ctx context.Context) error {
	if !p.ended.CompareAndSwap(false, true) {
		return errEnded
	}
	p.halt()
	flushErr := p.cl.Flush(ctx)
	p.cl.Close()
	p.pending.Wait()
	p.tap.settleAll()
	if flushErr != nil {
		return fmt.Errorf("flushing producer %d: %w", p.process, flushErr)
	}
	return p.rec.Err()
}
