package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// askTimeout bounds one metadata question to one node: a paused or cut-off node must not stall the nemesis.
const askTimeout = 3 * time.Second

// Leader returns the node leading topic/partition ("" when it has none), as the freshest answer among the
// nodes that serve says (see partition).
func (t *Target) Leader(ctx context.Context, topic string, partition int32) (string, error) {
	p, err := t.partition(ctx, topic, partition)
	if err != nil {
		return "", err
	}
	if p.Leader < 0 {
		return "", nil
	}
	return NodeName(p.Leader), nil
}

// Replicas returns topic/partition's assignment.
func (t *Target) Replicas(ctx context.Context, topic string, partition int32) ([]string, error) {
	p, err := t.partition(ctx, topic, partition)
	if err != nil {
		return nil, err
	}
	return names(p.Replicas), nil
}

// ISR returns topic/partition's in-sync replicas.
func (t *Target) ISR(ctx context.Context, topic string, partition int32) ([]string, error) {
	p, err := t.partition(ctx, topic, partition)
	if err != nil {
		return nil, err
	}
	return names(p.ISR), nil
}

// Controller returns the active controller's node: for Kafka the KRaft quorum leader (DescribeQuorum), for
// kafkatrial the active controller DescribeCluster names, for Redpanda the controller Metadata names. "" when
// none is known.
func (t *Target) Controller(ctx context.Context) (string, error) {
	var last error
	for _, n := range t.serving() {
		id, err := t.askController(ctx, n)
		if err == nil {
			if id < 0 {
				return "", nil
			}
			return NodeName(id), nil
		}
		last = err
	}
	if last == nil {
		last = errors.New("no node is serving")
	}
	return "", fmt.Errorf("docker target: finding the active controller: %w", last)
}

