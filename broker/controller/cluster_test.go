package controller

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
)

// cluster is n voters on loopback, each with its own data dir, restartable.
type cluster struct {
	t      *testing.T
	voters map[int32]string
	dirs   map[int32]string
	mu     sync.Mutex
	nodes  map[int32]*Controller
}

func newCluster(t *testing.T, n int) *cluster {
	addrs := freeAddrs(t, n)
	cl := &cluster{t: t, voters: map[int32]string{}, dirs: map[int32]string{}, nodes: map[int32]*Controller{}}
	for i := range n {
		id := int32(i + 1)
		cl.voters[id] = addrs[i]
		cl.dirs[id] = t.TempDir()
	}
	for id := range cl.voters {
		cl.start(id)
	}
	t.Cleanup(func() {
		for _, c := range cl.all() {
			c.Kill()
		}
	})
	return cl
}

func (cl *cluster) start(id int32) {
	c := startVoter(cl.t, id, cl.voters, cl.dirs[id])
	cl.mu.Lock()
	cl.nodes[id] = c
	cl.mu.Unlock()
}

func (cl *cluster) kill(id int32) {
	cl.mu.Lock()
	c := cl.nodes[id]
	delete(cl.nodes, id)
	cl.mu.Unlock()
	c.Kill()
}

func (cl *cluster) node(id int32) *Controller {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.nodes[id]
}

func (cl *cluster) all() []*Controller {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var cs []*Controller
	for _, c := range cl.nodes {
		cs = append(cs, c)
	}
	return cs
}

// active waits until every running voter agrees on one active controller among the running ones.
func (cl *cluster) active() int32 {
	var leader int32
	waitFor(cl.t, "an agreed active controller", func() bool {
		leader = -1
		for _, c := range cl.all() {
			a := c.ActiveID()
			if a == -1 || (leader != -1 && a != leader) {
				return false
			}
			leader = a
		}
		return leader != -1 && cl.node(leader) != nil
	})
	return leader
}

// follower returns a running voter that is not the active one.
func (cl *cluster) follower(active int32) *Controller {
	for id := range cl.voters {
		if id != active && cl.node(id) != nil {
			return cl.node(id)
		}
	}
	cl.t.Fatal("no follower running")
	return nil
}

func (cl *cluster) waitAll(what string, cond func(*meta.Image) bool) {
	waitFor(cl.t, what+" on every voter", func() bool {
		for _, c := range cl.all() {
			if !cond(c.Image()) {
				return false
			}
		}
		return true
	})
}

// heartbeater keeps broker id alive through voter c until stopped.
func heartbeater(c *Controller, id int32, epoch int64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(c.Timing().BrokerHeartbeatInterval)
		defer tick.Stop()
		for {
			hctx, hcancel := context.WithTimeout(ctx, c.Timing().SessionTimeout)
			c.Heartbeat(hctx, id, epoch)
			hcancel()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() { cancel(); <-done }
}

func TestProposeThroughFollowerReachesAll(t *testing.T) {
	cl := newCluster(t, 3)
	f := cl.follower(cl.active())
	for id := int32(1); id <= 3; id++ {
		if _, err := f.RegisterBroker(ctx(t), id, "127.0.0.1", 9090+id); err != nil {
			t.Fatal(err)
		}
	}
	res := mustPropose(t, f, meta.Command{CreateTopic: &meta.CreateTopic{Name: "t", Partitions: 3, ReplicationFactor: 3}})
	if res.Topic == nil || len(res.Topic.Partitions) != 3 {
		t.Fatalf("create result %+v", res)
	}
	want := fmt.Sprint(res.Topic)
	cl.waitAll("topic t", func(im *meta.Image) bool { return im.Topics["t"] != nil && fmt.Sprint(im.Topics["t"]) == want })

	// A rejection travels back through the forward path as a Result, not an error.
	again, err := f.Propose(ctx(t), meta.Command{CreateTopic: &meta.CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 1}})
	if err != nil || again.ErrorCode != kerr.TopicAlreadyExists.Code {
		t.Fatalf("duplicate create: %+v, %v", again, err)
	}
	// A stale heartbeat through a follower says so.
	err = f.Heartbeat(ctx(t), 1, 12345)
	if !errors.Is(err, kerr.StaleBrokerEpoch) {
		t.Fatalf("stale heartbeat error = %v, want STALE_BROKER_EPOCH", err)
	}
}

func TestKillActiveElectsNewAndRestartCatchesUp(t *testing.T) {
	cl := newCluster(t, 3)
	old := cl.active()
	f := cl.follower(old)
	if _, err := f.RegisterBroker(ctx(t), 1, "127.0.0.1", 9091); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	cl.kill(old)
	var next int32
	waitFor(t, "a new active controller", func() bool {
		for _, c := range cl.all() {
			if a := c.ActiveID(); a != -1 && a != old && cl.node(a) != nil && cl.node(a).ActiveID() == a {
				next = a
				return true
			}
		}
		return false
	})
	t.Logf("new active controller %d elected %s after killing %d", next, time.Since(killedAt), old)
	f = cl.follower(next)
	mustPropose(t, f, meta.Command{CreateTopic: &meta.CreateTopic{Name: "after", Partitions: 1, ReplicationFactor: 1}})
	mustPropose(t, cl.node(next), meta.Command{CreateTopic: &meta.CreateTopic{Name: "after2", Partitions: 2, ReplicationFactor: 1}})
	target := cl.node(next).Image().Offset

	cl.start(old)
	cl.waitAll("restarted voter caught up", func(im *meta.Image) bool {
		return im.Offset >= target && im.Topics["after"] != nil && im.Topics["after2"] != nil
	})
	// The restarted voter can propose too.
	mustPropose(t, cl.node(old), meta.Command{DeleteTopic: &meta.DeleteTopic{Name: "after"}})
	cl.waitAll("delete from restarted voter", func(im *meta.Image) bool { return im.Topics["after"] == nil })
}

