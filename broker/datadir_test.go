package broker

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A node locks its data directory: a second node on the same directory fails at once, naming the directory,
// and starts fine once the first is gone (a kill releases the lock, as a process's death does).
func TestSecondNodeOnADataDirectoryFailsAtOnce(t *testing.T) {
	tn := startTestNode(t)
	started := time.Now()
	second, err := NewNode(tn.cfg, tn.disk)
	if err == nil {
		second.Kill()
		t.Fatal("a second node opened a data directory in use")
	}
	dir := filepath.Join(tn.disk.Root(), tn.cfg.DataDir)
	if !errors.Is(err, ErrDirLocked) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "another") {
		t.Fatalf("error %q: want ErrDirLocked naming %s and the other holder", err, dir)
	}
	if took := time.Since(started); took > time.Second {
		t.Errorf("the refusal took %v", took)
	}
	tn.Kill()
	tn.start() // fails the test if the lock was not released
	tn.createTopic("after-restart", 1, nil)
}

// A clean stop and a power loss release the lock too.
func TestDataDirectoryUnlockedByCloseAndPowerLoss(t *testing.T) {
	tn := startTestNode(t)
	if err := tn.Close(); err != nil {
		t.Fatal(err)
	}
	tn.start()
	if err := tn.LoseUnsynced(); err != nil {
		t.Fatal(err)
	}
	tn.start()
}

// A second cluster on a cluster's directory fails at once, before starting any node.
func TestSecondClusterOnADirectoryFailsAtOnce(t *testing.T) {
	dir := t.TempDir()
	c, err := StartCluster(ClusterConfig{Nodes: 1, Dir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	started := time.Now()
	c2, err := StartCluster(ClusterConfig{Nodes: 3, Dir: dir, Logger: testLogger()})
	if err == nil {
		c2.Close()
		t.Fatal("a second cluster started on a directory in use")
	}
	if !errors.Is(err, ErrDirLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error %q: want ErrDirLocked naming %s", err, dir)
	}
	if took := time.Since(started); took > time.Second {
		t.Errorf("the refusal took %v", took)
	}
	// The refused cluster touched nothing of the running one.
	if c.ActiveController() != 1 {
		t.Fatalf("running cluster lost its controller: %d", c.ActiveController())
	}
}

// `kafkatrial broker --nodes 3 --port 0 --data DIR`, stopped and started again, picks new ports and must come
// back with its topics and records: the quorum finds its voters at their new addresses.
func TestClusterRestartsOnNewPorts(t *testing.T) {
	dir := t.TempDir()
	start := func() *Cluster {
		t.Helper()
		c, err := StartCluster(ClusterConfig{Nodes: 3, Dir: dir, Logger: testLogger(), StartTimeout: 30 * time.Second})
		if err != nil {
			t.Fatalf("StartCluster: %v", err)
		}
		return c
	}
	c := start()
	first := c.Bootstrap()
	cl, err := kgo.NewClient(kgo.SeedBrokers(first...), kgo.RetryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	if resp, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 3, nil, "kept"); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v / %v", err, resp.Err)
	}
	acked := mustProduce(t, cl, "kept", "v", 20)
	cl.Close()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	started := time.Now()
	c = start()
	defer c.Close()
	t.Logf("restarted on %v (was %v) in %v", c.Bootstrap(), first, time.Since(started))
	if strings.Join(c.Bootstrap(), ",") == strings.Join(first, ",") {
		t.Fatalf("the restart got the same ports %v; the test needs new ones", first)
	}
	cl, err = kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.ConsumeTopics("kept"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RetryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []string
	for len(got) < len(acked) && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if m := missing(acked, got); len(m) > 0 {
		t.Fatalf("after the restart on new ports %d acked records are missing: %v", len(m), m)
	}
}
