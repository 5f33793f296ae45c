package broker

import (
	"context"
	"fmt"
	"testing"

	"github.com/kafkatrial/kafkatrial/broker/group"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Deleting a topic drops the groups' committed offsets of it, as Kafka's coordinator does for deleted
// partitions: a topic created again under the same name is consumed from the reset policy (here earliest), not
// from the old topic's offsets (which would skip the new topic's first records). The removal is tombstones in
// the replicated __consumer_offsets, so it survives a coordinator failover.
func TestDeletedTopicOffsetsAreDroppedAcrossFailover(t *testing.T) {
	const (
		topic   = "dt"
		grp     = "g-deleted"
		parts   = 2
		perPart = 10
	)
	c := startClusterForTest(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	boot := c.Bootstrap()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(boot...), kgo.RetryTimeout(groupWait))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	create := func() {
		t.Helper()
		if resp, err := adm.CreateTopic(ctx, parts, 3, nil, topic); err != nil || resp.Err != nil {
			t.Fatalf("CreateTopic: %v / %v", err, resp.Err)
		}
		waitTopicEverywhere(t, c, topic)
	}
	create()
	produceEach(t, ctx, boot[0], topic, parts, 0, perPart)
	consumeGroup(t, ctx, boot, grp, topic, parts*perPart) // commits perPart on each partition
	oldID := c.Image().Topics[topic].ID

	resp, err := adm.DeleteTopics(ctx, topic)
	if err != nil || resp.Error() != nil {
		t.Fatalf("DeleteTopics: %v / %v", err, resp.Error())
	}
	repWait(t, groupWait, "every node dropped topic "+topic, func() error {
		for _, id := range c.IDs() {
			if n := c.Node(id); n != nil && n.image().Topics[topic] != nil {
				return fmt.Errorf("node %d still has it", id)
			}
		}
		return nil
	})
	create()
	if c.Image().Topics[topic].ID == oldID {
		t.Fatal("the re-created topic kept the old id")
	}
	const newPerPart = 5
	produceEach(t, ctx, boot[0], topic, parts, 0, newPerPart)

	// The tombstones are in the coordinator's log up to the high watermark (so on every ISR replica).
	coord, err := findCoordinator(ctx, boot[0], grp)
	if err != nil {
		t.Fatalf("FindCoordinator: %v", err)
	}
	part := offsetsPartitionFor(grp, DefaultOffsetsTopicPartitions)
	storedOffsets := func(id int32) (map[group.TP]group.Committed, error) {
		n := c.Node(id)
		if n == nil {
			return nil, fmt.Errorf("node %d is down", id)
		}
		all, err := (&offsetsStore{n: n, partition: part}).Load()
		if err != nil {
			return nil, err
		}
		return all[grp], nil
	}
	repWait(t, groupWait, "tombstones committed on the coordinator", func() error {
		offs, err := storedOffsets(coord)
		if err != nil {
			return err
		}
		if len(offs) != 0 {
			return fmt.Errorf("the log of %s-%d still folds to %v", OffsetsTopic, part, offs)
		}
		return nil
	})

	if err := c.Kill(coord); err != nil {
		t.Fatal(err)
	}
	var survivor string
	for _, id := range c.IDs() {
		if id != coord {
			survivor = boot[id-1]
		}
	}
	var moved int32
	repWait(t, groupWait, "the coordinator moved", func() error {
		id, err := findCoordinator(ctx, survivor, grp)
		if err == nil && id == coord {
			err = fmt.Errorf("still node %d", id)
		}
		moved = id
		return err
	})
	// Its log up to its high watermark (which reaches the old leader's log end once it loaded) has no offsets.
	repWait(t, groupWait, "the new coordinator's log without the offsets", func() error {
		offs, err := storedOffsets(moved)
		if err == nil && len(offs) != 0 {
			err = fmt.Errorf("the log of node %d folds to %v", moved, offs)
		}
		return err
	})
	got := consumeGroup(t, ctx, []string{survivor}, grp, topic, parts*newPerPart)
	for p := range int32(parts) {
		rs := got[p]
		if len(rs) != newPerPart || rs[0].Offset != 0 {
			var offs []int64
			for _, r := range rs {
				offs = append(offs, r.Offset)
			}
			t.Fatalf("group read %s-%d offsets %v after the re-create, want 0..%d", topic, p, offs, newPerPart-1)
		}
	}
}
