package builtin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
)

// caughtUpWait bounds how long one Healthy call waits for followers to reach the log end the leader had when
// the check began.
const caughtUpWait = 500 * time.Millisecond

// Healthy reports nil when every node runs, is registered and unfenced, and every partition of topics is led,
// has its whole assignment in the ISR, and is in sync on every replica: each replica applied the current
// leader and epoch, and each follower's log end reached the leader's log end as it was when the check began
// (and is not beyond the leader's now). With no writes in flight that is equality of log ends; under writes
// it proves followers keep up rather than demanding an instant with nothing in flight.
func (t *Target) Healthy(ctx context.Context, topics []string) error {
	for _, id := range t.cluster.IDs() {
		if !t.cluster.Running(id) {
			return fmt.Errorf("%s is down", NodeName(id))
		}
	}
	im := t.cluster.Image()
	if im == nil {
		return errors.New("no metadata image: no node is running")
	}
	for _, id := range t.cluster.IDs() {
		b, ok := im.Brokers[id]
		switch {
		case !ok:
			return fmt.Errorf("%s is not registered with the controller", NodeName(id))
		case b.Fenced:
			return fmt.Errorf("%s is fenced", NodeName(id))
		}
	}
	for _, topic := range topics {
		tp := im.Topics[topic]
		if tp == nil {
			return fmt.Errorf("topic %s does not exist", topic)
		}
		for _, p := range tp.Partitions {
			if p.Leader == meta.NoLeader {
				return fmt.Errorf("%s-%d has no leader", topic, p.Partition)
			}
			if !sameMembers(p.ISR, p.Replicas) {
				return fmt.Errorf("%s-%d: ISR %v is not the whole assignment %v", topic, p.Partition, names(p.ISR), names(p.Replicas))
			}
			if err := t.inSync(ctx, topic, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// inSync waits (up to caughtUpWait) until every replica of p applied its leadership and every follower
// reached the leader's current log end.
func (t *Target) inSync(ctx context.Context, topic string, p meta.Partition) error {
	lead, err := t.cluster.Replica(p.Leader, topic, p.Partition)
	if err != nil {
		return fmt.Errorf("%s-%d leader: %w", topic, p.Partition, err)
	}
	target := lead.LogEndOffset
	deadline := time.Now().Add(caughtUpWait)
	for {
		err := t.replicasAt(topic, p, target)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (t *Target) replicasAt(topic string, p meta.Partition, target int64) error {
	lead, err := t.cluster.Replica(p.Leader, topic, p.Partition)
	if err != nil {
		return fmt.Errorf("%s-%d leader: %w", topic, p.Partition, err)
	}
	for _, r := range p.Replicas {
		st, err := t.cluster.Replica(r, topic, p.Partition)
		if err != nil {
			return fmt.Errorf("%s-%d: %w", topic, p.Partition, err)
		}
		if st.Leader != p.Leader || st.LeaderEpoch != p.LeaderEpoch {
			return fmt.Errorf("%s-%d: %s has leader %d at epoch %d, the metadata says %d at epoch %d",
				topic, p.Partition, NodeName(r), st.Leader, st.LeaderEpoch, p.Leader, p.LeaderEpoch)
		}
		if r != p.Leader && (st.LogEndOffset < target || st.LogEndOffset > lead.LogEndOffset) {
			return fmt.Errorf("%s-%d: follower %s log end %d, leader %s log end %d", topic, p.Partition,
				NodeName(r), st.LogEndOffset, NodeName(p.Leader), lead.LogEndOffset)
		}
	}
	return nil
}

func sameMembers(a, b []int32) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
