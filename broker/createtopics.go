package broker

// CreateTopics, versions 0-7. Topics are created through the metadata quorum (a CreateTopic command) and the
// response is sent once this node's image has the topic, so the creating client finds it in Metadata at
// once. Partitions -1 and replication factor -1 (v4+) take num.partitions and default.replication.factor;
// any other count below 1 is refused with INVALID_PARTITIONS / INVALID_REPLICATION_FACTOR, as Kafka's
// controller does. ValidateOnly (v1+) checks without creating, with the controller's checks in its order, so
// it answers what the creation would; v5+ returns the partition count, replication factor and the topic's
// effective configs; v7 returns the topic id.
// Deliberate differences: manual replica assignments are refused with INVALID_REPLICA_ASSIGNMENT (the
// controller assigns round-robin); only the topic configs the metadata model knows are accepted (others get
// INVALID_CONFIG, naming the key), so a setting under trial can never be silently ignored.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { registerHandler(kmsg.CreateTopics, 0, 7, (*Node).handleCreateTopics) }

func (n *Node) handleCreateTopics(cc *connCtx, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	ctx, cancel := n.requestContext(cc.ctx, req.TimeoutMillis)
	defer cancel()
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		fail := func(code int16, msg string) {
			st.ErrorCode = code
			if req.Version >= 1 {
				st.ErrorMessage = &msg
			}
		}
		configs := map[string]string{}
		for _, c := range rt.Configs {
			if c.Value != nil {
				configs[canonicalConfigName(c.Name)] = *c.Value
			}
		}
		switch {
		case seen[rt.Topic] > 1:
			fail(kerr.InvalidRequest.Code, fmt.Sprintf("topic %q named more than once in one request", rt.Topic))
		case len(rt.ReplicaAssignment) > 0:
			fail(kerr.InvalidReplicaAssignment.Code, "manual replica assignment is not supported by the built-in broker")
		case req.ValidateOnly:
			fail(n.validateCreate(rt.Topic, rt.NumPartitions, rt.ReplicationFactor, configs))
		default:
			res, err := n.createTopic(ctx, rt.Topic, rt.NumPartitions, rt.ReplicationFactor, configs)
			switch {
			case err != nil:
				fail(kerr.RequestTimedOut.Code, err.Error())
			case res.ErrorCode != 0:
				fail(res.ErrorCode, res.Message)
			}
		}
		if st.ErrorCode == 0 && req.Version >= 5 {
			n.fillCreatedTopic(&st, rt, configs)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// requestContext bounds a metadata operation by the request's timeout (or request.timeout.ms).
func (n *Node) requestContext(ctx context.Context, timeoutMillis int32) (context.Context, context.CancelFunc) {
	d := n.cfg.Timing.RequestTimeout
	if timeoutMillis > 0 {
		d = time.Duration(timeoutMillis) * time.Millisecond
	}
	return context.WithTimeout(ctx, d)
}

// createTopic proposes the topic (partitions and rf of -1 take the defaults; other values go to the
// controller as they are, which refuses any below 1) and waits until this node's image has it.
func (n *Node) createTopic(ctx context.Context, name string, partitions int32, rf int16, configs map[string]string) (meta.Result, error) {
	partitions, rf = n.createDefaults(partitions, rf)
	res, err := n.propose(ctx, meta.Command{CreateTopic: &meta.CreateTopic{Name: name, Partitions: partitions,
		ReplicationFactor: rf, Configs: configs}})
	if err != nil {
		return res, fmt.Errorf("creating topic %q: %w", name, err)
	}
	if res.ErrorCode == 0 && res.Topic != nil {
		id := res.Topic.ID
		n.waitForImageWhere(ctx, func(im *meta.Image) bool { t := im.Topics[name]; return t != nil && t.ID == id })
	}
	return res, nil
}

// createDefaults resolves -1 ("the broker's default", v4+) to num.partitions and default.replication.factor.
// Every other value is left as it is: the controller refuses any below 1.
func (n *Node) createDefaults(partitions int32, rf int16) (int32, int16) {
	if partitions == -1 {
		partitions = n.cfg.Defaults.NumPartitions
	}
	if rf == -1 {
		rf = n.cfg.Defaults.ReplicationFactor
	}
	return partitions, rf
}

// validateCreate checks a creation without proposing it (ValidateOnly): the controller's checks of a
// CreateTopic command (meta's createTopic), in its order and with its bounds, against this node's image, so
// a validation answers what the real creation would.
func (n *Node) validateCreate(name string, partitions int32, rf int16, configs map[string]string) (int16, string) {
	partitions, rf = n.createDefaults(partitions, rf)
	im := n.image()
	live := len(im.EligibleBrokers())
	switch {
	case !validTopicName(name):
		return kerr.InvalidTopicException.Code, fmt.Sprintf("invalid topic name %q", name)
	case im.Topics[name] != nil:
		return kerr.TopicAlreadyExists.Code, fmt.Sprintf("topic %q already exists", name)
	case partitions < 1 || partitions > meta.MaxPartitions:
		return kerr.InvalidPartitions.Code, fmt.Sprintf("create topic %q: partitions %d not in [1, %d]",
			name, partitions, meta.MaxPartitions)
	case rf < 1 || int(rf) > live:
		return kerr.InvalidReplicationFactor.Code, fmt.Sprintf("create topic %q: replication factor %d not in [1, %d live brokers]",
			name, rf, live)
	}
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		if err := meta.ValidateConfig(k, configs[k]); err != nil {
			return kerr.InvalidConfig.Code, fmt.Sprintf("create topic %q: %v", name, err)
		}
	}
	return 0, ""
}

// fillCreatedTopic adds the v5+ details of a created (or validated) topic.
func (n *Node) fillCreatedTopic(st *kmsg.CreateTopicsResponseTopic, rt kmsg.CreateTopicsRequestTopic, configs map[string]string) {
	im := n.image()
	st.NumPartitions, st.ReplicationFactor = rt.NumPartitions, rt.ReplicationFactor
	if t := im.Topics[rt.Topic]; t != nil {
		st.TopicID = t.ID
		st.NumPartitions = int32(len(t.Partitions))
		if len(t.Partitions) > 0 {
			st.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
		}
	} else {
		if st.NumPartitions <= 0 {
			st.NumPartitions = n.cfg.Defaults.NumPartitions
		}
		if st.ReplicationFactor <= 0 {
			st.ReplicationFactor = n.cfg.Defaults.ReplicationFactor
		}
	}
	for _, c := range describeTopicConfigs(im, rt.Topic, configs) {
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		v := c.value
		rc.Name, rc.Value, rc.Source, rc.IsSensitive = c.name, &v, c.source, false
		st.Configs = append(st.Configs, rc)
	}
}

// waitForImageWhere blocks until this node's image satisfies ok, or ctx ends.
func (n *Node) waitForImageWhere(ctx context.Context, ok func(*meta.Image) bool) {
	for {
		if im := n.image(); im != nil && ok(im) {
			return
		}
		t := time.NewTimer(2 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
