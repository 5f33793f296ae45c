package workloads

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkatrial/kafkatrial/history"
)

// Consumer is one consumer process: a franz-go client that polls, processes and commits by its commit strategy,
// recording polls, process ops, commits, subscriptions and rebalances. A crashed consumer stays dead; the
// scenario starts a new Consumer (new process number) to restart it.
type Consumer struct {
	cfg ConsumerConfig
	rec *Recorder
	s   *session
	cl  *kgo.Client
	w   *wire

	heldMu sync.Mutex // guards held
	held   map[history.TopicPartition]struct{}

	dead    context.Context // canceled by Crash: interrupts polls, processing and commits at once
	kill    context.CancelFunc
	stopMu  sync.Mutex // guards stopped and the start of Run
	stopped bool
	stop    chan struct{}  // closed by Close and Crash: Run polls no more
	buffer  chan pollBatch // the buffered style's records polled and not yet processed
	workers sync.WaitGroup // Run's loop and the buffered style's worker
	crashed atomic.Bool    // set first thing in Crash; callbacks start nothing after it
	ended   atomic.Bool    // Crash or Close ran
	stats   struct{ polls, polled, processed, commits atomic.Int64 }
}

// ConsumerStats counts what a consumer did.
type ConsumerStats struct {
	Process                           int
	Polls, Polled, Processed, Commits int64
}

// pollBatch is one poll's records as recorded and the offsets that commit them.
type pollBatch struct {
	records []history.Record
	offsets map[string]map[int32]kgo.EpochOffset
}

// NewConsumer validates cfg, takes a new process number, records the subscription (group strategies) and starts
// the client. Nothing is polled until Run.
func NewConsumer(rec *Recorder, seeds []string, cfg ConsumerConfig) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("consumer config: %w", err)
	}
	c := &Consumer{
		cfg:  cfg,
		rec:  rec,
		s:    newSession(rec),
		held: make(map[history.TopicPartition]struct{}),
		stop: make(chan struct{}),
	}
	c.dead, c.kill = context.WithCancel(context.Background())
	if cfg.Processing == ProcessBuffered {
		c.buffer = make(chan pollBatch, cfg.BufferPolls)
	}
	c.w = newWire(cfg.Dial, nil)
	iso, _ := cfg.isolation()
	reset, _ := cfg.reset()
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.Dialer(c.w.dialer),
		kgo.ClientID("kafkatrial-consumer-" + strconv.Itoa(c.s.process)),
		kgo.DisableClientMetrics(),
		kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(reset),
	}
	if cfg.Strategy != StrategyDirect {
		opts = append(opts,
			kgo.ConsumerGroup(cfg.GroupID),
			kgo.ConsumeTopics(cfg.Topics...),
			kgo.SessionTimeout(cfg.SessionTimeout),
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsAssigned(c.onAssigned),
			kgo.OnPartitionsRevoked(c.onRevoked),
			kgo.OnPartitionsLost(c.onLost),
		)
		if cfg.Strategy == StrategyAuto {
			opts = append(opts, kgo.AutoCommitInterval(cfg.AutoCommitInterval), kgo.AutoCommitCallback(c.onCommitted))
		} else {
			opts = append(opts, kgo.DisableAutoCommit())
		}
		c.s.event(history.Op{F: history.Subscribe, Topics: slices.Clone(cfg.Topics), Group: cfg.GroupID}, history.OK)
	}
	opts = append(opts, cfg.Backoff.kgoOpts(cfg.Seed^uint64(c.s.process))...)
	opts = append(opts, cfg.Opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting consumer client %d: %w", c.s.process, err)
	}
	c.cl = cl
	return c, nil
}

// Process returns the consumer's process number.
func (c *Consumer) Process() int { return c.s.process }

// Stats returns the counts so far.
func (c *Consumer) Stats() ConsumerStats {
	return ConsumerStats{Process: c.s.process, Polls: c.stats.polls.Load(), Polled: c.stats.polled.Load(),
		Processed: c.stats.processed.Load(), Commits: c.stats.commits.Load()}
}

// Run polls and processes until ctx ends or Close/Crash begins.
func (c *Consumer) Run(ctx context.Context) error {
	c.stopMu.Lock()
	if c.stopped {
		c.stopMu.Unlock()
		return errors.New("consumer already crashed or closed")
	}
	c.workers.Add(1)
	if c.buffer != nil {
		c.workers.Add(1)
		go c.work()
	}
	c.stopMu.Unlock()
	defer c.workers.Done()
	if c.buffer != nil {
		defer close(c.buffer)
	}

	pollCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.stop:
		case <-c.dead.Done():
		case <-pollCtx.Done():
		}
		cancel()
	}()
	if c.cfg.Strategy == StrategyDirect {
		if err := c.assignFromStore(pollCtx); err != nil {
			return err
		}
	}
	for pollCtx.Err() == nil {
		c.s.beginPoll()
		fs := c.cl.PollRecords(pollCtx, c.cfg.MaxPollRecords)
		batch := c.batchOf(fs)
		c.s.endPoll(batch.records)
		c.stats.polls.Add(1)
		c.stats.polled.Add(int64(len(batch.records)))
		if len(batch.records) > 0 {
			if c.buffer != nil {
				select {
				case c.buffer <- batch:
				case <-pollCtx.Done():
				}
			} else {
				c.handle(batch)
			}
		}
		if c.cfg.Strategy != StrategyDirect {
			c.cl.AllowRebalance()
		}
		if fs.Err() != nil && clientGone(fs) {
			return nil
		}
	}
	return nil
}

