package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/broker/storage"
)

// TestGroupFranzStaticMembers: kgo members with group.instance.id (KIP-345) and the eager range balancer
// split a topic; a member restarted under the same instance id (kgo sends no LeaveGroup for static members)
// replaces its old self and the group settles again with both members owning partitions.
func TestGroupFranzStaticMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*groupWait)
	defer cancel()
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	node := startGroupTestNode(t, disk)
	defer node.Close()
	admCl := newGroupTestClient(t, node.Addr())
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "static"); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	start := func(instance string) (*kgo.Client, *memberState, context.CancelFunc) {
		m := &memberState{owned: map[int32]bool{}}
		cl := newGroupTestClient(t, node.Addr(), append(m.opts(), kgo.ConsumerGroup("g-static"),
			kgo.ConsumeTopics("static"), kgo.InstanceID(instance), kgo.Balancers(kgo.RangeBalancer()),
			kgo.SessionTimeout(10*time.Second), kgo.FetchMaxWait(200*time.Millisecond))...)
		pctx, stop := context.WithCancel(ctx)
		go func() {
			for pctx.Err() == nil {
				cl.PollFetches(pctx)
			}
		}()
		return cl, m, stop
	}
	balanced := func(ms ...*memberState) func() bool {
		return func() bool {
			total := 0
			for _, m := range ms {
				n := len(m.ownedSorted())
				if n != 2 {
					return false
				}
				total += n
			}
			return total == 4
		}
	}
	clA, a, stopA := start("instance-a")
	defer func() { stopA(); clA.Close() }()
	clB, b, stopB := start("instance-b")
	waitFor(t, "two static members with 2 partitions each", balanced(a, b))
	stopB()
	clB.Close()

	clB2, b2, stopB2 := start("instance-b")
	defer func() { stopB2(); clB2.Close() }()
	waitFor(t, "the restarted static member to own 2 partitions", balanced(a, b2))
	described, err := adm.DescribeGroups(ctx, "g-static")
	if err != nil {
		t.Fatalf("DescribeGroups: %v", err)
	}
	if g := described["g-static"]; len(g.Members) != 2 {
		t.Fatalf("group has %d members after the static restart, want 2: %+v", len(g.Members), g.Members)
	}
}
