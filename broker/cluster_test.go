package broker

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// startClusterForTest starts a cluster on 127.0.0.1 under a temp dir, closed at cleanup.
func startClusterForTest(t *testing.T, nodes int) *Cluster {
	t.Helper()
	return startClusterWith(t, ClusterConfig{Nodes: nodes})
}

// startClusterWith starts a cluster of cfg (its Dir and Logger filled in) on 127.0.0.1, closed at cleanup.
func startClusterWith(t *testing.T, cfg ClusterConfig) *Cluster {
	t.Helper()
	cfg.Dir, cfg.Logger = t.TempDir(), testLogger()
	c, err := StartCluster(cfg)
	if err != nil {
		t.Fatalf("StartCluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func TestClusterRestartKeepsDataAndControllerMoves(t *testing.T) {
	c := startClusterForTest(t, 3)
	if got := c.IDs(); len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("IDs = %v", got)
	}
	boot := c.Bootstrap()
	cl, err := kgo.NewClient(kgo.SeedBrokers(boot...), kgo.RetryTimeout(30*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	adm := kadm.NewClient(cl)
	// Three rf=1 partitions: one on each node, so a kill takes exactly one partition's only replica down.
	if resp, err := adm.CreateTopic(ctx, 3, 1, nil, "ct"); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v / %v", err, resp.Err)
	}
	repWait(t, 20*time.Second, "every partition led", func() error {
		im := c.Image()
		tp := im.Topics["ct"]
		if tp == nil {
			return errors.New("topic not in the image")
		}
		for _, p := range tp.Partitions {
			if p.Leader < 0 {
				return fmt.Errorf("partition %d has no leader", p.Partition)
			}
		}
		return nil
	})
	leaderOf := func(p int32) int32 { return c.Image().Topics["ct"].Partitions[p].Leader }
	victim := leaderOf(0)
	for i := range 20 {
		r := &kgo.Record{Topic: "ct", Partition: 0, Value: []byte(fmt.Sprintf("v%d", i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	st, err := c.Replica(victim, "ct", 0)
	if err != nil || st.LogEndOffset != 20 {
		t.Fatalf("Replica before kill = %+v, %v; want log end 20", st, err)
	}

	if err := c.Kill(victim); err != nil {
		t.Fatal(err)
	}
	if c.Running(victim) || c.Node(victim) != nil {
		t.Fatalf("node %d still running after Kill", victim)
	}
	if _, err := c.Replica(victim, "ct", 0); !errors.Is(err, ErrNodeDown) {
		t.Fatalf("Replica of a killed node: %v, want ErrNodeDown", err)
	}
	if err := c.Restart(victim); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(victim); err != nil { // running: a no-op
		t.Fatal(err)
	}
	repWait(t, 20*time.Second, "restarted replica recovered", func() error {
		st, err := c.Replica(victim, "ct", 0)
		if err != nil {
			return err
		}
		if st.LogEndOffset != 20 {
			return fmt.Errorf("log end %d, want 20", st.LogEndOffset)
		}
		return nil
	})
	var values []string
	err = c.ReadReplica(victim, "ct", 0, func(batch []byte, h storage.BatchHeader) error {
		values = append(values, fmt.Sprintf("%d+%d", h.BaseOffset, h.NumRecords))
		return nil
	})
	if err != nil || len(values) != 20 || values[0] != "0+1" || values[19] != "19+1" {
		t.Fatalf("ReadReplica = %v, %v; want 20 one-record batches", values, err)
	}

	active := c.ActiveController()
	if active < 1 {
		t.Fatalf("ActiveController = %d", active)
	}
	if err := c.Kill(active); err != nil {
		t.Fatal(err)
	}
	repWait(t, 20*time.Second, "a new active controller", func() error {
		if a := c.ActiveController(); a < 1 || a == active {
			return fmt.Errorf("active controller %d", a)
		}
		return nil
	})
	if err := c.PowerLoss(active); err != nil { // down already: cuts the unsynced tail of its disk
		t.Fatal(err)
	}
	if err := c.Restart(active); err != nil {
		t.Fatal(err)
	}
	path, err := c.LogPath(active)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || strings.Count(string(b), "broker node serving") < 2 { // this node may also have been the one killed earlier
		t.Fatalf("broker.log of node %d should show at least two incarnations: %v\n%s", active, err, b)
	}
	if err := c.Kill(9); !errors.Is(err, ErrNoSuchNode) {
		t.Fatalf("Kill(9) = %v, want ErrNoSuchNode", err)
	}
}

// A paused node freezes its controller voter too: a paused active controller loses leadership, the others
// elect a new one and keep committing metadata, and the node rejoins the quorum when it resumes.
func TestPausedActiveControllerLosesLeadershipAndRejoins(t *testing.T) {
	c := startClusterForTest(t, 3)
	paused := c.ActiveController()
	if paused < 1 {
		t.Fatalf("ActiveController = %d", paused)
	}
	if err := c.Pause(paused); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			c.Resume(paused)
		}
	}()
	var successor int32
	repWait(t, 20*time.Second, "a new active controller while the old one is paused", func() error {
		successor = c.ActiveController()
		if successor < 1 || successor == paused {
			return fmt.Errorf("active controller %d", successor)
		}
		if id := c.Node(paused).meta.ctrl.ActiveID(); id == paused {
			return fmt.Errorf("paused node %d still believes it leads", paused)
		}
		return nil
	})

	// The quorum without the paused voter still commits: a topic created through another node appears.
	var seeds []string
	for _, id := range c.IDs() {
		if id != paused {
			seeds = append(seeds, c.Node(id).Addr())
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RetryTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if resp, err := kadm.NewClient(cl).CreateTopic(testCtx(t), 1, 2, nil, "during-pause"); err != nil || resp.Err != nil {
		t.Fatalf("create topic while node %d is paused: %v / %v", paused, err, resp.Err)
	}
	if im := c.Node(paused).meta.ctrl.Image(); im.Topics["during-pause"] != nil {
		t.Fatalf("paused node %d applied metadata committed while it was paused", paused)
	}

	if err := c.Resume(paused); err != nil {
		t.Fatal(err)
	}
	resumed = true
	repWait(t, 20*time.Second, "the resumed voter rejoins the quorum", func() error {
		ctrl := c.Node(paused).meta.ctrl
		active := c.ActiveController()
		if active < 1 || ctrl.ActiveID() != active {
			return fmt.Errorf("resumed node %d names %d, the quorum %d", paused, ctrl.ActiveID(), active)
		}
		if ctrl.Image().Topics["during-pause"] == nil {
			return errors.New("the resumed voter has not caught up with the topic created during its pause")
		}
		return c.readiness()
	})
}
