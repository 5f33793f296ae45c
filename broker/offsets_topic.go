package broker

// Group coordination over the replicated internal topic __consumer_offsets, as Kafka does it: the coordinator
// of group g is the leader of partition abs(javaHashCode(g)) % N of that topic (Kafka's partitionFor), a
// commit is a record batch appended to that partition and acknowledged once the high watermark passed it
// (offsets.commit.required.acks=-1), and a node that becomes leader of a partition loads its committed
// offsets from the log before it coordinates the partition's groups (COORDINATOR_LOAD_IN_PROGRESS meanwhile).
// The topic is replicated by the same code as every other partition (epochs, ISR, high watermark,
// truncation, elections); only this file and offsets_topic_store.go know what its records mean.
//
// The topic is created lazily, on the first FindCoordinator for a group, as Kafka does. Clients cannot
// produce to it (INVALID_TOPIC_EXCEPTION, as Kafka answers); only the coordinator appends.
//
// One race is left: a commit appended just as this node's leadership of the partition ends
// and a new one (of the same node, at a higher epoch) begins may land in the log under the new epoch. It is
// then not acknowledged (its wait is fenced by the old epoch: NOT_COORDINATOR), and the new coordinator may or
// may not have loaded it; either way it is in the log, so any later load sees it, like a timed-out commit.
//
// Deleting a topic drops every group's committed offsets of it (tombstones, as Kafka's GroupMetadataManager
// writes for deleted partitions); commits carry the topic's id, so offsets of a deleted topic are never served
// for a new topic of the same name, even before the tombstones are written (cleanupLoop).
//
// Deliberate differences from Kafka: the topic is not compacted (cleanup.policy=compact is not supported; a
// long trial's log only grows and a load reads all of it), offsets never expire, and group membership is not
// written to the log (Kafka's GroupMetadata records), so after a coordinator moves every group starts Empty
// and its members rejoin with their committed offsets intact, as after a coordinator restart.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kafkatrial/kafkatrial/broker/group"
	"github.com/kafkatrial/kafkatrial/broker/meta"
)

// OffsetsTopic is the internal topic holding committed offsets (Kafka's name).
const OffsetsTopic = "__consumer_offsets"

// OffsetsTopicConfig configures __consumer_offsets (Kafka's setting names in brackets). Zero values take the
// defaults.
type OffsetsTopicConfig struct {
	// NumPartitions [offsets.topic.num.partitions]: default 8 (Kafka: 50; a trial has few groups, and a
	// failover loads one partition, so fewer, busier partitions cost nothing). Fixed once the topic exists:
	// the topic's own partition count is what maps groups afterwards.
	NumPartitions int32 `yaml:"offsets.topic.num.partitions"`
	// ReplicationFactor [offsets.topic.replication.factor]: default 3, capped at the number of registered
	// brokers when the topic is created (so a single node gets 1). Creation waits until that many brokers are
	// live, as Kafka's does; FindCoordinator answers COORDINATOR_NOT_AVAILABLE meanwhile.
	ReplicationFactor int16 `yaml:"offsets.topic.replication.factor"`
	// CommitTimeout [offsets.commit.timeout.ms]: an OffsetCommit waits this long at most for the ISR to have
	// the commit, then answers REQUEST_TIMED_OUT. Default 5s (Kafka's).
	CommitTimeout time.Duration `yaml:"offsets.commit.timeout.ms"`
}

// Defaults of OffsetsTopicConfig.
const (
	DefaultOffsetsTopicPartitions  = 8
	DefaultOffsetsTopicReplication = 3
	DefaultOffsetsCommitTimeout    = 5 * time.Second
	offsetsLoadPollInterval        = 5 * time.Millisecond
	offsetsLoadRetryBackoff        = 100 * time.Millisecond
	// offsetsCleanupRetryBackoff spaces the passes that drop deleted topics' offsets while one must be
	// repeated (a commit in flight, tombstones refused).
	offsetsCleanupRetryBackoff = 100 * time.Millisecond
)

func (c OffsetsTopicConfig) withDefaults() OffsetsTopicConfig {
	if c.NumPartitions == 0 {
		c.NumPartitions = DefaultOffsetsTopicPartitions
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = DefaultOffsetsTopicReplication
	}
	if c.CommitTimeout == 0 {
		c.CommitTimeout = DefaultOffsetsCommitTimeout
	}
	return c
}

