package replica

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Leader is the leader-side replication state of one partition, as Kafka's Partition keeps it on the leader:
// each follower's log end offset and last caught-up time, the committed ISR with at most one AlterPartition in
// flight, and the high watermark. It decides; the caller acts (appends, answers fetches, sends AlterPartition,
// completes waiting produce requests when Result.HWAdvanced).
//
// Not safe for concurrent use: the owning partition calls it under the same lock that orders its log appends,
// so that the log end offset it is told (OnAppend) is the one every fetch is judged against.
type Leader struct {
	cfg            Config
	leaderEpoch    int32
	partitionEpoch int32
	epochStart     int64 // log end offset when this broker became leader in leaderEpoch
	replicas       []int32
	isr            []int32   // committed ISR, sorted
	pending        *Proposal // the AlterPartition in flight, nil when the state is committed
	leo, hw        int64
	followers      map[int32]*follower // every replica but Self
	ineligible     map[int32]bool      // fenced or shutting-down brokers: never added to the ISR
	nextSeq        uint64
}

// Config shapes a leader's decisions. Field comments give Kafka's setting names.
type Config struct {
	// Self is this broker's id.
	Self int32
	// ReplicaLagTimeMax is replica.lag.time.max.ms: how long a follower may stay behind before it leaves the ISR.
	ReplicaLagTimeMax time.Duration
	// MinInsyncReplicas is the topic's min.insync.replicas.
	MinInsyncReplicas int
}

func (c Config) validate() error {
	switch {
	case c.Self < 0:
		return fmt.Errorf("replica config: Self %d is negative", c.Self)
	case c.ReplicaLagTimeMax <= 0:
		return fmt.Errorf("replica config: replica.lag.time.max.ms must be positive, got %v", c.ReplicaLagTimeMax)
	case c.MinInsyncReplicas < 1:
		return fmt.Errorf("replica config: min.insync.replicas must be at least 1, got %d", c.MinInsyncReplicas)
	}
	return nil
}

// Assignment is the controller's record of the partition, the part a leader acts on.
type Assignment struct {
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32
	ISR            []int32
}

// AssignmentOf extracts the assignment from a metadata partition record.
func AssignmentOf(p meta.Partition) Assignment {
	return Assignment{Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch,
		Replicas: slices.Clone(p.Replicas), ISR: slices.Clone(p.ISR)}
}

// Result is the decision after an input.
type Result struct {
	// HighWatermark is the leader's high watermark after the input.
	HighWatermark int64
	// HWAdvanced: the high watermark moved; complete waiting acks=all produce requests and fetches, and let
	// followers learn it.
	HWAdvanced bool
	// Propose, when set, is an AlterPartition to send now. It is recorded as in flight: report its answer with
	// OnAlterPartitionResult(Propose.Seq, ...).
	Propose *Proposal
}

// ProposalKind says whether an AlterPartition adds or removes replicas.
type ProposalKind int

const (
	// Expand adds one caught-up follower to the ISR.
	Expand ProposalKind = iota + 1
	// Shrink removes followers that fell out of sync.
	Shrink
)

func (k ProposalKind) String() string {
	switch k {
	case Expand:
		return "expand"
	case Shrink:
		return "shrink"
	}
	return fmt.Sprintf("ProposalKind(%d)", int(k))
}

// Proposal is one AlterPartition request: the whole new ISR, naming the leader epoch and the partition epoch it
// was computed from, so the controller rejects it if the partition changed meanwhile.
type Proposal struct {
	Seq            uint64 // identifies the proposal for OnAlterPartitionResult: leader epoch << 32 | counter
	Kind           ProposalKind
	LeaderEpoch    int32
	PartitionEpoch int32
	ISR            []int32 // proposed ISR, sorted
	Changed        []int32 // the replica added (Expand) or those removed (Shrink), sorted
}

// AlterResult is the controller's answer to an AlterPartition. On success (ErrorCode 0) it carries the
// partition as now recorded. A transport failure (timeout, no active controller) is reported with a retriable
// code such as kerr.RequestTimedOut.Code: the leader then asks to resend.
type AlterResult struct {
	ErrorCode      int16
	LeaderEpoch    int32
	PartitionEpoch int32
	ISR            []int32
}

// AlterOutcome says what the leader made of an AlterPartition answer.
type AlterOutcome int

const (
	// AlterCommitted: the answer became the committed ISR and partition epoch.
	AlterCommitted AlterOutcome = iota + 1
	// AlterStale: the answer is for a proposal no longer in flight (superseded by metadata); ignored.
	AlterStale
	// AlterReverted: the controller says it did not apply the change; back to the committed state, free to
	// propose again.
	AlterReverted
	// AlterAwaitMetadata: the answer is unusable (fenced epoch, stale version, ...); the proposal stays in flight
	// until a metadata change (OnPartitionChange) settles the state, so no other change is proposed meanwhile.
	AlterAwaitMetadata
	// AlterRetry: a transient failure; Result.Propose carries the same proposal to resend.
	AlterRetry
)

