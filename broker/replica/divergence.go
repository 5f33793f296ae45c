package replica

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// LogView is what the divergence logic needs to know of one replica's log: its epoch cache and its offsets.
type LogView struct {
	Epochs      Epochs
	StartOffset int64 // log start offset (first offset still held)
	EndOffset   int64 // log end offset (next offset to be written)
}

// EpochEndOffset is a leader's statement about one epoch: the largest epoch it has that is <= the one asked
// about, and where that epoch ends in its log. It is Fetch v12+'s DivergingEpoch and the answer of an
// OffsetForLeaderEpoch request.
type EpochEndOffset struct {
	Epoch     int32
	EndOffset int64
}

// FetchOutcome is the leader's verdict on a follower's fetch position.
type FetchOutcome int

const (
	// FetchOK: read from the fetch offset and then record the follower's position (Leader.OnFollowerFetch).
	FetchOK FetchOutcome = iota
	// FetchDiverging: answer with FetchCheck.Diverging as DivergingEpoch, no records, and do NOT record the
	// follower's position (Kafka skips the fetch-state update when the logs diverge).
	FetchDiverging
	// FetchOutOfRange: answer OFFSET_OUT_OF_RANGE.
	FetchOutOfRange
)

// FetchCheck is the result of CheckFetch.
type FetchCheck struct {
	Outcome   FetchOutcome
	Diverging EpochEndOffset // set when Outcome is FetchDiverging
}

// CheckFetch is the leader-side check of a follower's Fetch (v12+), as Kafka's Partition.readRecords: when the
// request names a LastFetchedEpoch (>= 0), the leader looks up where its own copy of that epoch ends; if it has
// only an older epoch, or that epoch ends before the fetch offset, the follower's log diverged and the answer
// is DivergingEpoch{epoch, endOffset}. A fetch offset outside [StartOffset, EndOffset] is out of range, as is a
// last fetched epoch the leader cannot place at all. lastFetchedEpoch < 0 (older fetch versions, or a follower
// with an empty log) skips the divergence check.
func CheckFetch(leader LogView, fetchOffset int64, lastFetchedEpoch int32) FetchCheck {
	if lastFetchedEpoch >= 0 {
		epoch, end := leader.Epochs.EndOffsetFor(lastFetchedEpoch, leader.EndOffset)
		if epoch == UndefinedEpoch || end == UndefinedOffset {
			return FetchCheck{Outcome: FetchOutOfRange}
		}
		// Below the log start the divergence cannot be judged: the follower must reset (Kafka checks this first).
		if fetchOffset < leader.StartOffset {
			return FetchCheck{Outcome: FetchOutOfRange}
		}
		if epoch < lastFetchedEpoch || end < fetchOffset {
			return FetchCheck{Outcome: FetchDiverging, Diverging: EpochEndOffset{Epoch: epoch, EndOffset: end}}
		}
	}
	if fetchOffset < leader.StartOffset || fetchOffset > leader.EndOffset {
		return FetchCheck{Outcome: FetchOutOfRange}
	}
	return FetchCheck{Outcome: FetchOK}
}

// EndOffsetForLeaderEpoch answers an OffsetForLeaderEpoch request (the truncation protocol of followers on
// Fetch < v12) from the leader's log: Kafka's endOffsetFor on the leader's cache.
func EndOffsetForLeaderEpoch(leader LogView, requested int32) EpochEndOffset {
	epoch, end := leader.Epochs.EndOffsetFor(requested, leader.EndOffset)
	return EpochEndOffset{Epoch: epoch, EndOffset: end}
}

// Truncation is where a follower must cut its log after a DivergingEpoch (or an OffsetForLeaderEpoch answer).
type Truncation struct {
	// Offset to truncate to (Log.TruncateTo); never above the follower's log end offset.
	Offset int64
	// Complete is false when the follower did not know the leader's epoch: it cut back to its own copy of an
	// older epoch and must ask again (the next Fetch carries the new LastFetchedEpoch and the leader answers
	// again, until they agree).
	Complete bool
}

