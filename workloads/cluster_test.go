package workloads

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testTopic is the topic startCluster creates.
const testTopic = "trial"

// startCluster starts a 3-node cluster on loopback with testTopic (partitions partitions, replication factor 3)
// and returns its bootstrap addresses; the cluster stops when the test ends. It is the only place that knows
// which broker runs: every other test talks to the cluster through seeds alone.
func startCluster(t *testing.T, partitions int) (seeds []string) { return startClusterB(t, partitions) }

// startClusterB is startCluster for tests and benchmarks alike.
func startClusterB(t testing.TB, partitions int) (seeds []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatalf("starting cluster: %v", err)
	}
	t.Cleanup(c.Close)
	seeds = c.ListenAddrs()

	adm, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(adm).CreateTopic(ctx, int32(partitions), 3, nil, testTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating topic %s: %v", testTopic, err)
	}
	return seeds
}