func (o AlterOutcome) String() string {
	switch o {
	case AlterCommitted:
		return "committed"
	case AlterStale:
		return "stale"
	case AlterReverted:
		return "reverted"
	case AlterAwaitMetadata:
		return "await-metadata"
	case AlterRetry:
		return "retry"
	}
	return fmt.Sprintf("AlterOutcome(%d)", int(o))
}

// ErrNotLeader is returned when an assignment names another leader: the caller must become a follower.
var ErrNotLeader = errors.New("this broker is not the leader of the partition")

// NewLeader starts leading a partition, as Kafka's makeLeader on a new leader epoch. epochStartOffset is where
// the leader epoch begins in the local log: the log end offset when the epoch was assigned (the caller must
// already have recorded (LeaderEpoch, epochStartOffset) in the log's epoch cache). leo and hw are the local log
// end offset and the high watermark it had as a follower (clamped to leo: a checkpoint may be ahead of a log cut
// by a power loss). Followers start unknown; those in the ISR count as caught up now. The high watermark may
// already advance (for example when the ISR is only this broker): read HighWatermark.
func NewLeader(cfg Config, a Assignment, epochStartOffset, leo, hw int64, now time.Time) (*Leader, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := validateAssignment(cfg.Self, a); err != nil {
		return nil, err
	}
	if leo < 0 || epochStartOffset < 0 || epochStartOffset > leo {
		return nil, fmt.Errorf("new leader: epoch start offset %d must lie within the log [0, %d]", epochStartOffset, leo)
	}
	l := &Leader{
		cfg:            cfg,
		leaderEpoch:    a.LeaderEpoch,
		partitionEpoch: a.PartitionEpoch,
		epochStart:     epochStartOffset,
		replicas:       slices.Clone(a.Replicas),
		isr:            sortedCopy(a.ISR),
		leo:            leo,
		hw:             max(0, min(hw, leo)),
		followers:      make(map[int32]*follower, len(a.Replicas)),
		ineligible:     map[int32]bool{},
		// Sequence numbers carry the leader epoch in their high half, so an answer to a proposal of an earlier
		// leadership (another Leader value) can never match one of this leadership.
		nextSeq: uint64(a.LeaderEpoch) << 32,
	}
	for _, id := range l.replicas {
		if id == cfg.Self {
			continue
		}
		f := newFollower(id)
		if l.inISR(id) {
			f.lastCaughtUp = now
		}
		l.followers[id] = f
	}
	l.maybeAdvanceHW(now)
	return l, nil
}

// OnAppend records that the leader's log grew to leo (after a produce append). With an ISR of one, or followers
// already caught up, the high watermark follows.
func (l *Leader) OnAppend(leo int64, now time.Time) (Result, error) {
	if leo < l.leo {
		return l.result(false), fmt.Errorf("leader append: log end offset went back from %d to %d", l.leo, leo)
	}
	l.leo = leo
	return l.result(l.maybeAdvanceHW(now)), nil
}

// OnFollowerFetch records a follower's position after a fetch CheckFetch accepted and the leader read, as
// Kafka's updateFollowerFetchState: the fetch offset is the follower's log end offset, and its last caught-up
// time moves to now if it asked for everything the leader had, or to its previous fetch time if it asked for at
// least what the leader had then. A follower outside the ISR whose log reached both the high watermark and the
// start of this leader epoch is proposed for the ISR; the high watermark is recomputed when its offset moved.
func (l *Leader) OnFollowerFetch(replica int32, fetchOffset int64, now time.Time) (Result, error) {
	f, ok := l.followers[replica]
	if !ok {
		return l.result(false), fmt.Errorf("fetch from broker %d, not a follower of this partition at leader epoch %d: %w",
			replica, l.leaderEpoch, kerr.UnknownLeaderEpoch)
	}
	if fetchOffset < 0 || fetchOffset > l.leo {
		return l.result(false), fmt.Errorf("fetch from broker %d at offset %d outside the leader's log end %d (CheckFetch must reject it): %w",
			replica, fetchOffset, l.leo, kerr.OffsetOutOfRange)
	}
	prev := f.leo
	f.recordFetch(fetchOffset, l.leo, now)

	var res Result
	if l.pending == nil && !l.inISR(replica) && !l.ineligible[replica] && f.leo >= l.hw && f.leo >= l.epochStart {
		res.Propose = l.propose(Expand, insertSorted(l.isr, replica), []int32{replica})
	}
	if prev != f.leo {
		res.HWAdvanced = l.maybeAdvanceHW(now)
	}
	res.HighWatermark = l.hw
	return res, nil
}

