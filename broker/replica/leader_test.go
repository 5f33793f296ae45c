package replica

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func testConfig() Config {
	return Config{Self: 1, ReplicaLagTimeMax: 10 * time.Second, MinInsyncReplicas: 1}
}

func mustLeader(t testing.TB, replicas, isr []int32, leo, hw int64) *Leader {
	t.Helper()
	l, err := NewLeader(testConfig(), Assignment{Leader: 1, LeaderEpoch: 1, Replicas: replicas, ISR: isr}, leo, leo, hw, t0)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNewLeaderRejectsBadConfig(t *testing.T) {
	a := Assignment{Leader: 1, LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}}
	for _, cfg := range []Config{
		{Self: -1, ReplicaLagTimeMax: time.Second, MinInsyncReplicas: 1},
		{Self: 1, ReplicaLagTimeMax: 0, MinInsyncReplicas: 1},
		{Self: 1, ReplicaLagTimeMax: time.Second, MinInsyncReplicas: 0},
	} {
		if _, err := NewLeader(cfg, a, 0, 0, 0, t0); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	for _, bad := range []Assignment{
		{Leader: 2, LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}},
		{Leader: 1, LeaderEpoch: -1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}},
		{Leader: 1, LeaderEpoch: 1, Replicas: []int32{1, 2, 2}, ISR: []int32{1, 2}},
		{Leader: 1, LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 1}},
	} {
		if _, err := NewLeader(testConfig(), bad, 0, 0, 0, t0); err == nil {
			t.Errorf("assignment %+v accepted", bad)
		}
	}
	if _, err := NewLeader(testConfig(), a, 0, 0, 0, t0); err != nil {
		t.Fatal(err)
	}
}

func TestLeaderRejectsImpossibleInputs(t *testing.T) {
	l := mustLeader(t, []int32{1, 2, 3}, []int32{1, 2, 3}, 10, 0)
	if _, err := l.OnAppend(9, t0); err == nil || l.LogEndOffset() != 10 {
		t.Fatalf("append going back: err %v, leo %d", err, l.LogEndOffset())
	}
	if _, err := l.OnFollowerFetch(2, 11, t0); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("fetch beyond the log end: %v", err)
	}
	if _, err := l.OnFollowerFetch(9, 5, t0); !errors.Is(err, kerr.UnknownLeaderEpoch) {
		t.Fatalf("fetch from a non-replica: %v", err)
	}
	if _, err := l.OnFollowerFetch(1, 5, t0); !errors.Is(err, kerr.UnknownLeaderEpoch) {
		t.Fatalf("fetch from the leader itself: %v", err)
	}
	if _, err := l.SetMinInsyncReplicas(0, t0); err == nil {
		t.Fatal("min.insync.replicas 0 accepted")
	}
	a := Assignment{Leader: 1, LeaderEpoch: 2, PartitionEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1}}
	if _, err := l.OnPartitionChange(a, 5, t0); err == nil || l.LeaderEpoch() != 1 {
		t.Fatalf("partition change with a shorter log: err %v, epoch %d", err, l.LeaderEpoch())
	}
	a.Leader = 3
	if _, err := l.OnPartitionChange(a, 10, t0); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("partition change to another leader: %v", err)
	}
}

func TestLeaderAccessorsReturnCopies(t *testing.T) {
	l := mustLeader(t, []int32{1, 2, 3}, []int32{1}, 10, 10)
	res, err := l.OnFollowerFetch(2, 10, t0)
	if err != nil || res.Propose == nil {
		t.Fatalf("expected an expansion: %+v %v", res, err)
	}
	res.Propose.ISR[0] = 99
	l.ISR()[0] = 99
	l.MaximalISR()[0] = 99
	l.Replicas()[0] = 99
	l.Pending().ISR[0] = 99
	if !slices.Equal(l.ISR(), []int32{1}) || !slices.Equal(l.MaximalISR(), []int32{1, 2}) ||
		!slices.Equal(l.Replicas(), []int32{1, 2, 3}) || !slices.Equal(l.Pending().ISR, []int32{1, 2}) {
		t.Fatalf("caller mutation leaked into the leader: isr %v maximal %v replicas %v pending %v",
			l.ISR(), l.MaximalISR(), l.Replicas(), l.Pending())
	}
}

func TestAssignmentOf(t *testing.T) {
	p := meta.Partition{Partition: 3, Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 7, PartitionEpoch: 9}
	a := AssignmentOf(p)
	if a.Leader != 2 || a.LeaderEpoch != 7 || a.PartitionEpoch != 9 || !slices.Equal(a.Replicas, p.Replicas) || !slices.Equal(a.ISR, p.ISR) {
		t.Fatalf("AssignmentOf = %+v", a)
	}
	a.ISR[0] = 5
	if p.ISR[0] != 2 {
		t.Fatal("AssignmentOf shares the ISR slice")
	}
}

