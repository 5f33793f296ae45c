package replica

import (
	"fmt"
	"slices"
	"time"
)

// follower is the leader's record of one follower (Kafka's ReplicaState).
type follower struct {
	id  int32
	leo int64 // -1 until its first fetch in this leadership
	// lastFetchLeaderLEO is the leader's log end offset at the follower's previous fetch (-1: none yet).
	lastFetchLeaderLEO int64
	lastFetchTime      time.Time // zero: none yet
	lastCaughtUp       time.Time // zero: never
}

func newFollower(id int32) *follower {
	return &follower{id: id, leo: -1, lastFetchLeaderLEO: -1}
}

// recordFetch is Kafka's updateFetchStateOrThrow. A follower that fetches at the leader's end is caught up now; one
// that fetches at least the end the leader had at its previous fetch was caught up at that previous fetch (it
// has since copied everything that existed then). So a follower that keeps up with a busy leader never looks
// stale, and one that stops fetching or falls behind stops refreshing the time.
func (f *follower) recordFetch(fetchOffset, leaderLEO int64, now time.Time) {
	switch {
	case fetchOffset >= leaderLEO:
		f.lastCaughtUp = later(f.lastCaughtUp, now)
	case fetchOffset >= f.lastFetchLeaderLEO:
		f.lastCaughtUp = later(f.lastCaughtUp, f.lastFetchTime)
	}
	f.leo = fetchOffset
	f.lastFetchLeaderLEO = max(leaderLEO, f.lastFetchLeaderLEO)
	f.lastFetchTime = now
}

// resetForNewEpoch is Kafka's resetReplicaState for a leader re-elected at a new epoch: the log end offset is
// kept, an ISR member counts as caught up now, and a non-member must fetch again before it can rejoin.
func (f *follower) resetForNewEpoch(leaderLEO int64, inISR bool, now time.Time) {
	f.lastFetchLeaderLEO = leaderLEO
	if inISR {
		f.lastCaughtUp, f.lastFetchTime = now, now
	} else {
		f.lastCaughtUp, f.lastFetchTime = time.Time{}, time.Time{}
	}
}

// caughtUp is Kafka's isCaughtUp: at the leader's end, or caught up within replica.lag.time.max.ms.
func (l *Leader) caughtUp(f *follower, now time.Time) bool {
	if f.leo == l.leo {
		return true
	}
	return !f.lastCaughtUp.IsZero() && now.Sub(f.lastCaughtUp) <= l.cfg.ReplicaLagTimeMax
}

// maybeAdvanceHW is Kafka's maybeIncrementLeaderHW: the high watermark moves up to the smallest log end offset
// among the leader, the maximal ISR, and followers outside it that are caught up and eligible (so a follower
// about to join is not left chasing a moving high watermark). It never moves down, and does not move at all
// while the committed ISR is below min.insync.replicas (KIP-966), so writes taken with acks=1 in that state
// stay invisible until enough replicas hold them.
func (l *Leader) maybeAdvanceHW(now time.Time) bool {
	if len(l.isr) < l.effectiveMinISR() {
		return false
	}
	next := l.leo
	for _, id := range l.replicas {
		f, ok := l.followers[id]
		if !ok || f.leo >= next {
			continue
		}
		if l.inMaximalISR(id) || (l.caughtUp(f, now) && !l.ineligible[id]) {
			next = f.leo
		}
	}
	if next > l.hw {
		l.hw = next
		return true
	}
	return false
}

// effectiveMinISR is min.insync.replicas capped at the replication factor, as Kafka's effectiveMinIsr.
func (l *Leader) effectiveMinISR() int { return min(l.cfg.MinInsyncReplicas, len(l.replicas)) }

func (l *Leader) inISR(id int32) bool { return slices.Contains(l.isr, id) }

func (l *Leader) inMaximalISR(id int32) bool {
	if l.pending != nil && l.pending.Kind == Expand {
		return slices.Contains(l.pending.ISR, id)
	}
	return l.inISR(id)
}

func (l *Leader) maximalISRSize() int {
	if l.pending != nil && l.pending.Kind == Expand {
		return len(l.pending.ISR)
	}
	return len(l.isr)
}

// propose records an AlterPartition as in flight and returns a copy for the caller to send.
func (l *Leader) propose(kind ProposalKind, isr, changed []int32) *Proposal {
	l.nextSeq++
	l.pending = &Proposal{Seq: l.nextSeq, Kind: kind, LeaderEpoch: l.leaderEpoch, PartitionEpoch: l.partitionEpoch,
		ISR: isr, Changed: sortedCopy(changed)}
	return l.pending.clone()
}

func (l *Leader) result(advanced bool) Result {
	return Result{HighWatermark: l.hw, HWAdvanced: advanced}
}

func (p *Proposal) clone() *Proposal {
	c := *p
	c.ISR = slices.Clone(p.ISR)
	c.Changed = slices.Clone(p.Changed)
	return &c
}

// validateAssignment checks what a leader relies on: it leads, is assigned, and the ISR is a set of assigned
// replicas that includes it.
func validateAssignment(self int32, a Assignment) error {
	if a.Leader != self {
		return fmt.Errorf("assignment names leader %d, not this broker %d: %w", a.Leader, self, ErrNotLeader)
	}
	if a.LeaderEpoch < 0 || a.PartitionEpoch < 0 {
		return fmt.Errorf("assignment has negative epochs (leader %d, partition %d)", a.LeaderEpoch, a.PartitionEpoch)
	}
	if !slices.Contains(a.Replicas, self) {
		return fmt.Errorf("assignment replicas %v do not include the leader %d", a.Replicas, self)
	}
	if hasDuplicates(a.Replicas) || hasDuplicates(a.ISR) {
		return fmt.Errorf("assignment lists a replica twice (replicas %v, ISR %v)", a.Replicas, a.ISR)
	}
	if !slices.Contains(a.ISR, self) {
		return fmt.Errorf("assignment ISR %v does not include the leader %d", a.ISR, self)
	}
	for _, id := range a.ISR {
		if !slices.Contains(a.Replicas, id) {
			return fmt.Errorf("assignment ISR member %d is not among the replicas %v", id, a.Replicas)
		}
	}
	return nil
}

func hasDuplicates(ids []int32) bool {
	s := sortedCopy(ids)
	for i := 1; i < len(s); i++ {
		if s[i] == s[i-1] {
			return true
		}
	}
	return false
}

func sortedCopy(ids []int32) []int32 {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}

func insertSorted(ids []int32, id int32) []int32 {
	return sortedCopy(append(slices.Clone(ids), id))
}

// later returns the later of two times; the zero time (never) loses to any other.
func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
