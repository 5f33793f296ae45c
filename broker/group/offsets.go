package group

import (
	"cmp"
	"context"
	"errors"
	"fmt"
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
	// TopicID is the id the topic had when the offset was committed (Config.TopicIDs), so an offset of a
	// deleted topic is never taken for one of a new topic of the same name. Zero when unknown (a coordinator
	// without TopicIDs, or a record stored without it).
	TopicID [16]byte
}

// OffsetStore keeps committed offsets durably. A commit takes two steps so that the group's lock is held
// only for the first: Append records the commit in the store's order (it is called under the group's lock, so
// a group's commits are stored in the order they were validated, as Kafka appends under the group lock), and
// the returned Pending's Wait returns once the commit is durable by the store's policy (the replicated
// __consumer_offsets store: once the high watermark passed it, acks=all). Load returns what is durable.
type OffsetStore interface {
	// Append starts recording offsets for group as one atomic unit. An error means nothing was recorded.
	Append(group string, offsets map[TP]Committed) (Pending, error)
	// Delete starts recording that group has no committed offset for tps any more (tombstones), as one atomic
	// unit ordered with Append's commits. An error means nothing was recorded.
	Delete(group string, tps []TP) (Pending, error)
	// Load returns the latest committed offset of every group and partition.
	Load() (map[string]map[TP]Committed, error)
}

// Pending is a commit a store accepted but may not have made durable yet.
type Pending interface {
	// Position orders a store's commits: a later Append has a higher position. Committed offsets are applied
	// in this order whatever order the waits end in, so the store and the coordinator's view agree.
	Position() int64
	// Wait returns nil once the commit is durable. After an error nothing of the commit may be reported as
	// committed (it may still take effect later, as a timed-out commit in Kafka may). An error that wraps a
	// *kerr.Error gives the client that code; ErrCommitTooLarge gives INVALID_COMMIT_OFFSET_SIZE; any other
	// COORDINATOR_NOT_AVAILABLE (retriable).
	Wait(ctx context.Context) error
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
// while the group has no members. It answers after the store made the commit durable (Pending.Wait), without
// holding the group's lock meanwhile; the offsets become visible to OffsetFetch only then. exists may be nil.
func (c *Coordinator) OffsetCommitFiltered(ctx context.Context, req *kmsg.OffsetCommitRequest, exists PartitionFilter) *kmsg.OffsetCommitResponse {
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
		var topicID [16]byte
		known := true
		if c.cfg.TopicIDs != nil {
			topicID, known = c.cfg.TopicIDs(t.Topic)
		}
		for j, p := range t.Partitions {
			switch {
			case !known || exists != nil && !exists(t.Topic, p.Partition):
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
			case p.Metadata != nil && len(*p.Metadata) > c.cfg.MaxMetadataBytes:
				codes[i][j] = kerr.OffsetMetadataTooLarge.Code
			default:
				var md string
				if p.Metadata != nil {
					md = *p.Metadata
				}
				offsets[TP{t.Topic, p.Partition}] = Committed{Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: md, TopicID: topicID}
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
	if code := g.validateCommit(req); code != 0 {
		g.maybeDie()
		g.mu.Unlock()
		return all(code)
	}
	pending, err := c.cfg.Store.Append(g.id, offsets)
	if err != nil {
		g.maybeDie()
		g.mu.Unlock()
		c.log.Error("storing offset commit failed", "group", req.Group, "err", err)
		return all(commitErrorCode(err))
	}
	g.pendingCommits++
	g.mu.Unlock()
	werr := pending.Wait(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	defer g.maybeDie()
	g.pendingCommits--
	if werr != nil {
		// Not reported as done, whatever reached the log: the client retries (or its next commit supersedes).
		c.log.Warn("offset commit not acknowledged", "group", req.Group, "err", werr)
		return all(commitErrorCode(werr))
	}
	if g.state != stateDead {
		g.applyCommitted(offsets, pending.Position())
	}
	return resp
}

// commitErrorCode is the Kafka error code a failed Append or Wait answers (see Pending.Wait).
func commitErrorCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case errors.Is(err, ErrCommitTooLarge):
		return kerr.InvalidCommitOffsetSize.Code
	case errors.As(err, &ke):
		return ke.Code
	}
	return kerr.CoordinatorNotAvailable.Code
}

// applyCommitted makes a durable commit visible, unless a commit stored after it (a higher position) already
// set the partition. Caller holds g.mu.
func (g *group) applyCommitted(offsets map[TP]Committed, pos int64) {
	for tp, o := range offsets {
		if at, ok := g.offsetPos[tp]; ok && at > pos {
			continue
		}
		g.offsets[tp] = o
		g.offsetPos[tp] = pos
	}
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
			if c.deleted(tp, o) {
				continue
			}
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
				if o, ok := g.offsets[TP{t.topic, p}]; ok && !c.deleted(TP{t.topic, p}, o) {
					fp.c = o
				}
			}
			ft.parts = append(ft.parts, fp)
		}
		out = append(out, ft)
	}
	return code, out
}