// TruncationFor is the follower side of leader-epoch truncation, as Kafka's getOffsetTruncationState. It looks up
// its own copy of the leader's epoch: when it has that epoch it cuts to where the shorter of the two copies ends,
// which removes exactly the divergent suffix and nothing the leader has; when it only has an older epoch it cuts
// to the end of that older epoch and tries again. The follower's high watermark plays no part: truncating to it
// would drop records the leader still has and, after a second failure, lose acknowledged writes (KIP-101).
func TruncationFor(own LogView, leader EpochEndOffset) Truncation {
	switch {
	case leader.EndOffset == UndefinedOffset:
		// The leader could not place the epoch at all. A v12 leader answers OFFSET_OUT_OF_RANGE instead; for the
		// OffsetForLeaderEpoch path Kafka resumes at the current fetch offset, which for a follower that
		// truncates on fetch is its log end: keep the log and let the fetch decide.
		return Truncation{Offset: own.EndOffset, Complete: true}
	case leader.Epoch == UndefinedEpoch:
		return Truncation{Offset: min(leader.EndOffset, own.EndOffset), Complete: true}
	}
	epoch, end := own.Epochs.EndOffsetFor(leader.Epoch, own.EndOffset)
	switch {
	case end == UndefinedOffset:
		// We track no epoch at or below the leader's: the leader's end offset is the only bound we have.
		return Truncation{Offset: min(leader.EndOffset, own.EndOffset), Complete: true}
	case epoch != leader.Epoch:
		return Truncation{Offset: min(end, own.EndOffset), Complete: false}
	default:
		return Truncation{Offset: min(end, leader.EndOffset, own.EndOffset), Complete: true}
	}
}

// OutOfRangeAction is what a follower does after OFFSET_OUT_OF_RANGE, having asked the leader for its log start
// and end offsets (ListOffsets earliest and latest).
type OutOfRangeAction struct {
	// TruncateTo >= 0: truncate the log to this offset (the leader's log is shorter than ours).
	TruncateTo int64
	// StartAt >= 0: delete the whole log and restart it empty at this offset (we are below the leader's start).
	StartAt int64
	// FetchOffset is where to fetch next.
	FetchOffset int64
}

// HandleOutOfRange is Kafka's fetchOffsetAndTruncate. Kafka keeps this path for a leader that cannot place the
// follower's last fetched epoch; with epochs tracked from the first record it is reached only when the leader's
// log is shorter than the follower's or starts after it ends.
func HandleOutOfRange(ownEnd, leaderStart, leaderEnd int64) OutOfRangeAction {
	if leaderEnd < ownEnd {
		return OutOfRangeAction{TruncateTo: leaderEnd, StartAt: -1, FetchOffset: leaderEnd}
	}
	if leaderStart > ownEnd {
		return OutOfRangeAction{TruncateTo: -1, StartAt: leaderStart, FetchOffset: leaderStart}
	}
	return OutOfRangeAction{TruncateTo: -1, StartAt: -1, FetchOffset: ownEnd}
}

// FollowerHighWatermark is the follower's high watermark after a fetch response: the leader's, bounded by what
// the follower holds. Unlike the leader's it may move backwards (a new leader's high watermark can lag).
func FollowerHighWatermark(leaderHW int64, own LogView) int64 {
	return max(own.StartOffset, min(leaderHW, own.EndOffset))
}

// CheckLeaderEpoch validates the CurrentLeaderEpoch of a Fetch, ListOffsets or OffsetForLeaderEpoch request
// against the local leader epoch: FENCED_LEADER_EPOCH when the requester is behind, UNKNOWN_LEADER_EPOCH when it
// is ahead (we have not seen the new epoch yet), nil when they match or the request names none (-1).
func CheckLeaderEpoch(local, requested int32) error {
	switch {
	case requested < 0 || requested == local:
		return nil
	case requested < local:
		return fmt.Errorf("request leader epoch %d is older than the local %d: %w", requested, local, kerr.FencedLeaderEpoch)
	default:
		return fmt.Errorf("request leader epoch %d is newer than the local %d: %w", requested, local, kerr.UnknownLeaderEpoch)
	}
}