func (c OffsetsTopicConfig) validate() error {
	var errs []error
	if c.NumPartitions < 1 || c.NumPartitions > meta.MaxPartitions {
		errs = append(errs, fmt.Errorf("broker config offsets.topic.num.partitions: %d not in [1, %d]", c.NumPartitions, meta.MaxPartitions))
	}
	if c.ReplicationFactor < 1 {
		errs = append(errs, fmt.Errorf("broker config offsets.topic.replication.factor: %d is below 1", c.ReplicationFactor))
	}
	if c.CommitTimeout < 0 {
		errs = append(errs, fmt.Errorf("broker config offsets.commit.timeout.ms: %v is negative", c.CommitTimeout))
	}
	return errors.Join(errs...)
}

// isInternalTopic reports whether Metadata shows topic as internal (IsInternal), as Kafka shows its own.
func isInternalTopic(topic string) bool { return topic == OffsetsTopic }

// offsetsPartitionFor is Kafka's GroupMetadataManager.partitionFor: Utils.abs(groupId.hashCode) % n, with
// Java's String.hashCode over UTF-16 code units, so a group lands on the partition it would in Kafka.
func offsetsPartitionFor(groupID string, n int) int32 {
	var h int32
	for _, r := range groupID {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	if h == -1<<31 {
		h = 0 // Utils.abs(Integer.MIN_VALUE) is 0
	} else if h < 0 {
		h = -h
	}
	return h % int32(n)
}

// groupCoordinators is this node's share of group coordination: one group.Coordinator per partition of
// __consumer_offsets this node leads, built (loading the partition's log) when the leadership begins and
// closed when it ends, as Kafka's GroupMetadataManager loads and unloads partitions.
//
// Locking: mu guards closed and parts; each coordinator guards its own state. mu is never held while calling
// into a coordinator (Close takes every group's lock) or a partition.
type groupCoordinators struct {
	n   *Node
	cfg OffsetsTopicConfig

	mu     sync.Mutex
	closed bool
	parts  map[int32]*offsetsLeadership

	// createMu lets one lazy creation of the topic run at a time on this node.
	createMu sync.Mutex
}

// offsetsLeadership is this node's leadership of one offsets partition at one leader epoch.
type offsetsLeadership struct {
	part   int32
	epoch  int32
	coord  *group.Coordinator // nil while the partition loads
	cancel context.CancelFunc // stops the load
	// cleanup asks the leadership's goroutine (once loaded) to drop the offsets of deleted topics; buffered
	// one, a request while one waits is merged into it.
	cleanup chan struct{}
}

// requestCleanup asks for a pass over the groups' offsets for deleted topics (see cleanupLoop).
func (l *offsetsLeadership) requestCleanup() {
	select {
	case l.cleanup <- struct{}{}:
	default:
	}
}

func newGroupCoordinators(n *Node) *groupCoordinators {
	return &groupCoordinators{n: n, cfg: n.cfg.OffsetsTopic, parts: map[int32]*offsetsLeadership{}}
}

// onImage starts loading the offsets partitions this node now leads and stops coordinating those it no longer
// leads (or leads at a newer epoch: that is a new leadership, loaded afresh). Called after every applied image.
func (gc *groupCoordinators) onImage(im *meta.Image) {
	n := gc.n
	var stop []*offsetsLeadership
	gc.mu.Lock()
	if gc.closed {
		gc.mu.Unlock()
		return
	}
	var partitions []meta.Partition
	if t := im.Topics[OffsetsTopic]; t != nil {
		partitions = t.Partitions
	}
	for part, l := range gc.parts {
		if int(part) >= len(partitions) || !gc.leads(partitions[part], l.epoch) {
			stop = append(stop, l)
			delete(gc.parts, part)
		}
	}
	// Every image may have deleted topics: the coordinators drop their offsets (a cheap scan when none did).
	for _, l := range gc.parts {
		l.requestCleanup()
	}
	for _, mp := range partitions {
		if gc.parts[mp.Partition] != nil || !gc.leads(mp, mp.LeaderEpoch) || n.ctx.Err() != nil {
			continue
		}
		ctx, cancel := context.WithCancel(n.ctx)
		l := &offsetsLeadership{part: mp.Partition, epoch: mp.LeaderEpoch, cancel: cancel, cleanup: make(chan struct{}, 1)}
		l.requestCleanup() // offsets loaded from the log may belong to topics deleted since
		gc.parts[mp.Partition] = l
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if coord := gc.load(ctx, mp.Partition, l); coord != nil {
				gc.cleanupLoop(ctx, l, coord)
			}
		}()
	}
	gc.mu.Unlock()
	for _, l := range stop {
		gc.stop(l)
	}
}

// leads reports whether this node's replica of the offsets partition leads at epoch (the image says so and
// the replica took the leadership).
func (gc *groupCoordinators) leads(mp meta.Partition, epoch int32) bool {
	if mp.Leader != gc.n.cfg.NodeID || mp.LeaderEpoch != epoch {
		return false
	}
	st, ok := gc.n.PartitionState(OffsetsTopic, mp.Partition)
	return ok && st.IsLeader && st.LeaderEpoch == epoch
}