// deleted reports whether o is an offset of a topic deleted since the commit: no topic has its name now, or
// the topic of that name has another id (deleted and created again). Such offsets are never served, even
// before RemoveDeletedTopicOffsets dropped them, so a re-created topic is consumed from the reset policy.
func (c *Coordinator) deleted(tp TP, o Committed) bool {
	if c.cfg.TopicIDs == nil {
		return false
	}
	id, ok := c.cfg.TopicIDs(tp.Topic)
	return !ok || o.TopicID != [16]byte{} && o.TopicID != id
}

// RemoveDeletedTopicOffsets drops every group's offsets of deleted topics (see deleted), as Kafka's
// GroupMetadataManager does when partitions are deleted: it records tombstones in the store (Delete) and
// forgets the offsets at once, and a group left Empty without offsets is removed. A later load of the store
// finds the tombstones; should they not have reached it (this coordinator lost its partition first), the next
// coordinator finds the offsets deleted again by their topic ids and records the tombstones itself.
//
// It returns how many offsets it dropped and whether it must be called again: some group had a commit in
// flight (its outcome could re-add an offset of the topic) or the store refused the tombstones (err says why;
// those offsets stay hidden meanwhile). Without Config.TopicIDs it does nothing.
func (c *Coordinator) RemoveDeletedTopicOffsets() (removed int, retry bool, err error) {
	if c.cfg.TopicIDs == nil {
		return 0, false, nil
	}
	groups, code := c.snapshotGroups()
	if code != 0 {
		return 0, false, nil
	}
	var errs []error
	for _, g := range groups {
		n, again, err := c.removeDeletedOffsets(g)
		removed += n
		retry = retry || again
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, retry, errors.Join(errs...)
}

// removeDeletedOffsets is RemoveDeletedTopicOffsets for one group.
func (c *Coordinator) removeDeletedOffsets(g *group) (removed int, retry bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state == stateDead {
		return 0, false, nil
	}
	var gone []TP
	for tp, o := range g.offsets {
		if c.deleted(tp, o) {
			gone = append(gone, tp)
		}
	}
	if len(gone) == 0 {
		return 0, false, nil
	}
	if g.pendingCommits > 0 {
		return 0, true, nil
	}
	slices.SortFunc(gone, func(a, b TP) int { return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition)) })
	pending, err := c.cfg.Store.Delete(g.id, gone)
	if err != nil {
		return 0, true, fmt.Errorf("recording the removal of %d offsets of deleted topics of group %s: %w", len(gone), g.id, err)
	}
	for _, tp := range gone {
		delete(g.offsets, tp)
		g.offsetPos[tp] = pending.Position()
	}
	c.log.Info("removed the committed offsets of deleted topics", "group", g.id, "partitions", len(gone))
	g.maybeDie()
	return len(gone), false, nil
}
