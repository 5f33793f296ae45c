package workloads

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/broker"
	"github.com/kafkatrial/kafkatrial/broker/storage"
)

// testTopic is the topic startCluster creates.
const testTopic = "trial"

// startCluster starts the built-in broker (one node: the workload's behaviour does not depend on
// replication) with testTopic and returns its bootstrap address; it stops when the test ends. It is the only
// place that knows which broker runs: every other test talks to the cluster through seeds alone.
func startCluster(t *testing.T, partitions int) (seeds []string) { return startClusterB(t, partitions) }

// startClusterB is startCluster for tests and benchmarks alike.
func startClusterB(t testing.TB, partitions int) (seeds []string) {
	t.Helper()
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatalf("disk: %v", err)
	}
	n, err := broker.NewNode(broker.Config{NodeID: 1, Logger: slog.New(slog.DiscardHandler)}, disk)
	if err != nil {
		t.Fatalf("starting broker: %v", err)
	}
	if err := n.Start(); err != nil {
		t.Fatalf("starting broker: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	seeds = []string{n.Addr()}

	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(adm).CreateTopic(ctx, int32(partitions), 1, nil, testTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", testTopic, err)
	}
	return seeds
}
