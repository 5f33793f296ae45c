package broker

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkatrial/kafkatrial/broker/meta"
)

// TestGroupCoordinatorChoice: every node of a cluster names the same coordinator for a group, groups spread
// over all brokers, a node refuses groups it does not coordinate, and a fenced coordinator is unavailable.
func TestGroupCoordinatorChoice(t *testing.T) {
	im := meta.Empty()
	for id := int32(1); id <= 3; id++ {
		im.Brokers[id] = meta.Broker{ID: id, Host: "127.0.0.1", Port: 9090 + id}
	}
	nodes := make([]*Node, 3)
	for i := range nodes {
		nodes[i] = &Node{cfg: Config{NodeID: int32(i + 1)}, advHost: "127.0.0.1", advPort: 9091 + int32(i)}
		nodes[i].img.Store(im)
	}
	used := map[int32]int{}
	for g := range 300 {
		group := fmt.Sprintf("group-%d", g)
		id, host, port, code := nodes[0].groupCoordinator(group)
		if code != 0 || host != "127.0.0.1" || port != 9090+id {
			t.Fatalf("%s: coordinator %d %s:%d %v", group, id, host, port, kerr.ErrorForCode(code))
		}
		used[id]++
		for _, n := range nodes {
			other, _, _, _ := n.groupCoordinator(group)
			if other != id {
				t.Fatalf("%s: node %d says %d, node 1 says %d", group, n.cfg.NodeID, other, id)
			}
			want := int16(0)
			if n.cfg.NodeID != id {
				want = kerr.NotCoordinator.Code
			}
			if got := n.groupCoordinatorError(group); got != want {
				t.Fatalf("%s on node %d: %v, want %v", group, n.cfg.NodeID, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
			}
		}
	}
	if len(used) != 3 {
		t.Fatalf("groups spread over %v, want all 3 brokers", used)
	}

	fenced := im.Clone()
	b := fenced.Brokers[2]
	b.Fenced = true
	fenced.Brokers[2] = b
	nodes[0].img.Store(fenced)
	for g := range 300 {
		group := fmt.Sprintf("group-%d", g)
		if id, _, _, _ := nodes[1].groupCoordinator(group); id != 2 {
			continue
		}
		if _, _, _, code := nodes[0].groupCoordinator(group); code != kerr.CoordinatorNotAvailable.Code {
			t.Fatalf("%s with its coordinator fenced: %v, want COORDINATOR_NOT_AVAILABLE", group, kerr.ErrorForCode(code))
		}
		return
	}
	t.Fatal("no group maps to broker 2")
}