// clientGone reports whether a poll failed because the client is closing.
func clientGone(fs kgo.Fetches) bool {
	gone := false
	fs.EachError(func(_ string, _ int32, err error) {
		if errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled) {
			gone = true
		}
	})
	return gone
}

// batchOf converts a poll's records for the history and the commit offsets.
func (c *Consumer) batchOf(fs kgo.Fetches) pollBatch {
	n := fs.NumRecords()
	if n == 0 {
		return pollBatch{}
	}
	b := pollBatch{records: make([]history.Record, 0, n), offsets: make(map[string]map[int32]kgo.EpochOffset)}
	fs.EachRecord(func(r *kgo.Record) {
		b.records = append(b.records, recordOf(r))
		ps := b.offsets[r.Topic]
		if ps == nil {
			ps = make(map[int32]kgo.EpochOffset)
			b.offsets[r.Topic] = ps
		}
		ps[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
	})
	return b
}

// work is the buffered style's worker: it processes polled batches in order until the buffer closes or the
// process dies.
func (c *Consumer) work() {
	defer c.workers.Done()
	for b := range c.buffer {
		if c.dead.Err() != nil {
			return
		}
		c.handle(b)
	}
}

// handle processes and commits one poll's records in the order the strategy prescribes. A crash stops it between
// steps (and interrupts processing), never in the middle of recording a step.
func (c *Consumer) handle(b pollBatch) {
	switch c.cfg.Strategy {
	case StrategyBeforeProcess:
		c.commitSync(b)
		if c.dead.Err() == nil {
			c.process(b)
		}
	case StrategyAfterProcess:
		if c.process(b) && c.dead.Err() == nil {
			c.commitSync(b)
		}
	case StrategyAsync:
		if c.process(b) && c.dead.Err() == nil {
			c.cl.CommitOffsets(c.dead, b.offsets, c.onCommitted)
		}
	case StrategyAuto:
		c.process(b)
	case StrategyDirect:
		c.processDirect(b)
	}
}

// simulateWork waits out the application's processing time; false if the process died meanwhile.
func (c *Consumer) simulateWork() bool {
	if c.cfg.ProcessTime > 0 {
		t := time.NewTimer(c.cfg.ProcessTime)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.dead.Done():
			return false
		}
	}
	return c.dead.Err() == nil
}

// process handles a poll's records one at a time, as an application does: each record's work, then its process
// op. A crash therefore lands between records as often as anywhere else, leaving part of a poll processed and
// none of it committed (at-least-once) or all of it committed (at-most-once). False if the process died first.
func (c *Consumer) process(b pollBatch) bool {
	for i := range b.records {
		if !c.simulateWork() {
			return false
		}
		c.s.event(history.Op{F: history.Process, Records: b.records[i : i+1]}, history.OK)
		c.stats.processed.Add(1)
	}
	return true
}

// processDirect handles a poll's records one at a time, storing each result with its offset in one atomic
// write, then recording the process and the commit it amounts to.
func (c *Consumer) processDirect(b pollBatch) {
	for i := range b.records {
		if !c.simulateWork() {
			return
		}
		rec := b.records[i : i+1]
		positions, err := c.cfg.Store.Apply(rec)
		if err != nil {
			c.s.event(history.Op{F: history.Process, Records: rec, Error: err.Error()}, history.Fail)
			return
		}
		c.s.event(history.Op{F: history.Process, Records: rec}, history.OK)
		c.s.event(history.Op{F: history.Commit, Offsets: positions, Group: c.cfg.group()}, history.OK)
		c.stats.processed.Add(1)
		c.stats.commits.Add(1)
	}
}

// commitSync commits a batch's offsets and waits for the outcome (recorded by onCommitted).
func (c *Consumer) commitSync(b pollBatch) {
	c.cl.CommitOffsetsSync(c.dead, b.offsets, c.onCommitted)
}

