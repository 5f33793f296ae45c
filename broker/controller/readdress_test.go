package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
)

// A whole quorum stopped and started again on the same data directories at other addresses elects a leader
// and keeps its metadata: addresses come from the configuration, the stored state names only voter ids (as
// Kafka's controller.quorum.voters). Before, the voters dialled the addresses in their raft log and never
// elected anyone.
func TestQuorumRestartsOnNewAddresses(t *testing.T) {
	cl := newCluster(t, 3)
	if _, err := cl.node(cl.active()).RegisterBroker(ctx(t), 1, "127.0.0.1", 9091); err != nil {
		t.Fatal(err)
	}
	mustPropose(t, cl.node(cl.active()), meta.Command{CreateTopic: &meta.CreateTopic{Name: "kept", Partitions: 2, ReplicationFactor: 1}})
	cl.waitAll("topic kept", func(im *meta.Image) bool { return im.Topics["kept"] != nil })
	for _, c := range cl.all() {
		if err := c.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	cl.mu.Lock()
	cl.nodes = map[int32]*Controller{}
	old := cl.voters
	addrs := freeAddrs(t, 3)
	cl.voters = map[int32]string{1: addrs[0], 2: addrs[1], 3: addrs[2]}
	cl.mu.Unlock()
	for id := range cl.voters {
		if cl.voters[id] == old[id] {
			t.Fatalf("voter %d got its old address %s again; the test needs new ones", id, old[id])
		}
	}
	started := time.Now()
	for id := range cl.voters {
		cl.start(id)
	}
	active := cl.active()
	t.Logf("active controller %d elected %v after the restart on new addresses", active, time.Since(started))
	cl.waitAll("topic kept after the restart", func(im *meta.Image) bool { return im.Topics["kept"] != nil })
	// Forwarding goes to the active controller's new address.
	if _, err := cl.follower(active).RegisterBroker(ctx(t), 2, "127.0.0.1", 9092); err != nil {
		t.Fatalf("registering through a follower after the restart: %v", err)
	}
	cl.waitAll("broker 2 registered", func(im *meta.Image) bool { _, ok := im.Brokers[2]; return ok })
}

// A data directory started with other voter ids than its stored quorum is refused at once with a message
// naming both sets, instead of waiting in elections forever.
func TestStartRefusesOtherVoterIDs(t *testing.T) {
	addrs := freeAddrs(t, 2)
	dir := t.TempDir()
	c := startVoter(t, 1, map[int32]string{1: addrs[0]}, dir)
	waitFor(t, "the single voter leads", func() bool { return c.ActiveID() == 1 })
	c.Kill()

	started := time.Now()
	_, err := Start(Config{NodeID: 1, Voters: map[int32]string{1: addrs[0], 2: addrs[1]}, DataDir: dir, Logger: testLogger(t)})
	if err == nil {
		t.Fatal("Start with voters {1,2} over a directory of quorum {1} succeeded")
	}
	if took := time.Since(started); took > 5*time.Second {
		t.Errorf("refusal took %v", took)
	}
	for _, want := range []string{dir, "1@" + addrs[0], "1@" + addrs[0] + ",2@" + addrs[1], "node ids"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	// The refused start released everything: the same directory starts with its own quorum.
	c = startVoter(t, 1, map[int32]string{1: addrs[1]}, dir)
	defer c.Kill()
	waitFor(t, "the voter leads again, on a new address", func() bool { return c.ActiveID() == 1 })
}
