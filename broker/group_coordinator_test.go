package broker

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkatrial/kafkatrial/broker/meta"
)

// TestGroupCoordinatorPartitionIsKafkas: a group maps to the __consumer_offsets partition Kafka would pick,
// Utils.abs(groupId.hashCode) % n with Java's String.hashCode (values computed by Java).
func TestGroupCoordinatorPartitionIsKafkas(t *testing.T) {
	for _, tc := range []struct {
		group string
		n     int
		want  int32
	}{
		{"", 50, 0},
		{"hello", 50, 99162322 % 50},
		{"polygenelubricants", 50, 0}, // hashCode is Integer.MIN_VALUE; Utils.abs gives 0
		{"Aa", 7, 2112 % 7},
		{"BB", 7, 2112 % 7},
		{"\U0001F600", 1000, 1772899 % 1000}, // a surrogate pair: 31*0xD83D + 0xDE00
		{"my-group", 8, 1906497762 % 8},      // hashCode -1906497762 (int overflow): abs, then mod
		{"kafkatrial-consumers", 50, 232644256 % 50},
	} {
		if got := offsetsPartitionFor(tc.group, tc.n); got != tc.want {
			t.Errorf("partition of %q over %d: %d, want %d", tc.group, tc.n, got, tc.want)
		}
	}
}

// TestGroupCoordinatorChoice: FindCoordinator names the leader of the group's offsets partition on every
// node, COORDINATOR_NOT_AVAILABLE while it has no live leader; group requests on a node that does not lead the
// partition get NOT_COORDINATOR, and on the leader before it loaded COORDINATOR_LOAD_IN_PROGRESS.
func TestGroupCoordinatorChoice(t *testing.T) {
	im := meta.Empty()
	for id := int32(1); id <= 3; id++ {
		im.Brokers[id] = meta.Broker{ID: id, Host: "127.0.0.1", Port: 9090 + id}
	}
	offsets := &meta.Topic{Name: OffsetsTopic, ID: [16]byte{1}}
	for p := range int32(6) {
		leader := p%3 + 1
		offsets.Partitions = append(offsets.Partitions, meta.Partition{Partition: p, Replicas: []int32{1, 2, 3},
			ISR: []int32{1, 2, 3}, Leader: leader, LeaderEpoch: 4})
	}
	im.Topics[OffsetsTopic] = offsets
	nodes := make([]*Node, 3)
	for i := range nodes {
		nodes[i] = &Node{cfg: Config{NodeID: int32(i + 1)}, advHost: "127.0.0.1", advPort: 9091 + int32(i)}
		nodes[i].groups = newGroupCoordinators(nodes[i])
		nodes[i].img.Store(im)
	}
	used := map[int32]int{}
	for g := range 300 {
		group := fmt.Sprintf("group-%d", g)
		want := offsets.Partitions[offsetsPartitionFor(group, 6)].Leader
		for _, n := range nodes {
			id, host, port, code := n.findGroupCoordinator(t.Context(), group)
			if code != 0 || id != want || host != "127.0.0.1" || port != 9090+id {
				t.Fatalf("%s on node %d: coordinator %d %s:%d %v, want %d", group, n.cfg.NodeID, id, host, port, kerr.ErrorForCode(code), want)
			}
			wantCode := kerr.NotCoordinator.Code
			if n.cfg.NodeID == want {
				wantCode = kerr.CoordinatorLoadInProgress.Code // nothing loaded: these nodes host no replica
			}
			if _, got := n.groupCoordinatorFor(group); got != wantCode {
				t.Fatalf("%s on node %d: %v, want %v", group, n.cfg.NodeID, kerr.ErrorForCode(got), kerr.ErrorForCode(wantCode))
			}
		}
		used[want]++
	}
	if len(used) != 3 {
		t.Fatalf("groups spread over %v, want all 3 brokers", used)
	}

	// The leader of partition 1 (node 2) is fenced, and partition 2 has no leader.
	down := im.Clone()
	b := down.Brokers[2]
	b.Fenced = true
	down.Brokers[2] = b
	down.Topics[OffsetsTopic].Partitions[2].Leader = meta.NoLeader
	nodes[0].img.Store(down)
	seen := map[int32]bool{}
	for g := 0; len(seen) < 2 && g < 1000; g++ {
		group := fmt.Sprintf("group-%d", g)
		p := offsetsPartitionFor(group, 6)
		if p != 1 && p != 2 {
			continue
		}
		seen[p] = true
		if _, _, _, code := nodes[0].findGroupCoordinator(t.Context(), group); code != kerr.CoordinatorNotAvailable.Code {
			t.Fatalf("%s (partition %d) with no live leader: %v, want COORDINATOR_NOT_AVAILABLE", group, p, kerr.ErrorForCode(code))
		}
	}
	if len(seen) != 2 {
		t.Fatalf("no group maps to partitions 1 and 2: %v", seen)
	}
}
