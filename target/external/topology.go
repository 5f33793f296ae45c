package external

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Every topology answer is read from the cluster at the time of the call: Metadata for brokers, leaders,
// replicas and ISRs, DescribeCluster for the controller. Nothing is cached, because faults change them.

const (
	// queryTimeout bounds one metadata query (a paused broker must not hang the nemesis).
	queryTimeout = 10 * time.Second
	// probeTimeout bounds the ApiVersions probe Healthy sends each broker.
	probeTimeout = 5 * time.Second
	// maxHealthProblems bounds the problems one Healthy error lists.
	maxHealthProblems = 8
)

// Leader returns the node leading topic/partition, "" when it has no leader.
func (t *Target) Leader(ctx context.Context, topic string, partition int32) (string, error) {
	p, err := t.partition(ctx, topic, partition)
	if err != nil {
		return "", err
	}
	if p.Leader < 0 {
		return "", nil
	}
	return nodeName(p.Leader), nil
}

// Replicas returns the assigned replicas of topic/partition, in assignment order.
func (t *Target) Replicas(ctx context.Context, topic string, partition int32) ([]string, error) {
	p, err := t.partition(ctx, topic, partition)
	if err != nil {
		return nil, err
	}
	return names(p.Replicas), nil
}

// ISR returns the in-sync replicas of topic/partition.
func (t *Target) ISR(ctx context.Context, topic string, partition int32) ([]string, error) {
	p, err := t.partition(ctx, topic, partition)
	if err != nil {
		return nil, err
	}
	return names(p.ISR), nil
}

// Controller returns the node DescribeCluster names as controller, falling back to Metadata's controller id
// when a broker does not answer DescribeCluster. On a KRaft Kafka cluster brokers name a random live broker
// here (the quorum is hidden from clients), so controller-kill kills a broker, not the quorum leader.
func (t *Target) Controller(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	id := int32(-1)
	req := kmsg.NewPtrDescribeClusterRequest()
	resp, err := req.RequestWith(ctx, t.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err == nil {
		id = resp.ControllerID
	} else {
		md, merr := t.metadata(ctx, []string{})
		if merr != nil {
			return "", fmt.Errorf("finding the controller: DescribeCluster: %v; Metadata: %w", err, merr)
		}
		id = md.ControllerID
	}
	if id < 0 {
		return "", errors.New("the external cluster reports no active controller")
	}
	return nodeName(id), nil
}

// Healthy reports nil when every expected broker is listed in Metadata and answers a request, and every
// partition of topics is led with its ISR equal to its replicas. Otherwise it names the problems (at most a
// few).
func (t *Target) Healthy(ctx context.Context, topics []string) error {
	if topics == nil {
		topics = []string{}
	}
	md, err := t.metadata(ctx, topics)
	if err != nil {
		return err
	}
	var problems []string
	listed := map[int32]bool{}
	for _, b := range md.Brokers {
		listed[b.NodeID] = true
	}
	for _, id := range t.ids {
		if !listed[id] {
			problems = append(problems, nodeName(id)+" is not in the cluster's metadata")
			continue
		}
		if err := t.probe(ctx, id); err != nil {
			problems = append(problems, fmt.Sprintf("%s does not answer: %v", nodeName(id), err))
		}
	}
	sort.Slice(md.Topics, func(i, j int) bool { return deref(md.Topics[i].Topic) < deref(md.Topics[j].Topic) })
	for _, mt := range md.Topics {
		name := deref(mt.Topic)
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			problems = append(problems, fmt.Sprintf("topic %s: %v", name, err))
			continue
		}
		if len(mt.Partitions) == 0 {
			problems = append(problems, fmt.Sprintf("topic %s has no partitions", name))
		}
		sort.Slice(mt.Partitions, func(i, j int) bool { return mt.Partitions[i].Partition < mt.Partitions[j].Partition })
		for _, p := range mt.Partitions {
			switch {
			case p.Leader < 0:
				problems = append(problems, fmt.Sprintf("%s/%d has no leader", name, p.Partition))
			case !sameSet(p.ISR, p.Replicas):
				problems = append(problems, fmt.Sprintf("%s/%d has ISR %v of replicas %v", name, p.Partition, names(p.ISR), names(p.Replicas)))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	if len(problems) > maxHealthProblems {
		problems = append(problems[:maxHealthProblems], fmt.Sprintf("and %d more", len(problems)-maxHealthProblems))
	}
	return fmt.Errorf("external cluster not healthy: %s", strings.Join(problems, "; "))
}

// probe sends broker id an ApiVersions request: a broker still listed in Metadata may be paused or cut off.
func (t *Target) probe(ctx context.Context, id int32) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := t.cl.Broker(int(id)).Request(ctx, kmsg.NewPtrApiVersionsRequest())
	return err
}

// partition reads one partition's metadata.
func (t *Target) partition(ctx context.Context, topic string, partition int32) (kmsg.MetadataResponseTopicPartition, error) {
	var none kmsg.MetadataResponseTopicPartition
	md, err := t.metadata(ctx, []string{topic})
	if err != nil {
		return none, err
	}
	for _, mt := range md.Topics {
		if deref(mt.Topic) != topic {
			continue
		}
		if err := kerr.ErrorForCode(mt.ErrorCode); err != nil {
			return none, fmt.Errorf("reading metadata of topic %s: %w", topic, err)
		}
		for _, p := range mt.Partitions {
			if p.Partition == partition {
				return p, nil
			}
		}
	}
	return none, fmt.Errorf("the external cluster has no partition %s/%d", topic, partition)
}

// metadata sends a Metadata request for topics ([] for none, nil for all) to any broker.
func (t *Target) metadata(ctx context.Context, topics []string) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
		for _, tp := range topics {
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr(tp)
			req.Topics = append(req.Topics, rt)
		}
	}
	resp, err := req.RequestWith(ctx, t.cl)
	if err != nil {
		return nil, fmt.Errorf("reading the external cluster's metadata: %w", err)
	}
	return resp, nil
}

// checkBrokerSettings refuses to run when a broker does not report a setting the scenario asks for: the
// external cluster's configuration is the user's, and a verdict about a setting not in force would mislead.
func (t *Target) checkBrokerSettings(ctx context.Context, want map[string]string) error {
	if len(want) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rcs, err := kadm.NewClient(t.cl).DescribeBrokerConfigs(ctx, t.ids...)
	if err != nil {
		return fmt.Errorf("reading the external brokers' configs to check the scenario's broker settings: %w", err)
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var problems []string
	for _, rc := range rcs {
		if rc.Err != nil {
			problems = append(problems, fmt.Sprintf("broker %s: %v", rc.Name, rc.Err))
			continue
		}
		have := map[string]string{}
		for _, c := range rc.Configs {
			have[c.Key] = c.MaybeValue()
		}
		for _, k := range keys {
			v, ok := have[k]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("broker %s does not report %s (the scenario asks for %s)", rc.Name, k, want[k]))
			case strings.TrimSpace(v) != strings.TrimSpace(want[k]):
				problems = append(problems, fmt.Sprintf("broker %s has %s=%s (the scenario asks for %s)", rc.Name, k, v, want[k]))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the external cluster is not configured as the scenario asks, and kafkatrial does not reconfigure it: %s",
			strings.Join(problems, "; "))
	}
	return nil
}

func names(ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = nodeName(id)
	}
	return out
}

func sameSet(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
