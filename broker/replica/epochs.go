package replica

import (
	"fmt"
	"slices"
	"strings"
)

// UndefinedEpoch and UndefinedOffset are Kafka's "unknown" answers of an epoch lookup
// (OffsetsForLeaderEpochResponse.UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET), and the "absent" value of a
// Fetch's LastFetchedEpoch.
const (
	UndefinedEpoch  int32 = -1
	UndefinedOffset int64 = -1
)

// EpochEntry is one entry of a leader-epoch cache: StartOffset is the first offset written in Epoch.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// Epochs is a leader-epoch cache as a value: entries in increasing epoch and start offset order. The methods
// that change it return a new slice and never modify the receiver, so a caller may keep an old one.
//
// It models Kafka's LeaderEpochFileCache semantics (assign, truncateFromEnd, endOffsetFor); persistence is the
// storage layer's business.
type Epochs []EpochEntry

// Latest returns the entry with the highest epoch, or false when the cache is empty.
func (e Epochs) Latest() (EpochEntry, bool) {
	if len(e) == 0 {
		return EpochEntry{}, false
	}
	return e[len(e)-1], true
}

// LatestEpoch is the epoch a follower sends as a Fetch's LastFetchedEpoch: the latest cached epoch, or
// UndefinedEpoch for an empty cache (which tells the leader to skip the divergence check).
func (e Epochs) LatestEpoch() int32 {
	if l, ok := e.Latest(); ok {
		return l.Epoch
	}
	return UndefinedEpoch
}

// EndOffsetFor answers "where does my copy of epoch `requested` end?" exactly as Kafka's endOffsetFor: it returns
// the largest cached epoch <= requested and the start offset of the next higher cached epoch, or logEndOffset
// when requested is the latest epoch. A requested epoch below every cached one answers (requested, start of the
// first entry); an unknown answer (requested undefined, or above every cached epoch) is
// (UndefinedEpoch, UndefinedOffset).
func (e Epochs) EndOffsetFor(requested int32, logEndOffset int64) (epoch int32, endOffset int64) {
	if requested == UndefinedEpoch || len(e) == 0 {
		return UndefinedEpoch, UndefinedOffset
	}
	if e[len(e)-1].Epoch == requested {
		// The latest epoch is still being written to: it ends where the log does.
		return requested, logEndOffset
	}
	// higher is the index of the first entry with an epoch above requested (caches hold a handful of entries).
	higher := 0
	for higher < len(e) && e[higher].Epoch <= requested {
		higher++
	}
	if higher == len(e) {
		return UndefinedEpoch, UndefinedOffset
	}
	if higher == 0 {
		// Older epochs were removed with the log's head; the follower must start no later than what we hold.
		return requested, e[0].StartOffset
	}
	return e[higher-1].Epoch, e[higher].StartOffset
}

// Assign records that epoch starts at startOffset, as Kafka's assign: nothing changes when epoch is already the
// latest at an offset no higher than startOffset; otherwise every entry that would break monotonicity (an epoch
// >= epoch or a start >= startOffset) is dropped from the end and the new entry appended.
func (e Epochs) Assign(epoch int32, startOffset int64) Epochs {
	if l, ok := e.Latest(); ok && l.Epoch == epoch && startOffset >= l.StartOffset {
		return e
	}
	keep := len(e)
	for keep > 0 && (e[keep-1].Epoch >= epoch || e[keep-1].StartOffset >= startOffset) {
		keep--
	}
	out := make(Epochs, keep, keep+1)
	copy(out, e[:keep])
	return append(out, EpochEntry{Epoch: epoch, StartOffset: startOffset})
}

// TruncateFromEnd drops every entry whose start offset is >= offset: the epochs that began in the cut suffix.
// A log truncation must call it with min(offset, logEndOffset) even when no record is cut, to drop an epoch a
// former leader assigned but never wrote to (Kafka's UnifiedLog.truncateTo does the same).
func (e Epochs) TruncateFromEnd(offset int64) Epochs {
	keep := len(e)
	for keep > 0 && e[keep-1].StartOffset >= offset {
		keep--
	}
	return slices.Clone(e[:keep])
}

// Validate reports whether the entries are strictly increasing in epoch and non-decreasing in start offset
// with no negative values.
func (e Epochs) Validate() error {
	for i, x := range e {
		if x.Epoch < 0 || x.StartOffset < 0 {
			return fmt.Errorf("epoch entry %d (%s) is negative", i, x)
		}
		if i > 0 && (x.Epoch <= e[i-1].Epoch || x.StartOffset < e[i-1].StartOffset) {
			return fmt.Errorf("epoch entry %d (%s) does not follow %s", i, x, e[i-1])
		}
	}
	return nil
}

// String renders an entry as epoch@startOffset.
func (x EpochEntry) String() string { return fmt.Sprintf("%d@%d", x.Epoch, x.StartOffset) }

// String renders the cache as [epoch@start ...].
func (e Epochs) String() string {
	parts := make([]string, len(e))
	for i, x := range e {
		parts[i] = x.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}