// onCommitted records a commit the client finished: every partition the broker accepted in one ok op, those it
// refused in a fail op, and the whole commit as info when the request's fate is unknown.
func (c *Consumer) onCommitted(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if req == nil || len(req.Topics) == 0 {
		return
	}
	c.stats.commits.Add(1)
	if err != nil || resp == nil {
		if err == nil {
			err = errors.New("commit finished without a response")
		}
		var all []history.Position
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				all = append(all, history.Position{Topic: t.Topic, Partition: p.Partition, Offset: p.Offset})
			}
		}
		c.s.event(history.Op{F: history.Commit, Offsets: all, Group: req.Group, Error: err.Error()}, commitOutcome(err))
		return
	}
	sent := make(map[history.TopicPartition]int64)
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			sent[history.TopicPartition{Topic: t.Topic, Partition: p.Partition}] = p.Offset
		}
	}
	byOutcome := map[history.Type][]history.Position{}
	errText := map[history.Type]string{}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			tp := history.TopicPartition{Topic: t.Topic, Partition: p.Partition}
			off, ok := sent[tp]
			if !ok {
				continue
			}
			perr := kerr.ErrorForCode(p.ErrorCode)
			outcome := commitOutcome(perr)
			byOutcome[outcome] = append(byOutcome[outcome], history.Position{Topic: t.Topic, Partition: p.Partition, Offset: off})
			if perr != nil {
				errText[outcome] = perr.Error()
			}
			delete(sent, tp)
		}
	}
	for tp, off := range sent { // asked for and not answered: unknown
		byOutcome[history.Info] = append(byOutcome[history.Info], history.Position{Topic: tp.Topic, Partition: tp.Partition, Offset: off})
		errText[history.Info] = "partition missing from the commit response"
	}
	for _, t := range []history.Type{history.OK, history.Fail, history.Info} {
		if ps := byOutcome[t]; len(ps) > 0 {
			sortPositions(ps)
			c.s.event(history.Op{F: history.Commit, Offsets: ps, Group: req.Group, Error: errText[t]}, t)
		}
	}
}

// onAssigned, onRevoked and onLost record the partitions held after each rebalance step.
func (c *Consumer) onAssigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c.rebalanced(m, true)
}

func (c *Consumer) onRevoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	if c.crashed.Load() {
		return
	}
	if c.cfg.Strategy == StrategyAuto {
		// What kgo's default revoke would do, as Kafka's auto-commit does on revocation: commit the position.
		cl.CommitOffsetsSync(ctx, cl.UncommittedOffsets(), c.onCommitted)
	}
	c.rebalanced(m, false)
}

func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	c.rebalanced(m, false)
}

func (c *Consumer) rebalanced(m map[string][]int32, add bool) {
	if c.crashed.Load() {
		return
	}
	c.heldMu.Lock()
	for t, ps := range m {
		for _, p := range ps {
			tp := history.TopicPartition{Topic: t, Partition: p}
			if add {
				c.held[tp] = struct{}{}
			} else {
				delete(c.held, tp)
			}
		}
	}
	held := make([]history.Position, 0, len(c.held))
	for tp := range c.held {
		held = append(held, history.Position{Topic: tp.Topic, Partition: tp.Partition})
	}
	c.heldMu.Unlock()
	sortPositions(held)
	c.s.event(history.Op{F: history.Assign, Partitions: held, Group: c.cfg.GroupID}, history.OK)
}

// assignFromStore assigns every partition of the topics, each from the store's next offset (or
// auto.offset.reset when the store has none), and records the assignment.
func (c *Consumer) assignFromStore(ctx context.Context) error {
	ends, err := kadm.NewClient(c.cl).ListEndOffsets(ctx, c.cfg.Topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("consumer %d: listing partitions to assign: %w", c.s.process, err)
	}
	stored := c.cfg.Store.Snapshot()
	reset, _ := c.cfg.reset()
	assign := make(map[string]map[int32]kgo.Offset)
	var held []history.Position
	ends.Each(func(o kadm.ListedOffset) {
		if assign[o.Topic] == nil {
			assign[o.Topic] = make(map[int32]kgo.Offset)
		}
		off := reset
		if r, ok := stored[history.TopicPartition{Topic: o.Topic, Partition: o.Partition}]; ok {
			off = kgo.NewOffset().At(r.Next)
		}
		assign[o.Topic][o.Partition] = off
		held = append(held, history.Position{Topic: o.Topic, Partition: o.Partition})
	})
	sortPositions(held)
	c.s.event(history.Op{F: history.Assign, Partitions: held}, history.OK)
	c.cl.AddConsumePartitions(assign)
	return nil
}

func sortPositions(ps []history.Position) {
	slices.SortFunc(ps, func(a, b history.Position) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
}

// halt stops Run from polling more.
func (c *Consumer) halt() {
	c.stopMu.Lock()
	if !c.stopped {
		c.stopped = true
		close(c.stop)
	}
	c.stopMu.Unlock()
}

// Crash kills the consumer like a process death: every connection is cut at once (nothing more is committed),
// polling, processing and committing stop, records buffered and not processed are gone, and the client is closed.
// The crash op is recorded last.
func (c *Consumer) Crash() error {
	if !c.ended.CompareAndSwap(false, true) {
		return errors.New("consumer already crashed or closed")
	}
	c.crashed.Store(true)
	c.w.cutAll()
	c.kill()
	c.halt()
	c.workers.Wait()
	c.cl.Close()
	c.s.crash()
	return c.rec.Err()
}

// Close stops polling, lets the buffered style's worker process what it holds, commits per the strategy (the
// client's own leave commits with auto-commit) and closes the client, leaving the group.
func (c *Consumer) Close() error {
	if !c.ended.CompareAndSwap(false, true) {
		return errors.New("consumer already crashed or closed")
	}
	c.halt()
	c.workers.Wait()
	c.cl.Close()
	c.kill()
	return c.rec.Err()
}
