package workloads

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/history"
)

// produceN writes n values to testTopic (3 partitions) and returns the end offset of each partition.
func produceN(t *testing.T, seeds []string, h *testHistory, n int64) map[int32]int64 {
	t.Helper()
	cfg := DefaultProducerConfig(testTopic, 3)
	cfg.Rate, cfg.Count = 0, n
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
	if st := p.Stats(); st.OK != n {
		t.Fatalf("producing: %+v", st)
	}
	ends := map[int32]int64{}
	for _, op := range sendsByValue(h.ops()) {
		ends[op.Partition] = max(ends[op.Partition], op.Offset+1)
	}
	return ends
}

// committed fetches the group's committed offsets from the broker (OffsetFetch).
func committed(t *testing.T, seeds []string, group string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).FetchOffsets(testCtx(t), group)
	if err != nil {
		t.Fatalf("fetching offsets of %s: %v", group, err)
	}
	out := map[int32]int64{}
	resp.Each(func(o kadm.OffsetResponse) {
		if o.Err == nil && o.Topic == testTopic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// processedBy returns, per partition, the records the given process recorded as processed.
func processedBy(ops []history.Op, process int) map[int32][]history.Record {
	out := map[int32][]history.Record{}
	for _, op := range ops {
		if op.F == history.Process && op.Type == history.OK && op.Process == process {
			for _, r := range op.Records {
				out[r.Partition] = append(out[r.Partition], r)
			}
		}
	}
	return out
}

func startConsumer(t *testing.T, seeds []string, h *testHistory, cfg ConsumerConfig) *Consumer {
	t.Helper()
	c, err := NewConsumer(h.rec, seeds, cfg)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = c.Run(context.Background()) }()
	return c
}

func strategyConfig(strategy, group string) ConsumerConfig {
	cfg := DefaultConsumerConfig(group, testTopic)
	cfg.Strategy = strategy
	cfg.EnableAutoCommit = strategy == StrategyAuto
	cfg.AutoCommitInterval = 100 * time.Millisecond
	cfg.SessionTimeout = 10 * time.Second
	cfg.MaxPollRecords = 25
	return cfg
}

// TestCommitStrategiesCommitWhenTheyShould: each group strategy ends up with the broker's committed offsets at
// the end of every partition once everything was processed, and orders commits and processing as it says:
// after-process and async commit only what a process op already covered, before-process commits before.
func TestCommitStrategiesCommitWhenTheyShould(t *testing.T) {
	for _, strategy := range []string{StrategyAuto, StrategyAfterProcess, StrategyAsync, StrategyBeforeProcess} {
		t.Run(strategy, func(t *testing.T) {
			seeds := startCluster(t, 3)
			h := newTestHistory(t)
			ends := produceN(t, seeds, h, 300)
			c := startConsumer(t, seeds, h, strategyConfig(strategy, "g-"+strategy))
			waitFor(t, "everything processed", func() bool { return c.Stats().Processed >= 300 })
			waitFor(t, "commits at the end offsets", func() bool {
				got := committed(t, seeds, "g-"+strategy)
				for p, end := range ends {
					if got[p] != end {
						return false
					}
				}
				return true
			})
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			// Order: for each ok commit, was the committed record already processed when the commit was recorded?
			processedUpTo := map[int32]int64{} // next offset after the highest processed record
			early := 0
			sawCommit, sawAssign, sawSubscribe := false, false, false
			for _, op := range h.ops() {
				switch {
				case op.F == history.Process && op.Type == history.OK:
					for _, r := range op.Records {
						processedUpTo[r.Partition] = max(processedUpTo[r.Partition], r.Offset+1)
					}
				case op.F == history.Commit && op.Type == history.OK:
					sawCommit = true
					for _, pos := range op.Offsets {
						if pos.Offset > processedUpTo[pos.Partition] {
							early++
						}
					}
				case op.F == history.Assign && op.Type == history.OK:
					sawAssign = true
				case op.F == history.Subscribe && op.Type == history.OK:
					sawSubscribe = true
				}
			}
			if !sawCommit || !sawAssign || !sawSubscribe {
				t.Fatalf("commit %v, assign %v, subscribe %v recorded", sawCommit, sawAssign, sawSubscribe)
			}
			switch strategy {
			case StrategyBeforeProcess:
				if early == 0 {
					t.Fatalf("before-process: no commit ran ahead of processing")
				}
			default:
				if early != 0 {
					t.Fatalf("%s: %d commits ran ahead of processing", strategy, early)
				}
			}
		})
	}
}

// crashMidway starts a consumer with slow processing, crashes it once cond holds, and returns its process.
func crashMidway(t *testing.T, seeds []string, h *testHistory, cfg ConsumerConfig, cond func(*Consumer) bool) int {
	t.Helper()
	c := startConsumer(t, seeds, h, cfg)
	waitFor(t, "the crash point", func() bool { return cond(c) })
	if err := c.Crash(); err != nil {
		t.Fatal(err)
	}
	return c.Process()
}

// TestConsumerCrashAfterProcess: crashed between polls, an after-process consumer has committed nothing it had
// not processed.
func TestConsumerCrashAfterProcess(t *testing.T) {
	seeds := startCluster(t, 3)
	h := newTestHistory(t)
	produceN(t, seeds, h, 300)
	cfg := strategyConfig(StrategyAfterProcess, "g")
	cfg.ProcessTime = 30 * time.Millisecond
	proc := crashMidway(t, seeds, h, cfg, func(c *Consumer) bool { return c.Stats().Commits >= 3 })
	got := committed(t, seeds, "g")
	processed := processedBy(h.ops(), proc)
	if len(got) == 0 {
		t.Fatal("nothing committed before the crash")
	}
	for p, off := range got {
		if upTo := nextAfter(processed[p]); off > upTo {
			t.Fatalf("partition %d committed at %d, processed only below %d", p, off, upTo)
		}
	}
}

// TestConsumerCrashBeforeProcess: crashed while processing, a before-process consumer has committed records it
// never processed.
func TestConsumerCrashBeforeProcess(t *testing.T) {
	seeds := startCluster(t, 3)
	h := newTestHistory(t)
	produceN(t, seeds, h, 300)
	cfg := strategyConfig(StrategyBeforeProcess, "g")
	cfg.ProcessTime = 2 * time.Second // the crash lands inside processing of a committed poll
	proc := crashMidway(t, seeds, h, cfg, func(c *Consumer) bool { return c.Stats().Commits >= 1 })
	got := committed(t, seeds, "g")
	processed := processedBy(h.ops(), proc)
	ahead := false
	for p, off := range got {
		if off > nextAfter(processed[p]) {
			ahead = true
		}
	}
	if !ahead {
		t.Fatalf("committed %v never exceeds processed %v", got, processed)
	}
}

// TestConsumerCrashAutoCommitBuffered: auto-commit with records buffered for a slow worker commits records the
// crash then loses unprocessed.
func TestConsumerCrashAutoCommitBuffered(t *testing.T) {
	seeds := startCluster(t, 3)
	h := newTestHistory(t)
	produceN(t, seeds, h, 300)
	cfg := strategyConfig(StrategyAuto, "g")
	cfg.Processing = ProcessBuffered
	cfg.ProcessTime = 500 * time.Millisecond
	proc := crashMidway(t, seeds, h, cfg, func(c *Consumer) bool {
		st := c.Stats()
		return st.Commits >= 1 && st.Polled >= 300 && st.Processed < 300
	})
	got := committed(t, seeds, "g")
	processed := processedBy(h.ops(), proc)
	ahead := false
	for p, off := range got {
		if off > nextAfter(processed[p]) {
			ahead = true
		}
	}
	if !ahead {
		t.Fatalf("auto-commit with a buffer: committed %v never exceeds processed", got)
	}
}

// nextAfter returns one past the highest offset in recs (0 for none).
func nextAfter(recs []history.Record) int64 {
	var n int64
	for _, r := range recs {
		n = max(n, r.Offset+1)
	}
	return n
}

// TestConsumerCrashDirect: the direct consumer's store always holds exactly what was processed, and a consumer
// restarted on the same store continues from it: across the crash every record is processed exactly once.
func TestConsumerCrashDirect(t *testing.T) {
	seeds := startCluster(t, 3)
	h := newTestHistory(t)
	ends := produceN(t, seeds, h, 300)
	path := filepath.Join(t.TempDir(), "results.json")
	store, err := NewResultStore(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strategyConfig(StrategyDirect, "")
	cfg.Store = store
	cfg.ProcessTime = 20 * time.Millisecond
	first := crashMidway(t, seeds, h, cfg, func(c *Consumer) bool { return c.Stats().Processed >= 100 })

	reopened, err := NewResultStore(path) // what a restarted process finds on disk
	if err != nil {
		t.Fatal(err)
	}
	checkStore := func(processed map[int32][]history.Record, snap map[history.TopicPartition]PartitionResult) {
		t.Helper()
		for p, recs := range processed {
			r := snap[history.TopicPartition{Topic: testTopic, Partition: p}]
			var d uint64
			for _, rec := range recs {
				d = digest(d, rec.Value)
			}
			if r.Next != nextAfter(recs) || r.Count != int64(len(recs)) || r.Digest != d {
				t.Fatalf("partition %d: store %+v, processed %d records up to %d", p, r, len(recs), nextAfter(recs))
			}
		}
	}
	checkStore(processedBy(h.ops(), first), reopened.Snapshot())

	cfg.Store = reopened
	c := startConsumer(t, seeds, h, cfg)
	waitFor(t, "the rest processed", func() bool {
		snap := reopened.Snapshot()
		for p, end := range ends {
			if snap[history.TopicPartition{Topic: testTopic, Partition: p}].Next != end {
				return false
			}
		}
		return true
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	ops := h.ops()
	all := map[int32][]history.Record{}
	seen := map[string]int{}
	for _, proc := range []int{first, c.Process()} {
		for p, recs := range processedBy(ops, proc) {
			all[p] = append(all[p], recs...)
			for _, r := range recs {
				seen[r.Value]++
			}
		}
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("%s processed %d times", v, n)
		}
	}
	if len(seen) != 300 {
		t.Fatalf("%d of 300 records processed", len(seen))
	}
	checkStore(all, reopened.Snapshot())
}
