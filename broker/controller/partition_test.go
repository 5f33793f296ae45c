package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
)

// testNet cuts TCP between isolated voters and everyone else through the Dial hook. Every controller
// connection is dialed by some voter, so tracking the dialed side sees all of them: isolating a voter closes
// its connections in both directions and refuses new ones until healed.
type testNet struct {
	mu       sync.Mutex
	addrs    map[string]int32 // voter address -> id
	isolated map[int32]bool
	conns    map[net.Conn][2]int32 // dialer, target
}

func newTestNet(voters map[int32]string) *testNet {
	n := &testNet{addrs: map[string]int32{}, isolated: map[int32]bool{}, conns: map[net.Conn][2]int32{}}
	for id, a := range voters {
		n.addrs[a] = id
	}
	return n
}

func (n *testNet) cut(a, b int32) bool { return a != b && (n.isolated[a] || n.isolated[b]) }

func (n *testNet) dial(from int32) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		n.mu.Lock()
		to := n.addrs[addr]
		blocked := n.cut(from, to)
		n.mu.Unlock()
		if blocked {
			return nil, fmt.Errorf("test network: %d cannot reach %d", from, to)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.cut(from, to) {
			c.Close()
			return nil, fmt.Errorf("test network: %d cannot reach %d", from, to)
		}
		n.conns[c] = [2]int32{from, to}
		return c, nil
	}
}

func (n *testNet) isolate(id int32) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[id] = true
	for c, ends := range n.conns {
		if n.cut(ends[0], ends[1]) {
			c.Close()
			delete(n.conns, c)
		}
	}
}

func (n *testNet) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated = map[int32]bool{}
}

func TestIsolatedActiveIsReplacedAndItsWritesDropped(t *testing.T) {
	addrs := freeAddrs(t, 3)
	voters := map[int32]string{1: addrs[0], 2: addrs[1], 3: addrs[2]}
	tn := newTestNet(voters)
	nodes := map[int32]*Controller{}
	for id := range voters {
		c, err := Start(Config{NodeID: id, Voters: voters, DataDir: t.TempDir(), Dial: tn.dial(id),
			Logger: testLogger(t).With("node", id)})
		if err != nil {
			t.Fatal(err)
		}
		nodes[id] = c
		defer c.Kill()
	}
	var old int32
	waitFor(t, "an active controller", func() bool {
		old = nodes[1].ActiveID()
		return old != -1 && nodes[2].ActiveID() == old && nodes[3].ActiveID() == old
	})
	if _, err := nodes[old].RegisterBroker(ctx(t), 1, "127.0.0.1", 9091); err != nil {
		t.Fatal(err)
	}
	isolatedAt := time.Now()
	tn.isolate(old)

	// The isolated voter's proposal cannot commit: it fails (never silently succeeds).
	minorityErr := make(chan error, 1)
	go func() {
		minority, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := nodes[old].Propose(minority, meta.Command{CreateTopic: &meta.CreateTopic{Name: "minority", Partitions: 1, ReplicationFactor: 1}})
		minorityErr <- err
	}()

	var next int32
	var others []*Controller
	for id, c := range nodes {
		if id != old {
			others = append(others, c)
		}
	}
	waitFor(t, "majority elects a new active controller", func() bool {
		next = others[0].ActiveID()
		return next != -1 && next != old && others[1].ActiveID() == next
	})
	t.Logf("majority elected %d %s after isolating %d", next, time.Since(isolatedAt), old)
	if err := <-minorityErr; err == nil {
		t.Fatal("isolated voter's proposal reported success")
	} else if !errors.Is(err, ErrOutcomeUnknown) && !errors.Is(err, ErrNoActiveController) {
		t.Fatalf("isolated voter's proposal failed with %v, want ErrOutcomeUnknown or ErrNoActiveController", err)
	} else {
		t.Logf("isolated voter's proposal failed as it must: %v", err)
	}
	mustPropose(t, others[0], meta.Command{CreateTopic: &meta.CreateTopic{Name: "majority", Partitions: 1, ReplicationFactor: 1}})
	waitFor(t, "isolated voter steps down", func() bool { return nodes[old].ActiveID() != old })

	tn.heal()
	waitFor(t, "healed voter catches up", func() bool {
		im := nodes[old].Image()
		return im.Topics["majority"] != nil && im.Offset == nodes[next].Image().Offset
	})
	for id, c := range nodes {
		if c.Image().Topics["minority"] != nil {
			t.Fatalf("voter %d has the topic proposed on the isolated minority", id)
		}
	}
}
