package group

import (
	"cmp"
	"context"
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TP names one topic-partition.
type TP struct {
	Topic     string
	Partition int32
}

// Committed is one committed offset: the next offset the group will consume.
type Committed struct {
	Offset      int64
	LeaderEpoch int32 // -1 when the client did not say (KIP-320)
	Metadata    string
}

// OffsetStore keeps committed offsets durably. It is deliberately narrow (append a group's commit, load
// everything once at start) so that issue 3's replicated internal topic is another implementation of it.
type OffsetStore interface {
	// Commit durably records offsets for group as one atomic unit, returning only once the store's flush
	// policy is met; after an error nothing of the commit may be reported as committed.
	Commit(group string, offsets map[TP]Committed) error
	// Load returns the latest committed offset of every group and partition.
	Load() (map[string]map[TP]Committed, error)
}

// ErrCommitTooLarge is returned by a store for a commit that exceeds its record bound.
var ErrCommitTooLarge = errors.New("offset commit too large")

// PartitionFilter says whether a topic-partition exists; commits to others get UNKNOWN_TOPIC_OR_PARTITION.
type PartitionFilter func(topic string, partition int32) bool

// OffsetCommit handles OffsetCommit v0..v9 without a topic check (see OffsetCommitFiltered).
func (c *Coordinator) OffsetCommit(ctx context.Context, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	return c.OffsetCommitFiltered(ctx, req, nil)
}

// OffsetCommitFiltered handles OffsetCommit v0..v9. Members of a generation commit with their generation and
// member id (checked like Kafka: fenced instance, unknown member, stale generation, REBALANCE_IN_PROGRESS
// while the group awaits its assignment); a commit with generation -1 is a "simple" commit, accepted only
// while the group has no members. It answers after the store accepted the commit. exists may be nil.
func (c *Coordinator) OffsetCommitFiltered(_ context.Context, req *kmsg.OffsetCommitRequest, exists PartitionFilter) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	codes := make([][]int16, len(req.Topics))
	for i, t := range req.Topics {
		codes[i] = make([]int16, len(t.Partitions))
	}
	defer func() {
		for i, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for j, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
	}()
	all := func(code int16) *kmsg.OffsetCommitResponse {
		for i := range codes {
			for j := range codes[i] {
				if codes[i][j] == 0 {
					codes[i][j] = code
				}
			}
		}
		return resp
	}
	if req.Group == "" {
		return all(kerr.InvalidGroupID.Code)
	}
	offsets := map[TP]Committed{}
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			switch {
			case exists != nil && !exists(t.Topic, p.Partition):
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			case p.Metadata != nil && len(*p.Metadata) > c.cfg.MaxMetadataBytes:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
			default:
				var md string
				if p.Metadata != nil {
					md = *p.Metadata
				}
				offsets[TP{t.Topic, p.Partition}] = Committed{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: md}
			}
		}
	}
	if len(offsets) == 0 {
		return resp
	}
	g, code := c.lockGroup(req.Group, req.Generation < 0)
	if code != 0 {
		return all(code)
	}
	if g == nil {
		// No such group, yet the commit names a generation: it comes from a group that no longer exists.
		return all(kerr.IllegalGeneration.Code)
	}
	defer g.mu.Unlock()
	defer g.maybeDie()
	if code := g.validateCommit(req); code != 0 {
		return all(code)
	}
	if err := c.cfg.Store.Commit(g.id, offsets); err != nil {
		c.log.Error("storing offset commit failed", "group", g.id, "err", err)
		if errors.Is(err, ErrCommitTooLarge) {
			return all(kerr.InvalidCommitOffsetSize.Code)
		}
		// Retriable for the client; the commit is not reported as done, whatever reached the disk.
		return all(kerr.CoordinatorNotAvailable.Code)
	}
	for tp, o := range offsets {
		g.offsets[tp] = o
	}
	return resp
}

// validateCommit applies Kafka's (3.x) classic-group commit checks. Caller holds g.mu.
func (g *group) validateCommit(req *kmsg.OffsetCommitRequest) int16 {
	if req.Generation < 0 && g.state == stateEmpty {
		return 0 // the group is used only to store offsets
	}
	m, code := g.validateMember(req.MemberID, req.InstanceID, req.Generation)
	if code != 0 {
		return code
	}
	if g.state == stateCompletingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	g.heartbeat(m)
	return 0
}