func (t *Target) askController(ctx context.Context, n *node) (int32, error) {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	switch t.kind {
	case KindKafka:
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = "__cluster_metadata"
		rp := kmsg.NewDescribeQuorumRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, n.admin.SeedBrokers()[0])
		if err != nil {
			return 0, fmt.Errorf("DescribeQuorum to %s: %w", n.spec.Name, err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return 0, fmt.Errorf("DescribeQuorum to %s: %w", n.spec.Name, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return 0, fmt.Errorf("DescribeQuorum to %s: no metadata partition in the answer", n.spec.Name)
		}
		return resp.Topics[0].Partitions[0].LeaderID, nil
	case KindKafkatrial:
		req := kmsg.NewPtrDescribeClusterRequest()
		resp, err := req.RequestWith(ctx, n.admin.SeedBrokers()[0])
		if err != nil {
			return 0, fmt.Errorf("DescribeCluster to %s: %w", n.spec.Name, err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return 0, fmt.Errorf("DescribeCluster to %s: %w", n.spec.Name, err)
		}
		return resp.ControllerID, nil
	}
	md, err := t.ask(ctx, n, nil)
	if err != nil {
		return 0, err
	}
	return md.ControllerID, nil
}

// Healthy reports nil when every node's container runs unpaused and connected, every node answers metadata
// listing every broker, and in every answer each partition of topics is led, with its whole assignment in
// the ISR, under the same leader and epoch. Whether followers' log ends caught up is not visible through
// the Kafka protocol; a complete ISR is the cluster's own word for it.
func (t *Target) Healthy(ctx context.Context, topics []string) error {
	for _, n := range t.nodes {
		st, err := t.inspect(ctx, n)
		switch {
		case err != nil:
			return err
		case !st.Running:
			return fmt.Errorf("%s is down (container %s)", n.spec.Name, st.Status)
		case st.Paused:
			return fmt.Errorf("%s is paused", n.spec.Name)
		}
	}
	t.netMu.Lock()
	for _, n := range t.nodes {
		if t.cutCount(n.spec.Name) > 0 {
			t.netMu.Unlock()
			return fmt.Errorf("%s is disconnected by a partition", n.spec.Name)
		}
	}
	t.netMu.Unlock()
	answers := make([]*kmsg.MetadataResponse, len(t.nodes))
	errs := make([]error, len(t.nodes))
	var wg sync.WaitGroup
	for i, n := range t.nodes {
		wg.Go(func() { answers[i], errs[i] = t.ask(ctx, n, topics) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	type lead struct{ leader, epoch int32 }
	agreed := map[string]lead{}
	for i, md := range answers {
		from := t.nodes[i].spec.Name
		if missing := t.missingBrokers(md); len(missing) > 0 {
			return fmt.Errorf("%s's metadata lacks brokers %s", from, strings.Join(missing, ", "))
		}
		for _, topic := range topics {
			tp := findTopic(md, topic)
			if tp == nil {
				return fmt.Errorf("%s does not know topic %s", from, topic)
			}
			if err := kerr.ErrorForCode(tp.ErrorCode); err != nil {
				return fmt.Errorf("%s: topic %s: %w", from, topic, err)
			}
			for _, p := range tp.Partitions {
				key := fmt.Sprintf("%s-%d", topic, p.Partition)
				if p.Leader < 0 {
					return fmt.Errorf("%s has no leader (says %s)", key, from)
				}
				if !sameMembers(p.ISR, p.Replicas) {
					return fmt.Errorf("%s: ISR %v is not the whole assignment %v (says %s)", key, names(p.ISR), names(p.Replicas), from)
				}
				l := lead{p.Leader, p.LeaderEpoch}
				if prev, ok := agreed[key]; ok && prev != l {
					return fmt.Errorf("%s: nodes disagree on its leader (%s at epoch %d, %s at epoch %d)", key,
						NodeName(prev.leader), prev.epoch, NodeName(l.leader), l.epoch)
				}
				agreed[key] = l
			}
		}
	}
	return nil
}

// partition asks every serving node about topic/partition and keeps the answer with the highest leader
// epoch; among equals, the leader's own answer (the leader owns the ISR). Nodes that do not answer within
// askTimeout are skipped; no answer at all is an error.
func (t *Target) partition(ctx context.Context, topic string, partition int32) (kmsg.MetadataResponseTopicPartition, error) {
	ns := t.serving()
	answers := make([]*kmsg.MetadataResponse, len(ns))
	errs := make([]error, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Go(func() { answers[i], errs[i] = t.ask(ctx, n, []string{topic}) })
	}
	wg.Wait()
	var best *kmsg.MetadataResponseTopicPartition
	var bestFrom int32
	var problems []error
	for i, md := range answers {
		if md == nil {
			problems = append(problems, errs[i])
			continue
		}
		tp := findTopic(md, topic)
		if tp == nil || kerr.ErrorForCode(tp.ErrorCode) != nil {
			problems = append(problems, fmt.Errorf("%s: topic %s: %v", ns[i].spec.Name, topic, topicErr(tp)))
			continue
		}
		for j := range tp.Partitions {
			p := &tp.Partitions[j]
			if p.Partition != partition {
				continue
			}
			from := ns[i].spec.ID
			if best == nil || p.LeaderEpoch > best.LeaderEpoch || (p.LeaderEpoch == best.LeaderEpoch && from == p.Leader && bestFrom != best.Leader) {
				best, bestFrom = p, from
			}
		}
	}
	if best == nil {
		if len(problems) == 0 {
			problems = append(problems, fmt.Errorf("no serving node knows partition %d", partition))
		}
		return kmsg.MetadataResponseTopicPartition{}, fmt.Errorf("docker target: metadata of %s/%d: %w", topic, partition, errors.Join(problems...))
	}
	return *best, nil
}

// anyMetadata asks the serving nodes in turn and returns the first answer.
func (t *Target) anyMetadata(ctx context.Context, topics []string) (*kmsg.MetadataResponse, error) {
	var errs []error
	for _, n := range t.serving() {
		md, err := t.ask(ctx, n, topics)
		if err == nil {
			return md, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, errors.New("no node is serving")
	}
	return nil, errors.Join(errs...)
}

// ask sends one Metadata request to node n (topics nil: brokers only), bounded by askTimeout.
func (t *Target) ask(ctx context.Context, n *node, topics []string) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	for _, topic := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	if topics == nil {
		req.Topics = []kmsg.MetadataRequestTopic{} // an empty list asks for no topics; nil would ask for all
	}
	resp, err := req.RequestWith(ctx, n.admin.SeedBrokers()[0])
	if err != nil {
		return nil, fmt.Errorf("metadata from %s: %w", n.spec.Name, err)
	}
	return resp, nil
}

// serving lists the nodes the target last left up, unpaused and connected: the ones worth asking.
func (t *Target) serving() []*node {
	t.netMu.Lock()
	defer t.netMu.Unlock()
	var out []*node
	for _, n := range t.nodes {
		if n.admin != nil && n.state.Load() == stateUp && t.cutCount(n.spec.Name) == 0 {
			out = append(out, n)
		}
	}
	return out
}

// missingBrokers names the nodes md does not list.
func (t *Target) missingBrokers(md *kmsg.MetadataResponse) []string {
	var missing []string
	for _, n := range t.nodes {
		if !slices.ContainsFunc(md.Brokers, func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == n.spec.ID }) {
			missing = append(missing, n.spec.Name)
		}
	}
	return missing
}

func findTopic(md *kmsg.MetadataResponse, topic string) *kmsg.MetadataResponseTopic {
	for i := range md.Topics {
		if md.Topics[i].Topic != nil && *md.Topics[i].Topic == topic {
			return &md.Topics[i]
		}
	}
	return nil
}

func topicErr(tp *kmsg.MetadataResponseTopic) error {
	if tp == nil {
		return errors.New("not in the answer")
	}
	return kerr.ErrorForCode(tp.ErrorCode)
}

// names turns broker ids into node names, in order.
func names(ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = NodeName(id)
	}
	return out
}

func sameMembers(a, b []int32) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
