package controller

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
)

// waitTimeout caps every wait for a condition: generous, because tests share a loaded machine.
const waitTimeout = 20 * time.Second

func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("CONTROLLER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func startVoter(t *testing.T, id int32, voters map[int32]string, dir string) *Controller {
	t.Helper()
	c, err := Start(Config{NodeID: id, Voters: voters, DataDir: dir, Logger: testLogger(t).With("node", id)})
	if err != nil {
		t.Fatalf("start controller %d: %v", id, err)
	}
	return c
}

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < waitTimeout {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", waitTimeout, what)
	return 0
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return c
}

func mustPropose(t *testing.T, c *Controller, cmd meta.Command) meta.Result {
	t.Helper()
	res, err := c.Propose(ctx(t), cmd)
	if err != nil {
		t.Fatalf("propose %s: %v", cmd.Kind(), err)
	}
	if res.ErrorCode != 0 {
		t.Fatalf("propose %s: error %d: %s", cmd.Kind(), res.ErrorCode, res.Message)
	}
	return res
}

func TestSingleVoterRestartKeepsImage(t *testing.T) {
	addr := freeAddrs(t, 1)[0]
	voters := map[int32]string{1: addr}
	dir := t.TempDir()
	c := startVoter(t, 1, voters, dir)
	epoch, err := c.RegisterBroker(ctx(t), 1, "127.0.0.1", 9092)
	if err != nil {
		t.Fatal(err)
	}
	mustPropose(t, c, meta.Command{CreateTopic: &meta.CreateTopic{Name: "t", Partitions: 3, ReplicationFactor: 1}})
	mustPropose(t, c, meta.Command{AlterConfigs: &meta.AlterConfigs{Topic: "t", Set: map[string]string{"min.insync.replicas": "1"}}})
	before := c.Image()
	c.Kill()

	c = startVoter(t, 1, voters, dir)
	defer c.Close()
	waitFor(t, "image replayed from disk", func() bool { return c.Image().Offset >= before.Offset })
	after := c.Image()
	if got, want := fmt.Sprint(after.Topics["t"]), fmt.Sprint(before.Topics["t"]); got != want {
		t.Fatalf("topic after restart = %s, want %s", got, want)
	}
	if after.Brokers[1].Epoch != epoch {
		t.Fatalf("broker epoch after restart = %d, want %d", after.Brokers[1].Epoch, epoch)
	}
	// The restarted voter accepts new commands, and a re-registration gets a newer epoch.
	epoch2, err := c.RegisterBroker(ctx(t), 1, "127.0.0.1", 9092)
	if err != nil {
		t.Fatal(err)
	}
	if epoch2 <= epoch {
		t.Fatalf("re-registration epoch %d not above %d", epoch2, epoch)
	}
}

func TestSingleVoterRestartFromSnapshot(t *testing.T) {
	addr := freeAddrs(t, 1)[0]
	voters := map[int32]string{1: addr}
	dir := t.TempDir()
	c := startVoter(t, 1, voters, dir)
	if _, err := c.RegisterBroker(ctx(t), 1, "127.0.0.1", 9092); err != nil {
		t.Fatal(err)
	}
	mustPropose(t, c, meta.Command{CreateTopic: &meta.CreateTopic{Name: "a", Partitions: 1, ReplicationFactor: 1}})
	if err := c.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	mustPropose(t, c, meta.Command{CreateTopic: &meta.CreateTopic{Name: "b", Partitions: 2, ReplicationFactor: 1}})
	before := c.Image()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*"))
	if len(snaps) == 0 {
		t.Fatal("no snapshot on disk")
	}
	c = startVoter(t, 1, voters, dir)
	defer c.Close()
	waitFor(t, "image rebuilt from snapshot and log", func() bool { return c.Image().Offset >= before.Offset })
	if len(c.Image().Topics) != 2 {
		t.Fatalf("topics after restart: %v", c.Image().Topics)
	}
}