// OffsetFetch handles OffsetFetch v0..v8 (v8: several groups at once). Partitions never committed answer
// offset -1; a null topic list (v2+) returns every committed offset of the group.
func (c *Coordinator) OffsetFetch(_ context.Context, req *kmsg.OffsetFetchRequest) *kmsg.OffsetFetchResponse {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			topics := make([]fetchTopic, 0, len(rg.Topics))
			for _, t := range rg.Topics {
				topics = append(topics, fetchTopic{t.Topic, t.Partitions})
			}
			if rg.Topics == nil {
				topics = nil
			}
			code, res := c.fetchGroup(rg.Group, topics)
			og := kmsg.NewOffsetFetchResponseGroup()
			og.Group, og.ErrorCode = rg.Group, code
			for _, t := range res {
				ot := kmsg.NewOffsetFetchResponseGroupTopic()
				ot.Topic = t.topic
				for _, p := range t.parts {
					op := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					op.Partition, op.Offset, op.LeaderEpoch, op.ErrorCode = p.partition, p.c.Offset, p.c.LeaderEpoch, p.code
					md := p.c.Metadata
					op.Metadata = &md
					ot.Partitions = append(ot.Partitions, op)
				}
				og.Topics = append(og.Topics, ot)
			}
			resp.Groups = append(resp.Groups, og)
		}
		return resp
	}
	topics := make([]fetchTopic, 0, len(req.Topics))
	for _, t := range req.Topics {
		topics = append(topics, fetchTopic{t.Topic, t.Partitions})
	}
	if req.Topics == nil && req.Version >= 2 {
		topics = nil
	}
	code, res := c.fetchGroup(req.Group, topics)
	if req.Version >= 2 {
		resp.ErrorCode = code
	}
	for _, t := range res {
		ot := kmsg.NewOffsetFetchResponseTopic()
		ot.Topic = t.topic
		for _, p := range t.parts {
			op := kmsg.NewOffsetFetchResponseTopicPartition()
			op.Partition, op.Offset, op.LeaderEpoch, op.ErrorCode = p.partition, p.c.Offset, p.c.LeaderEpoch, p.code
			md := p.c.Metadata
			op.Metadata = &md
			ot.Partitions = append(ot.Partitions, op)
		}
		resp.Topics = append(resp.Topics, ot)
	}
	return resp
}

type fetchTopic struct {
	topic string
	parts []int32
}

type fetchedPartition struct {
	partition int32
	c         Committed
	code      int16
}

type fetchedTopic struct {
	topic string
	parts []fetchedPartition
}

// fetchGroup looks up committed offsets; topics nil means all of them.
func (c *Coordinator) fetchGroup(id string, topics []fetchTopic) (int16, []fetchedTopic) {
	none := Committed{Offset: -1, LeaderEpoch: -1}
	var code int16
	g, code := c.lockGroup(id, false)
	if g != nil {
		defer g.mu.Unlock()
	}
	if id == "" && code == 0 {
		code = kerr.InvalidGroupID.Code
	}
	if topics == nil {
		if g == nil || code != 0 {
			return code, nil
		}
		byTopic := map[string][]fetchedPartition{}
		for tp, o := range g.offsets {
			byTopic[tp.Topic] = append(byTopic[tp.Topic], fetchedPartition{partition: tp.Partition, c: o})
		}
		out := make([]fetchedTopic, 0, len(byTopic))
		for t, ps := range byTopic {
			slices.SortFunc(ps, func(a, b fetchedPartition) int { return cmp.Compare(a.partition, b.partition) })
			out = append(out, fetchedTopic{t, ps})
		}
		slices.SortFunc(out, func(a, b fetchedTopic) int { return cmp.Compare(a.topic, b.topic) })
		return 0, out
	}
	out := make([]fetchedTopic, 0, len(topics))
	for _, t := range topics {
		ft := fetchedTopic{topic: t.topic}
		for _, p := range t.parts {
			fp := fetchedPartition{partition: p, c: none, code: code}
			if g != nil && code == 0 {
				if o, ok := g.offsets[TP{t.topic, p}]; ok {
					fp.c = o
				}
			}
			ft.parts = append(ft.parts, fp)
		}
		out = append(out, ft)
	}
	return code, out
}