// Tick checks the ISR for followers out of sync at now, as Kafka's maybeShrinkIsr (which Kafka runs every
// replica.lag.time.max.ms / 2): a follower is out of sync unless its log end offset equals the leader's or it
// was caught up within ReplicaLagTimeMax. Nothing is proposed while another change is in flight.
func (l *Leader) Tick(now time.Time) Result {
	if l.pending != nil {
		return l.result(false)
	}
	var out []int32
	for _, id := range l.isr {
		if id == l.cfg.Self {
			continue
		}
		if f, ok := l.followers[id]; !ok || !l.caughtUp(f, now) {
			out = append(out, id)
		}
	}
	res := l.result(false)
	if len(out) > 0 {
		keep := slices.DeleteFunc(slices.Clone(l.isr), func(id int32) bool { return slices.Contains(out, id) })
		res.Propose = l.propose(Shrink, keep, out)
	}
	return res
}

// OnAlterPartitionResult applies the controller's answer to proposal seq, as Kafka's handleAlterPartitionUpdate
// and handleAlterPartitionError.
func (l *Leader) OnAlterPartitionResult(seq uint64, r AlterResult, now time.Time) (Result, AlterOutcome) {
	if l.pending == nil || l.pending.Seq != seq {
		return l.result(false), AlterStale
	}
	switch {
	case r.ErrorCode == 0:
		// An answer for another leader epoch, or older than what we know, tells us nothing reliable.
		if r.LeaderEpoch != l.leaderEpoch || r.PartitionEpoch < l.partitionEpoch {
			return l.result(false), AlterAwaitMetadata
		}
		l.isr = sortedCopy(r.ISR)
		l.partitionEpoch = r.PartitionEpoch
		l.pending = nil
		return l.result(l.maybeAdvanceHW(now)), AlterCommitted
	case r.ErrorCode == kerr.OperationNotAttempted.Code || r.ErrorCode == kerr.IneligibleReplica.Code:
		// The controller states that the partition epoch is current and nothing was applied.
		l.pending = nil
		return l.result(false), AlterReverted
	case awaitMetadataCodes[r.ErrorCode]:
		return l.result(false), AlterAwaitMetadata
	default:
		res := l.result(false)
		res.Propose = l.pending.clone()
		return res, AlterRetry
	}
}

// awaitMetadataCodes are the AlterPartition errors after which Kafka keeps the proposal pending until new
// metadata arrives.
var awaitMetadataCodes = map[int16]bool{
	kerr.UnknownTopicOrPartition.Code: true,
	kerr.UnknownTopicID.Code:          true,
	kerr.FencedLeaderEpoch.Code:       true,
	kerr.InvalidUpdateVersion.Code:    true,
	kerr.InvalidRequest.Code:          true,
	kerr.NewLeaderElected.Code:        true,
}

// OnPartitionChange applies a metadata change of the partition while this broker stays its leader, as Kafka's
// makeLeader: a record older than the current partition epoch is ignored, the same epochs change nothing;
// otherwise the record's ISR becomes the committed ISR and any in-flight proposal is dropped. A higher leader epoch
// (re-elected) restarts the epoch at leo, which the caller must have recorded in the epoch cache, and resets the
// followers' caught-up times. An assignment naming another leader returns ErrNotLeader.
func (l *Leader) OnPartitionChange(a Assignment, leo int64, now time.Time) (Result, error) {
	if a.Leader != l.cfg.Self {
		return l.result(false), fmt.Errorf("partition change to leader %d at leader epoch %d: %w", a.Leader, a.LeaderEpoch, ErrNotLeader)
	}
	if err := validateAssignment(l.cfg.Self, a); err != nil {
		return l.result(false), err
	}
	if a.PartitionEpoch < l.partitionEpoch || a.LeaderEpoch < l.leaderEpoch ||
		(a.PartitionEpoch == l.partitionEpoch && a.LeaderEpoch == l.leaderEpoch) {
		return l.result(false), nil
	}
	if leo < l.leo {
		return l.result(false), fmt.Errorf("partition change: leader log end offset went back from %d to %d", l.leo, leo)
	}
	l.leo = leo
	l.replicas = slices.Clone(a.Replicas)
	for id := range l.followers {
		if !slices.Contains(l.replicas, id) {
			delete(l.followers, id)
		}
	}
	for _, id := range l.replicas {
		if _, ok := l.followers[id]; !ok && id != l.cfg.Self {
			l.followers[id] = newFollower(id)
		}
	}
	l.isr = sortedCopy(a.ISR)
	l.pending = nil
	if a.LeaderEpoch > l.leaderEpoch {
		l.leaderEpoch = a.LeaderEpoch
		l.epochStart = leo
		for id, f := range l.followers {
			f.resetForNewEpoch(leo, l.inISR(id), now)
		}
	}
	l.partitionEpoch = a.PartitionEpoch
	return l.result(l.maybeAdvanceHW(now)), nil
}