// TestLeaderRandomInvariants drives a leader with random appends, follower fetches (each follower's log only
// grows, as without crashes), ticks and controller answers, and checks after every step what replication
// safety rests on: the HW never moves back or past the leader's log, every replica of the maximal ISR holds
// everything below the HW (so an acks=all answer is never premature), at most one AlterPartition is in flight,
// and a replica is proposed for the ISR only once it holds the HW.
func TestLeaderRandomInvariants(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		cfg := Config{Self: 1, ReplicaLagTimeMax: 10 * time.Second, MinInsyncReplicas: 1 + rng.IntN(3)}
		isr := []int32{1}
		for _, id := range []int32{2, 3} {
			if rng.IntN(2) == 0 {
				isr = append(isr, id)
			}
		}
		l, err := NewLeader(cfg, Assignment{Leader: 1, LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: isr}, 0, 0, 0, t0)
		if err != nil {
			t.Fatal(err)
		}
		now, leo, pe := t0, int64(0), int32(0)
		flog := map[int32]int64{2: -1, 3: -1}
		prevHW := l.HighWatermark()
		for step := range 300 {
			now = now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
			pendingBefore := l.Pending()
			var res Result
			switch rng.IntN(6) {
			case 0:
				leo += 1 + rng.Int64N(5)
				res, err = l.OnAppend(leo, now)
			case 1, 2:
				id := int32(2 + rng.IntN(2))
				from := max(flog[id], 0)
				flog[id] = from + rng.Int64N(leo-from+1)
				res, err = l.OnFollowerFetch(id, flog[id], now)
			case 3:
				res = l.Tick(now)
			case 4, 5:
				if pendingBefore == nil {
					continue
				}
				var r AlterResult
				switch rng.IntN(3) {
				case 0:
					pe++
					r = AlterResult{LeaderEpoch: 1, PartitionEpoch: pe, ISR: pendingBefore.ISR}
				case 1:
					r.ErrorCode = kerr.OperationNotAttempted.Code
				case 2:
					r.ErrorCode = kerr.RequestTimedOut.Code
				}
				res, _ = l.OnAlterPartitionResult(pendingBefore.Seq, r, now)
			}
			if err != nil {
				t.Fatalf("seed %d step %d: %v", seed, step, err)
			}
			hw := l.HighWatermark()
			if hw < prevHW || hw > leo || res.HighWatermark != hw || res.HWAdvanced != (hw > prevHW) {
				t.Fatalf("seed %d step %d: HW %d after %d (leo %d, result %+v)", seed, step, hw, prevHW, leo, res)
			}
			prevHW = hw
			for _, m := range l.MaximalISR() {
				if m != 1 && hw > max(flog[m], 0) {
					t.Fatalf("seed %d step %d: HW %d passed maximal ISR member %d at %d", seed, step, hw, m, flog[m])
				}
			}
			if done, _ := l.AckedAll(hw); !done {
				t.Fatalf("seed %d step %d: acks=all up to the HW %d not acknowledged", seed, step, hw)
			}
			if done, _ := l.AckedAll(hw + 1); done {
				t.Fatalf("seed %d step %d: acks=all beyond the HW %d acknowledged", seed, step, hw)
			}
			if p := res.Propose; p != nil {
				if pendingBefore != nil && p.Seq != pendingBefore.Seq {
					t.Fatalf("seed %d step %d: proposal #%d while #%d in flight", seed, step, p.Seq, pendingBefore.Seq)
				}
				if p.Kind == Expand && flog[p.Changed[0]] < hw {
					t.Fatalf("seed %d step %d: proposed %d at %d below the HW %d", seed, step, p.Changed[0], flog[p.Changed[0]], hw)
				}
			}
			if !slices.Contains(l.ISR(), 1) {
				t.Fatalf("seed %d step %d: ISR %v lost the leader", seed, step, l.ISR())
			}
			if l.CanAcceptAcksAll() != (len(l.ISR()) >= min(cfg.MinInsyncReplicas, 3)) {
				t.Fatalf("seed %d step %d: CanAcceptAcksAll %v with ISR %v and min %d", seed, step, l.CanAcceptAcksAll(), l.ISR(), cfg.MinInsyncReplicas)
			}
		}
	}
}

// BenchmarkFollowerFetch measures the per-fetch cost on the leader's hot path: an append and both followers
// fetching the new end (HW advancing each time), with no ISR change.
func BenchmarkFollowerFetch(b *testing.B) {
	l := mustLeader(b, []int32{1, 2, 3}, []int32{1, 2, 3}, 0, 0)
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		leo := int64(i + 1)
		now = now.Add(time.Millisecond)
		if _, err := l.OnAppend(leo, now); err != nil {
			b.Fatal(err)
		}
		if _, err := l.OnFollowerFetch(2, leo, now); err != nil {
			b.Fatal(err)
		}
		if _, err := l.OnFollowerFetch(3, leo, now); err != nil {
			b.Fatal(err)
		}
	}
}