func TestHeartbeatLapseFencesAndReelects(t *testing.T) {
	cl := newCluster(t, 3)
	cl.active()
	epochs := map[int32]int64{}
	stops := map[int32]func(){}
	for id := int32(1); id <= 3; id++ {
		e, err := cl.node(id).RegisterBroker(ctx(t), id, "127.0.0.1", 9090+id)
		if err != nil {
			t.Fatal(err)
		}
		epochs[id] = e
		stops[id] = heartbeater(cl.node(id), id, e)
	}
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	res := mustPropose(t, cl.node(1), meta.Command{CreateTopic: &meta.CreateTopic{Name: "t", Partitions: 1, ReplicationFactor: 3}})
	p0 := res.Topic.Partitions[0]
	victim := p0.Leader
	// Healthy brokers stay unfenced across several session timeouts.
	time.Sleep(3 * cl.node(1).Timing().SessionTimeout)
	for id, b := range cl.node(1).Image().Brokers {
		if b.Fenced {
			t.Fatalf("broker %d fenced while heartbeating", id)
		}
	}

	stopped := time.Now()
	stops[victim]()
	delete(stops, victim)
	cl.waitAll("victim fenced and partition re-elected", func(im *meta.Image) bool {
		p, _ := im.Partition("t", 0)
		return im.Brokers[victim].Fenced && p.Leader != victim && p.Leader != meta.NoLeader && p.LeaderEpoch > p0.LeaderEpoch
	})
	t.Logf("broker %d fenced and partition re-elected %s after its last heartbeat (session timeout %s)",
		victim, time.Since(stopped), cl.node(1).Timing().SessionTimeout)
	p1, _ := cl.node(1).Image().Partition("t", 0)
	if len(p1.ISR) != 2 || p1.LeaderEpoch != p0.LeaderEpoch+1 {
		t.Fatalf("after fence: %+v", p1)
	}

	stops[victim] = heartbeater(cl.node(victim), victim, epochs[victim])
	cl.waitAll("victim unfenced", func(im *meta.Image) bool { return !im.Brokers[victim].Fenced })
}

func TestActiveKillGivesBrokersGrace(t *testing.T) {
	cl := newCluster(t, 3)
	old := cl.active()
	stops := map[int32]func(){}
	for id := int32(1); id <= 3; id++ {
		e, err := cl.node(id).RegisterBroker(ctx(t), id, "127.0.0.1", 9090+id)
		if err != nil {
			t.Fatal(err)
		}
		stops[id] = heartbeater(cl.node(id), id, e)
	}
	stops[old]()
	delete(stops, old)
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	killedAt := time.Now()
	cl.kill(old)
	// The surviving brokers keep heartbeating through the failover and must not be fenced by the new
	// active controller; the dead node's broker must be.
	cl.waitAll("dead node's broker fenced", func(im *meta.Image) bool { return im.Brokers[old].Fenced })
	t.Logf("node %d (active controller and broker) killed: its broker fenced %s later", old, time.Since(killedAt))
	time.Sleep(2 * cl.node(cl.active()).Timing().SessionTimeout)
	for _, c := range cl.all() {
		for id, b := range c.Image().Brokers {
			if id != old && b.Fenced {
				t.Fatalf("live broker %d fenced after failover", id)
			}
		}
	}
}

func TestLaggingVoterCatchesUpFromSnapshot(t *testing.T) {
	oldThreshold, oldTrailing := snapshotThreshold, trailingLogs
	snapshotThreshold, trailingLogs = 4, 2
	t.Cleanup(func() { snapshotThreshold, trailingLogs = oldThreshold, oldTrailing })
	cl := newCluster(t, 3)
	act := cl.active()
	var lagging int32
	for id := range cl.voters {
		if id != act {
			lagging = id
			break
		}
	}
	cl.kill(lagging)
	if _, err := cl.node(act).RegisterBroker(ctx(t), act, "127.0.0.1", 9090); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustPropose(t, cl.node(act), meta.Command{CreateTopic: &meta.CreateTopic{Name: fmt.Sprintf("t%d", i), Partitions: 1, ReplicationFactor: 1}})
	}
	if err := cl.node(act).raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	first, _ := cl.node(act).logs.FirstIndex()
	if first <= 2 {
		t.Fatalf("leader log still starts at %d after snapshot: the lagging voter would not need the snapshot", first)
	}
	target := cl.node(act).Image()
	cl.start(lagging)
	cl.waitAll("lagging voter restored from snapshot", func(im *meta.Image) bool {
		return im.Offset >= target.Offset && len(im.Topics) == 20
	})
	// The voter had applied almost nothing before it was killed, so a snapshot in its dir came from the leader.
	if snaps, _ := filepath.Glob(filepath.Join(cl.dirs[lagging], "snapshots", "*")); len(snaps) == 0 {
		t.Fatal("lagging voter caught up without installing the leader's snapshot")
	}
	if got, want := fmt.Sprint(cl.node(lagging).Image().Topics["t7"]), fmt.Sprint(target.Topics["t7"]); got != want {
		t.Fatalf("restored topic %s, want %s", got, want)
	}
}