// stop ends one leadership: the load stops, the coordinator answers NOT_COORDINATOR to everything waiting.
func (gc *groupCoordinators) stop(l *offsetsLeadership) {
	l.cancel()
	gc.mu.Lock()
	coord := l.coord
	l.coord = nil
	gc.mu.Unlock()
	if coord != nil {
		coord.Close()
		gc.n.log.Info("stopped coordinating the groups of an offsets partition", "offsets_partition", l.part, "leader_epoch", l.epoch)
	}
}

// load waits until the partition's high watermark covers everything earlier leaders wrote, reads the
// committed offsets up to it and starts coordinating; it retries until the leadership ends. It returns the
// coordinator, or nil when the leadership ended first.
func (gc *groupCoordinators) load(ctx context.Context, part int32, l *offsetsLeadership) *group.Coordinator {
	n := gc.n
	store := &offsetsStore{n: n, partition: part, epoch: l.epoch, timeout: gc.cfg.CommitTimeout}
	for {
		start := time.Now()
		err := store.awaitCaughtUp(ctx)
		var coord *group.Coordinator
		if err == nil {
			t := n.cfg.Timing
			coord, err = group.NewCoordinator(group.Config{Store: store,
				Logger:                n.log.With("part", "group", "offsets_partition", part, "leader_epoch", l.epoch),
				InitialRebalanceDelay: t.GroupInitialRebalanceDelay, MinSessionTimeout: t.GroupMinSessionTimeout,
				MaxSessionTimeout: t.GroupMaxSessionTimeout, TopicIDs: n.topicID})
		}
		if err == nil {
			gc.mu.Lock()
			current := !gc.closed && gc.parts[part] == l
			if current {
				l.coord = coord
			}
			gc.mu.Unlock()
			if !current {
				coord.Close()
				return nil
			}
			n.log.Info("coordinating the groups of an offsets partition", "offsets_partition", part,
				"leader_epoch", l.epoch, "load_time", time.Since(start))
			return coord
		}
		if ctx.Err() != nil || errors.Is(err, errLeadershipEnded) {
			return nil
		}
		n.log.Warn("loading an offsets partition failed; retrying", "offsets_partition", part, "leader_epoch", l.epoch, "err", err)
		if !sleepCtx(ctx, offsetsLoadRetryBackoff) {
			return nil
		}
	}
}

// cleanupLoop drops the groups' offsets of deleted topics on every request (each new image, and once after
// the load) until the leadership ends, as Kafka's coordinator does when partitions are deleted. The
// coordinator already hides such offsets from OffsetFetch by their topic id; this pass writes the tombstones,
// so the removal is in the replicated log. A coordinator that loses the partition before its tombstones are
// committed leaves the work to the next one, which finds the same offsets deleted by their topic ids.
func (gc *groupCoordinators) cleanupLoop(ctx context.Context, l *offsetsLeadership, coord *group.Coordinator) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.cleanup:
		}
		failing := false
		for {
			if gc.n.gate.wait(ctx) != nil {
				return
			}
			_, retry, err := coord.RemoveDeletedTopicOffsets()
			switch {
			case err != nil && !failing:
				gc.n.log.Warn("dropping the offsets of deleted topics failed; retrying (they are not served meanwhile)",
					"offsets_partition", l.part, "leader_epoch", l.epoch, "err", err)
				failing = true
			case err == nil && failing:
				gc.n.log.Info("dropping the offsets of deleted topics works again", "offsets_partition", l.part)
				failing = false
			}
			if !retry {
				break
			}
			if !sleepCtx(ctx, offsetsCleanupRetryBackoff) {
				return
			}
		}
	}
}

// topicID returns the id of the topic named name in this node's current image (group.Config.TopicIDs).
func (n *Node) topicID(name string) ([16]byte, bool) {
	im := n.image()
	if im == nil {
		return [16]byte{}, false
	}
	t := im.Topics[name]
	if t == nil {
		return [16]byte{}, false
	}
	return t.ID, true
}

