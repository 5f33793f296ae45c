package replica

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestEpochsAssign(t *testing.T) {
	tests := []struct {
		name  string
		in    Epochs
		epoch int32
		start int64
		want  Epochs
	}{
		{"first entry", nil, 1, 0, Epochs{{1, 0}}},
		{"same epoch later offset is a no-op", Epochs{{1, 0}}, 1, 5, Epochs{{1, 0}}},
		{"new epoch appends", Epochs{{1, 0}}, 3, 5, Epochs{{1, 0}, {3, 5}}},
		{"same epoch earlier offset replaces", Epochs{{1, 0}, {3, 5}}, 3, 4, Epochs{{1, 0}, {3, 4}}},
		{"lower epoch drops the higher ones", Epochs{{1, 0}, {3, 5}, {4, 8}}, 2, 9, Epochs{{1, 0}, {2, 9}}},
		{"higher epoch at a lower offset drops entries starting after it", Epochs{{1, 0}, {3, 5}}, 4, 3, Epochs{{1, 0}, {4, 3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.in)
			got := tc.in.Assign(tc.epoch, tc.start)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Assign(%d, %d) on %s = %s, want %s", tc.epoch, tc.start, tc.in, got, tc.want)
			}
			if !slices.Equal(tc.in, before) {
				t.Fatalf("Assign modified its receiver: %s, was %s", tc.in, before)
			}
			if err := got.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestEpochsTruncateFromEnd(t *testing.T) {
	e := Epochs{{1, 0}, {2, 5}, {4, 9}}
	for _, tc := range []struct {
		off  int64
		want Epochs
	}{
		{12, e}, {9, Epochs{{1, 0}, {2, 5}}}, {6, Epochs{{1, 0}, {2, 5}}}, {5, Epochs{{1, 0}}}, {0, Epochs{}},
	} {
		if got := e.TruncateFromEnd(tc.off); !slices.Equal(got, tc.want) {
			t.Errorf("TruncateFromEnd(%d) = %s, want %s", tc.off, got, tc.want)
		}
	}
}

func TestEpochsEndOffsetFor(t *testing.T) {
	e := Epochs{{1, 3}, {2, 5}, {5, 9}}
	for _, tc := range []struct {
		req       int32
		wantEpoch int32
		wantEnd   int64
	}{
		{5, 5, 20}, // latest: ends at the log end
		{2, 2, 9},  // known: ends where the next begins
		{3, 2, 9},  // unknown between: the floor epoch
		{4, 2, 9},
		{0, 0, 3},                             // below the first: the first start
		{6, UndefinedEpoch, UndefinedOffset},  // above every epoch
		{-1, UndefinedEpoch, UndefinedOffset}, // undefined
		{1 << 30, UndefinedEpoch, UndefinedOffset},
	} {
		ep, end := e.EndOffsetFor(tc.req, 20)
		if ep != tc.wantEpoch || end != tc.wantEnd {
			t.Errorf("EndOffsetFor(%d) = (%d, %d), want (%d, %d)", tc.req, ep, end, tc.wantEpoch, tc.wantEnd)
		}
	}
	if ep, end := (Epochs{}).EndOffsetFor(0, 0); ep != UndefinedEpoch || end != UndefinedOffset {
		t.Errorf("empty cache answered (%d, %d)", ep, end)
	}
}

func TestEpochsValidate(t *testing.T) {
	for _, bad := range []Epochs{{{2, 0}, {1, 5}}, {{1, 5}, {2, 3}}, {{1, 0}, {1, 5}}, {{-1, 0}}} {
		if bad.Validate() == nil {
			t.Errorf("%s validated", bad)
		}
	}
	if err := (Epochs{{0, 0}, {1, 0}, {3, 7}}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestTruncationFor(t *testing.T) {
	own := LogView{Epochs: Epochs{{1, 0}, {2, 5}, {4, 9}}, EndOffset: 12}
	tests := []struct {
		name   string
		leader EpochEndOffset
		want   Truncation
	}{
		{"agreed epoch, leader shorter", EpochEndOffset{2, 7}, Truncation{7, true}},
		{"agreed epoch, follower shorter", EpochEndOffset{2, 11}, Truncation{9, true}},
		{"latest epoch, leader shorter", EpochEndOffset{4, 10}, Truncation{10, true}},
		{"never above own log end", EpochEndOffset{4, 30}, Truncation{12, true}},
		{"unknown epoch: back to own older epoch, again", EpochEndOffset{3, 11}, Truncation{9, false}},
		{"below every own epoch", EpochEndOffset{0, 2}, Truncation{0, true}},
		{"undefined epoch (v0 answer)", EpochEndOffset{UndefinedEpoch, 6}, Truncation{6, true}},
		{"undefined offset keeps the log", EpochEndOffset{UndefinedEpoch, UndefinedOffset}, Truncation{12, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := TruncationFor(own, tc.leader); got != tc.want {
				t.Fatalf("TruncationFor(%+v) = %+v, want %+v", tc.leader, got, tc.want)
			}
		})
	}
	empty := LogView{EndOffset: 0}
	if got := TruncationFor(empty, EpochEndOffset{3, 8}); got != (Truncation{0, true}) {
		t.Fatalf("empty follower: %+v", got)
	}
}

func TestCheckFetchLogStart(t *testing.T) {
	leader := LogView{Epochs: Epochs{{1, 0}, {3, 10}}, StartOffset: 5, EndOffset: 15}
	for _, tc := range []struct {
		off   int64
		epoch int32
		want  FetchOutcome
	}{
		{4, 1, FetchOutOfRange}, // below the log start even though divergent
		{4, -1, FetchOutOfRange},
		{5, -1, FetchOK},
		{15, 3, FetchOK},
		{16, 3, FetchDiverging}, // the follower claims more of epoch 3 than the leader has
		{16, -1, FetchOutOfRange},
		{12, 2, FetchDiverging}, // epoch 2 unknown to the leader: its floor is 1, ending at 10
	} {
		if got := CheckFetch(leader, tc.off, tc.epoch); got.Outcome != tc.want {
			t.Errorf("CheckFetch(offset %d, epoch %d) = %s, want outcome %d", tc.off, tc.epoch, fetchCheckString(got), tc.want)
		}
	}
}

func TestCheckLeaderEpoch(t *testing.T) {
	if err := CheckLeaderEpoch(5, 5); err != nil {
		t.Error(err)
	}
	if err := CheckLeaderEpoch(5, -1); err != nil {
		t.Error(err)
	}
	if err := CheckLeaderEpoch(5, 4); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Errorf("older epoch: %v", err)
	}
	if err := CheckLeaderEpoch(5, 6); !errors.Is(err, kerr.UnknownLeaderEpoch) {
		t.Errorf("newer epoch: %v", err)
	}
}

func TestFollowerHighWatermark(t *testing.T) {
	own := LogView{StartOffset: 3, EndOffset: 10}
	for _, tc := range [][2]int64{{5, 5}, {12, 10}, {1, 3}} {
		if got := FollowerHighWatermark(tc[0], own); got != tc[1] {
			t.Errorf("FollowerHighWatermark(%d) = %d, want %d", tc[0], got, tc[1])
		}
	}
}

// TestRandomHistoriesTruncateExactly builds replica logs by random histories of appends, partial replication
// and elections of any replica (unclean ones included), and checks at every sync that the follower's lowest
// truncation is exactly the common prefix with the leader (nothing the leader has is cut, nothing divergent is
// kept), that its epoch cache matches its records, and that a final full sync leaves every log identical.
func TestRandomHistoriesTruncateExactly(t *testing.T) {
	const replicas, steps, seeds = 3, 80, 400
	for seed := uint64(1); seed <= seeds; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0x5eed))
		mode := "fetch"
		if seed%2 == 0 {
			mode = "ofle"
		}
		logs := make([]*simLog, replicas)
		for i := range logs {
			logs[i] = &simLog{}
		}
		leader, epoch := 0, int32(0)
		logs[leader].epochs = logs[leader].epochs.Assign(epoch, 0)
		for step := range steps {
			switch rng.IntN(5) {
			case 0, 1:
				for range 1 + rng.IntN(3) {
					logs[leader].appendRecord(epoch)
				}
			case 2, 3:
				f := (leader + 1 + rng.IntN(replicas-1)) % replicas
				syncFollower(t, seed, step, mode, logs[leader], logs[f], rng.IntN(6))
			case 4:
				epoch++
				leader = rng.IntN(replicas)
				logs[leader].epochs = logs[leader].epochs.Assign(epoch, logs[leader].leo())
			}
		}
		for f := range logs {
			if f == leader {
				continue
			}
			syncFollower(t, seed, steps, mode, logs[leader], logs[f], -1)
			if !slices.Equal(logs[f].recs, logs[leader].recs) {
				t.Fatalf("seed %d: replica %d %s differs from leader %s after a full sync", seed, f, logs[f], logs[leader])
			}
		}
	}
}

// syncFollower runs the truncation protocol and then copies up to n records (all if n < 0).
func syncFollower(t *testing.T, seed uint64, step int, mode string, ld, fl *simLog, n int) {
	t.Helper()
	before := fl.String()
	common := commonPrefix(ld.recs, fl.recs)
	lowest := fl.leo()
	for range maxTruncationRounds {
		var tr Truncation
		if mode == "fetch" {
			chk := CheckFetch(ld.view(), fl.leo(), fl.epochs.LatestEpoch())
			if chk.Outcome == FetchOutOfRange {
				t.Fatalf("seed %d step %d: out of range fetching %s from %s", seed, step, before, ld)
			}
			if chk.Outcome == FetchOK {
				break
			}
			tr = TruncationFor(fl.view(), chk.Diverging)
		} else {
			req := fl.epochs.LatestEpoch()
			if req == UndefinedEpoch {
				break
			}
			tr = TruncationFor(fl.view(), EndOffsetForLeaderEpoch(ld.view(), req))
		}
		fl.truncateTo(tr.Offset)
		lowest = min(lowest, tr.Offset)
		if mode == "ofle" && tr.Complete {
			break
		}
	}
	if lowest != common {
		t.Fatalf("seed %d step %d (%s): follower %s truncated to %d against leader %s, common prefix %d",
			seed, step, mode, before, lowest, ld, common)
	}
	if !slices.Equal(fl.recs, ld.recs[:fl.leo()]) {
		t.Fatalf("seed %d step %d: after truncation %s is not a prefix of %s", seed, step, fl, ld)
	}
	for off := fl.leo(); off < ld.leo() && (n < 0 || n > 0); off++ {
		fl.appendRecord(ld.recs[off])
		n--
	}
	// An epoch a former leader assigned at its log end and never wrote may remain when the leader's copy of that
	// position agrees (the leader has no epoch there either); the next append or truncation at that offset
	// replaces it. Anything else in the cache must be implied by the records.
	got := fl.epochs
	if l, ok := got.Latest(); ok && l.StartOffset == fl.leo() {
		got = got[:len(got)-1]
	}
	if want := derivedEpochs(fl.recs); !slices.Equal(got, want) {
		t.Fatalf("seed %d step %d: follower cache %s, its records imply %s", seed, step, fl.epochs, want)
	}
}

func derivedEpochs(recs []int32) Epochs {
	var e Epochs
	for off, ep := range recs {
		e = e.Assign(ep, int64(off))
	}
	return e
}