// SetMinInsyncReplicas applies a change of the topic's min.insync.replicas; the high watermark may advance.
func (l *Leader) SetMinInsyncReplicas(n int, now time.Time) (Result, error) {
	if n < 1 {
		return l.result(false), fmt.Errorf("min.insync.replicas must be at least 1, got %d", n)
	}
	l.cfg.MinInsyncReplicas = n
	return l.result(l.maybeAdvanceHW(now)), nil
}

// SetEligible marks a replica as able to join the ISR or not (Kafka: a fenced or shutting-down broker is not).
// An ineligible caught-up follower outside the ISR also stops holding back the high watermark.
func (l *Leader) SetEligible(replica int32, eligible bool) {
	if eligible {
		delete(l.ineligible, replica)
	} else {
		l.ineligible[replica] = true
	}
}

// CanAcceptAcksAll reports whether an acks=all produce may be appended: the committed ISR must hold at least
// min(min.insync.replicas, replication factor) replicas; otherwise answer NOT_ENOUGH_REPLICAS without appending.
func (l *Leader) CanAcceptAcksAll() bool { return len(l.isr) >= l.effectiveMinISR() }

// AckedAll reports whether an acks=all produce whose last record is at requiredOffset-1 may be answered: once the
// high watermark reaches requiredOffset, every replica of the (maximal) ISR holds it. The error is
// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR has meanwhile shrunk below min.insync.replicas.
func (l *Leader) AckedAll(requiredOffset int64) (bool, error) {
	if l.hw < requiredOffset {
		return false, nil
	}
	if n := l.maximalISRSize(); n < l.effectiveMinISR() {
		return true, fmt.Errorf("ISR of %d below min.insync.replicas %d after append: %w", n, l.effectiveMinISR(), kerr.NotEnoughReplicasAfterAppend)
	}
	return true, nil
}

// HighWatermark is the leader's high watermark; it never moves backwards during the leadership.
func (l *Leader) HighWatermark() int64 { return l.hw }

// LogEndOffset is the leader's log end offset as last reported.
func (l *Leader) LogEndOffset() int64 { return l.leo }

// LeaderEpoch is the current leader epoch.
func (l *Leader) LeaderEpoch() int32 { return l.leaderEpoch }

// PartitionEpoch is the partition epoch of the committed state.
func (l *Leader) PartitionEpoch() int32 { return l.partitionEpoch }

// EpochStartOffset is where the current leader epoch begins in the log.
func (l *Leader) EpochStartOffset() int64 { return l.epochStart }

// Replicas is the assignment, preferred leader first.
func (l *Leader) Replicas() []int32 { return slices.Clone(l.replicas) }

// ISR is the committed ISR (what the controller recorded), sorted.
func (l *Leader) ISR() []int32 { return slices.Clone(l.isr) }

// MaximalISR is the committed ISR plus a replica whose addition is in flight (KIP-497). It is the set the high
// watermark waits for: counting a replica before the controller confirms it only makes the leader stricter,
// while a pending removal is not applied until confirmed, since counting it early could advance the high
// watermark past a replica that stays in the ISR.
func (l *Leader) MaximalISR() []int32 {
	if l.pending != nil && l.pending.Kind == Expand {
		return slices.Clone(l.pending.ISR)
	}
	return slices.Clone(l.isr)
}

// Pending returns the AlterPartition in flight, or nil.
func (l *Leader) Pending() *Proposal {
	if l.pending == nil {
		return nil
	}
	return l.pending.clone()
}

// FollowerStatus is the leader's view of one follower.
type FollowerStatus struct {
	ID           int32
	LogEndOffset int64     // -1 until its first fetch in this leadership
	LastFetch    time.Time // zero: never
	LastCaughtUp time.Time // zero: never
	InISR        bool      // committed
	Eligible     bool
}

// Followers returns the leader's view of every follower, in assignment order.
func (l *Leader) Followers() []FollowerStatus {
	out := make([]FollowerStatus, 0, len(l.followers))
	for _, id := range l.replicas {
		f, ok := l.followers[id]
		if !ok {
			continue
		}
		out = append(out, FollowerStatus{ID: id, LogEndOffset: f.leo, LastFetch: f.lastFetchTime,
			LastCaughtUp: f.lastCaughtUp, InISR: l.inISR(id), Eligible: !l.ineligible[id]})
	}
	return out
}