// coordinator returns the coordinator of the groups of offsets partition mp, or the error a group request
// gets: NOT_COORDINATOR when this node does not lead it, COORDINATOR_LOAD_IN_PROGRESS while it loads.
func (gc *groupCoordinators) coordinator(mp meta.Partition) (*group.Coordinator, int16) {
	if mp.Leader != gc.n.cfg.NodeID {
		return nil, kerr.NotCoordinator.Code
	}
	gc.mu.Lock()
	defer gc.mu.Unlock()
	if gc.closed {
		return nil, kerr.NotCoordinator.Code
	}
	l := gc.parts[mp.Partition]
	if l == nil || l.epoch != mp.LeaderEpoch || l.coord == nil {
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	return l.coord, 0
}

// all returns every loaded coordinator, and whether some partition this node leads is still loading.
func (gc *groupCoordinators) all() (coords []*group.Coordinator, loading bool) {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	for _, l := range gc.parts {
		if l.coord == nil {
			loading = true
			continue
		}
		coords = append(coords, l.coord)
	}
	return coords, loading
}

// close stops every leadership (node stop or kill: coordination state lives in memory only).
func (gc *groupCoordinators) close() {
	gc.mu.Lock()
	gc.closed = true
	parts := gc.parts
	gc.parts = map[int32]*offsetsLeadership{}
	gc.mu.Unlock()
	for _, l := range parts {
		l.cancel()
		if l.coord != nil {
			l.coord.Close()
		}
	}
}

// groupCoordinatorFor returns this node's coordinator of groupID, or the error code a group request gets
// instead: NOT_COORDINATOR (ask FindCoordinator again, which also creates the offsets topic) or
// COORDINATOR_LOAD_IN_PROGRESS.
func (n *Node) groupCoordinatorFor(groupID string) (*group.Coordinator, int16) {
	im := n.image()
	if im == nil {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	t := im.Topics[OffsetsTopic]
	if t == nil || len(t.Partitions) == 0 {
		return nil, kerr.NotCoordinator.Code
	}
	return n.groups.coordinator(t.Partitions[offsetsPartitionFor(groupID, len(t.Partitions))])
}

// findGroupCoordinator answers FindCoordinator for a group: the leader of its offsets partition, creating the
// topic first if it does not exist yet; COORDINATOR_NOT_AVAILABLE while the partition has no live leader.
func (n *Node) findGroupCoordinator(ctx context.Context, groupID string) (id int32, host string, port int32, code int16) {
	unavailable := func() (int32, string, int32, int16) { return -1, "", -1, kerr.CoordinatorNotAvailable.Code }
	im := n.image()
	if im == nil {
		return unavailable()
	}
	t := im.Topics[OffsetsTopic]
	if t == nil {
		var err error
		if t, err = n.ensureOffsetsTopic(ctx); err != nil {
			n.log.Info("the offsets topic is not available yet", "err", err)
			return unavailable()
		}
		im = n.image()
	}
	if len(t.Partitions) == 0 {
		return unavailable()
	}
	mp := t.Partitions[offsetsPartitionFor(groupID, len(t.Partitions))]
	switch {
	case mp.Leader == meta.NoLeader:
		return unavailable()
	case mp.Leader == n.cfg.NodeID:
		host, port = n.advertised()
		return mp.Leader, host, port, 0
	}
	b, ok := im.Brokers[mp.Leader]
	if !ok || b.Fenced {
		return unavailable()
	}
	return b.ID, b.Host, b.Port, 0
}

// ensureOffsetsTopic creates __consumer_offsets if it does not exist and returns it as this node's image
// shows it.
func (n *Node) ensureOffsetsTopic(ctx context.Context) (*meta.Topic, error) {
	gc := n.groups
	gc.createMu.Lock()
	defer gc.createMu.Unlock()
	im := n.image()
	if t := im.Topics[OffsetsTopic]; t != nil {
		return t, nil
	}
	rf := min(int(gc.cfg.ReplicationFactor), len(im.Brokers))
	if live := len(im.EligibleBrokers()); live < rf || rf < 1 {
		return nil, fmt.Errorf("creating %s: %d live brokers, need offsets.topic.replication.factor %d", OffsetsTopic, live, rf)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timing.RequestTimeout)
	defer cancel()
	res, err := n.createTopic(ctx, OffsetsTopic, gc.cfg.NumPartitions, int16(rf), nil)
	switch {
	case err != nil:
		return nil, err
	case res.ErrorCode == kerr.TopicAlreadyExists.Code:
		// Another node created it: wait until this node's image has it.
		n.waitForImageWhere(ctx, func(im *meta.Image) bool { return im.Topics[OffsetsTopic] != nil })
	case res.ErrorCode != 0:
		return nil, fmt.Errorf("creating %s: %w: %s", OffsetsTopic, kerr.ErrorForCode(res.ErrorCode), res.Message)
	default:
		n.log.Info("created the offsets topic", "partitions", gc.cfg.NumPartitions, "replication_factor", rf)
	}
	t := n.image().Topics[OffsetsTopic]
	if t == nil {
		return nil, fmt.Errorf("creating %s: not in this node's metadata yet: %w", OffsetsTopic, ctx.Err())
	}
	return t, nil
}
