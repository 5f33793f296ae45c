package workloads

import (
	"strings"
	"testing"

	"github.com/kafkatrial/kafkatrial/history"
)

// lastAssign returns the partitions the process's latest assign op says it holds (nil: no assign yet).
func lastAssign(ops []history.Op, process int) []history.Position {
	var held []history.Position
	for _, op := range ops {
		if op.F == history.Assign && op.Type == history.OK && op.Process == process {
			held = op.Partitions
			if held == nil {
				held = []history.Position{}
			}
		}
	}
	return held
}

// TestRebalanceRecordedAsAssign: a second member joining splits the partitions (each member's assign ops say
// what it holds, disjoint, covering all), and when it leaves the first member holds everything again.
func TestRebalanceRecordedAsAssign(t *testing.T) {
	for _, strategy := range []string{StrategyAfterProcess, StrategyAuto} {
		t.Run(strategy, func(t *testing.T) { testRebalance(t, strategy) })
	}
}

func testRebalance(t *testing.T, strategy string) {
	seeds := startCluster(t, 3)
	h := newTestHistory(t)
	produceN(t, seeds, h, 30)
	cfg := strategyConfig(strategy, "g")
	c1 := startConsumer(t, seeds, h, cfg)
	defer c1.Close()
	waitFor(t, "the first member to hold all 3 partitions", func() bool { return len(lastAssign(h.ops(), c1.Process())) == 3 })
	c2 := startConsumer(t, seeds, h, cfg)
	waitFor(t, "the partitions to be split", func() bool {
		ops := h.ops()
		a, b := lastAssign(ops, c1.Process()), lastAssign(ops, c2.Process())
		if len(a) == 0 || len(b) == 0 || len(a)+len(b) != 3 {
			return false
		}
		for _, p := range a {
			for _, q := range b {
				if p == q {
					t.Fatalf("partition %d held by both members", p.Partition)
				}
			}
		}
		return true
	})
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first member to hold all 3 again", func() bool { return len(lastAssign(h.ops(), c1.Process())) == 3 })
}

func TestConsumerConfigValidate(t *testing.T) {
	for _, c := range []struct {
		set  [][2]string
		want string
	}{
		{[][2]string{{"commit.strategy", "sometimes"}}, "commit.strategy"},
		{[][2]string{{"commit.strategy", "auto"}}, "enable.auto.commit=true"},
		{[][2]string{{"enable.auto.commit", "true"}}, "requires commit.strategy=auto"},
		{[][2]string{{"group.id", ""}}, "group.id"},
		{[][2]string{{"commit.strategy", "direct"}}, "result store"},
		{[][2]string{{"processing", "later"}}, "processing"},
		{[][2]string{{"isolation.level", "read_some"}}, "isolation.level"},
		{[][2]string{{"auto.offset.reset", "middle"}}, "auto.offset.reset"},
		{[][2]string{{"session.timeout.ms", "0"}}, "session.timeout.ms"},
		{[][2]string{{"max.poll.records", "0"}}, "max.poll.records"},
	} {
		cfg := DefaultConsumerConfig("g", testTopic)
		for _, kv := range c.set {
			if err := cfg.Set(kv[0], kv[1]); err != nil {
				t.Fatal(err)
			}
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error naming %q", c.set, err, c.want)
		}
	}
	cfg := DefaultConsumerConfig("g", testTopic)
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	if err := cfg.Set("auto.commit.interval.ms", "250"); err != nil || cfg.AutoCommitInterval.Milliseconds() != 250 {
		t.Errorf("auto.commit.interval.ms=250: %v, %v", err, cfg.AutoCommitInterval)
	}
}
