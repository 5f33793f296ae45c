package broker

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// testNode is a started node with its disk, restartable in place.
type testNode struct {
	t    testing.TB
	disk *storage.Disk
	cfg  Config
	*Node
}

// testLogger logs to stderr when KAFKATRIAL_TEST_LOG is set, else discards.
func testLogger() *slog.Logger {
	if os.Getenv("KAFKATRIAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startTestNode starts a single node on loopback over a fresh temp disk.
func startTestNode(t testing.TB, mutate ...func(*Config)) *testNode {
	t.Helper()
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{NodeID: 1, DataDir: "node-1", Logger: testLogger()}
	for _, m := range mutate {
		m(&cfg)
	}
	tn := &testNode{t: t, disk: disk, cfg: cfg}
	tn.start()
	return tn
}

// start (re)starts the node on its disk.
func (tn *testNode) start() {
	tn.t.Helper()
	n, err := NewNode(tn.cfg, tn.disk)
	if err != nil {
		tn.t.Fatalf("NewNode: %v", err)
	}
	if err := n.Start(); err != nil {
		tn.t.Fatalf("Start: %v", err)
	}
	tn.Node = n
	tn.t.Cleanup(func() { n.Kill() })
}

// client returns a franz-go client of the node, closed at cleanup.
func (tn *testNode) client(opts ...kgo.Opt) *kgo.Client {
	tn.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tn.Addr()), kgo.RetryTimeout(60 * time.Second)}, opts...)...)
	if err != nil {
		tn.t.Fatal(err)
	}
	tn.t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a topic through kadm.
func (tn *testNode) createTopic(name string, partitions int32, configs map[string]*string) {
	tn.t.Helper()
	adm := kadm.NewClient(tn.client())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		tn.t.Fatalf("creating topic %s: %v / %v", name, err, resp.Err)
	}
}

// testCtx is a context bounded generously, for waits under load.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
