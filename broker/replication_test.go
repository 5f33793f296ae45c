package broker

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Every acknowledged acks=all write survives repeated leader kills under a running idempotent producer, with
// nothing duplicated, and after healing every replica holds the same bytes.
func TestReplicationLeaderKillsKeepAckedWrites(t *testing.T) {
	rc := startRepCluster(t, nil)
	rc.createTopic("r", map[string]string{"min.insync.replicas": "2"})
	cl := rc.client(kgo.DefaultProduceTopic("r"), kgo.RecordPartitioner(kgo.ManualPartitioner()))

	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	done := make(chan struct{})
	ctx := testCtx(t)
	go func() {
		defer close(done)
		// Up to 200 records in flight, so a kill always finds acknowledged records at risk on the leader.
		inflight := make(chan struct{}, 200)
		var wg sync.WaitGroup
		defer wg.Wait()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case inflight <- struct{}{}:
			}
			wg.Add(1)
			r := &kgo.Record{Topic: "r", Partition: 0, Value: fmt.Appendf(nil, "v-%d", i)}
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer wg.Done()
				defer func() { <-inflight }()
				if err != nil {
					t.Errorf("produce %s: %v", r.Value, err)
					return
				}
				mu.Lock()
				acked = append(acked, string(r.Value))
				mu.Unlock()
			})
		}
	}()
	ackedCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for round := range 3 {
		before := ackedCount()
		repWait(t, 60*time.Second, "records acknowledged", func() error {
			if n := ackedCount(); n < before+500 {
				return fmt.Errorf("%d acknowledged", n)
			}
			return nil
		})
		victim := rc.waitLeader("r", -1)
		if err := rc.c.Kill(victim); err != nil {
			t.Fatal(err)
		}
		next := rc.waitLeader("r", victim)
		t.Logf("%v round %d: killed leader %d, node %d leads", time.Now().Format("05.000"), round, victim, next)
		if err := rc.c.Restart(victim); err != nil {
			t.Fatal(err)
		}
		t.Logf("%v restarted %d, %d acked", time.Now().Format("05.000"), victim, ackedCount())
	}
	before := ackedCount()
	repWait(t, 60*time.Second, "records acknowledged after the last restart", func() error {
		if n := ackedCount(); n < before+50 {
			return fmt.Errorf("%d acknowledged", n)
		}
		return nil
	})
	close(stop)
	<-done
	got := rc.finalRead("r")
	if lost := missing(acked, got); len(lost) > 0 {
		for _, id := range rc.c.IDs() {
			if n := rc.c.Node(id); n != nil {
				st, _ := n.PartitionState("r", 0)
				t.Logf("node %d: %+v", id, st)
			}
		}
		t.Fatalf("%d of %d acknowledged writes lost, e.g. %v (final read of %d: %v...)", len(lost), len(acked),
			lost[:min(5, len(lost))], len(got), got[:min(5, len(got))])
	}
	seen := map[string]bool{}
	for _, v := range got {
		if seen[v] {
			t.Fatalf("value %s stored twice", v)
		}
		seen[v] = true
	}
	rc.waitConverged("r")
}

// With acks=1, records only the leader took are lost when it dies while its followers lag (they stay in the
// ISR: the lag is shorter than replica.lag.time.max.ms), and the old leader truncates exactly those records
// when it rejoins: its log then equals the new leader's.
func TestAcks1LeaderOnlyWritesLostAndTruncated(t *testing.T) {
	rc := startRepCluster(t, func(tm *Timing) { tm.ReplicaLagTimeMax = time.Minute })
	rc.createTopic("a1", nil)
	all := rc.client()
	base := mustProduce(t, all, "a1", "base", 20)
	rc.waitConverged("a1")
	old := rc.waitLeader("a1", -1)
	for _, f := range rc.others(old) {
		rc.net.cutOff(old, f)
	}
	one := rc.client(kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	leaderOnly := mustProduce(t, one, "a1", "only", 30)
	// The followers are still in the ISR, so acks=all must not be acknowledged: they lack the record.
	// (Not idempotent, no retries: an idempotent producer keeps retrying a timed-out batch indefinitely.)
	strict := rc.client(kgo.DisableIdempotentWrite(), kgo.RecordRetries(0), kgo.ProduceRequestTimeout(time.Second))
	if acked, errs := produce(t, strict, "a1", "strict", 1); len(acked) != 0 || len(errs) != 1 {
		t.Fatalf("acks=all acknowledged %v (errors %v) while every follower in the ISR lacked it", acked, errs)
	}
	if st, _ := rc.c.Node(old).PartitionState("a1", 0); st.LogEndOffset != 51 || st.HighWatermark != 20 || len(st.ISR) != 3 {
		t.Fatalf("old leader before the kill: %+v, want log end 51, high watermark 20 and all 3 in the ISR", st)
	}
	if err := rc.c.Kill(old); err != nil {
		t.Fatal(err)
	}
	rc.net.heal()
	next := rc.waitLeader("a1", old)
	after := mustProduce(t, all, "a1", "after", 10)
	if err := rc.c.Restart(old); err != nil {
		t.Fatal(err)
	}
	rc.waitConverged("a1")
	got := rc.finalRead("a1")
	want := append(slices.Clone(base), after...)
	if !slices.Equal(got, want) {
		t.Fatalf("final read after failover to %d:\n got %v\nwant %v", next, got, want)
	}
	if kept := len(leaderOnly) - len(missing(leaderOnly, got)); kept != 0 {
		t.Fatalf("%d leader-only records survived the failover", kept)
	}
}

// A follower cut off from the leader leaves the ISR and rejoins once it caught up; with min.insync.replicas=2
// and only the leader in sync, acks=all writes are refused with NOT_ENOUGH_REPLICAS before they are appended.
func TestISRShrinkExpandAndNotEnoughReplicas(t *testing.T) {
	rc := startRepCluster(t, nil)
	rc.createTopic("isr", map[string]string{"min.insync.replicas": "2"})
	cl := rc.client()
	mustProduce(t, cl, "isr", "a", 10)
	l := rc.waitLeader("isr", -1)
	f := rc.others(l)
	rc.net.cutOff(l, f[0])
	// As in Kafka, a follower that stops fetching falls out of sync only once the leader has something it
	// lacks: these writes wait for the shrink, then succeed with two replicas in sync.
	mustProduce(t, cl, "isr", "b", 10)
	if isr := rc.waitISR("isr", 2); slices.Contains(isr, f[0]) {
		t.Fatalf("ISR %v still holds the cut-off follower %d", isr, f[0])
	}
	rc.net.cutOff(l, f[1])
	one := rc.client(kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	mustProduce(t, one, "isr", "c", 1)
	rc.waitISR("isr", 1)
	strict := rc.client(kgo.RecordRetries(1), kgo.RequestRetries(1), kgo.RecordDeliveryTimeout(5*time.Second))
	_, errs := produce(t, strict, "isr", "refused", 1)
	if len(errs) != 1 || !errors.Is(errs[0], kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with only the leader in sync: %v, want NOT_ENOUGH_REPLICAS", errs)
	}
	if st, _ := rc.c.Node(l).PartitionState("isr", 0); st.LogEndOffset != 21 {
		t.Fatalf("a refused write was appended: log end %d, want 21", st.LogEndOffset)
	}
	rc.net.heal()
	rc.waitISR("isr", 3)
	mustProduce(t, cl, "isr", "d", 10)
	rc.waitConverged("isr")
	if got := rc.finalRead("isr"); len(got) != 31 {
		t.Fatalf("final read holds %d records, want 31", len(got))
	}
}

// With the only in-sync replica dead, unclean.leader.election.enable=false keeps the partition offline and
// loses nothing once that replica returns; =true elects a lagging replica, and the records only the dead
// leader had are gone (the old leader truncates them when it rejoins).
func TestUncleanLeaderElection(t *testing.T) {
	for _, unclean := range []bool{false, true} {
		t.Run(fmt.Sprintf("unclean=%v", unclean), func(t *testing.T) {
			rc := startRepCluster(t, nil)
			rc.createTopic("u", map[string]string{"unclean.leader.election.enable": fmt.Sprint(unclean)})
			cl := rc.client()
			base := mustProduce(t, cl, "u", "base", 10)
			rc.waitConverged("u")
			l := rc.waitLeader("u", -1)
			for _, f := range rc.others(l) {
				rc.net.cutOff(l, f)
			}
			// acks=all with min.insync.replicas=1: acknowledged once the cut-off followers left the ISR.
			only := mustProduce(t, cl, "u", "only", 20)
			rc.waitISR("u", 1)
			if err := rc.c.Kill(l); err != nil {
				t.Fatal(err)
			}
			rc.net.heal()
			if !unclean {
				// Offline for as long as the last in-sync replica is down.
				repWait(t, 30*time.Second, "the dead leader fenced", func() error {
					if im := rc.c.Image(); !im.Brokers[l].Fenced {
						return errors.New("not fenced yet")
					}
					return nil
				})
				for range 10 {
					if got := rc.leader("u"); got != -1 {
						t.Fatalf("partition led by %d with its only in-sync replica dead and unclean elections off", got)
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err := rc.c.Restart(l); err != nil {
					t.Fatal(err)
				}
				if got := rc.waitLeader("u", -1); got != l {
					t.Fatalf("leader %d, want the returning in-sync replica %d", got, l)
				}
				rc.waitConverged("u")
				got := rc.finalRead("u")
				if lost := missing(append(slices.Clone(base), only...), got); len(lost) > 0 {
					t.Fatalf("clean election lost %d acknowledged writes: %v", len(lost), lost)
				}
				return
			}
			next := rc.waitLeader("u", l)
			if err := rc.c.Restart(l); err != nil {
				t.Fatal(err)
			}
			rc.waitConverged("u")
			got := rc.finalRead("u")
			if !slices.Equal(got, base) {
				t.Fatalf("after the unclean election of %d: got %v, want only %v", next, got, base)
			}
			if !strings.HasPrefix(only[0], "only-") {
				t.Fatal("test bug")
			}
		})
	}
}

// Killing the active controller hands the quorum to another node, and a later leader failover still elects
// and replicates.
func TestControllerFailoverThenLeaderFailover(t *testing.T) {
	rc := startRepCluster(t, nil)
	rc.createTopic("cf", map[string]string{"min.insync.replicas": "2"})
	cl := rc.client()
	first := mustProduce(t, cl, "cf", "a", 20)
	active := rc.c.ActiveController()
	if active < 0 {
		t.Fatal("no active controller")
	}
	if err := rc.c.Kill(active); err != nil {
		t.Fatal(err)
	}
	repWait(t, 60*time.Second, "a new active controller", func() error {
		if a := rc.c.ActiveController(); a < 0 || a == active {
			return fmt.Errorf("active controller %d", a)
		}
		return nil
	})
	if err := rc.c.Restart(active); err != nil {
		t.Fatal(err)
	}
	rc.waitISR("cf", 3)
	l := rc.waitLeader("cf", -1)
	if err := rc.c.Kill(l); err != nil {
		t.Fatal(err)
	}
	rc.waitLeader("cf", l)
	second := mustProduce(t, cl, "cf", "b", 20)
	if err := rc.c.Restart(l); err != nil {
		t.Fatal(err)
	}
	rc.waitConverged("cf")
	got := rc.finalRead("cf")
	if !slices.Equal(got, append(slices.Clone(first), second...)) {
		t.Fatalf("final read %v", got)
	}
}

// A new leader dedupes the retry of a batch the old leader wrote: followers rebuild idempotent producer state
// from the batches they replicate, so the retry gets the original offset and is not stored twice.
func TestNewLeaderDedupesRetryOfReplicatedBatch(t *testing.T) {
	rc := startRepCluster(t, nil)
	rc.createTopic("idem", map[string]string{"min.insync.replicas": "2"})
	old := rc.waitLeader("idem", -1)
	batch := idempotentBatch(77, 0, 0, 5)
	conn := dialRaw(t, rc.c.Bootstrap()[old-1])
	if base, code := produceResult(t, conn.roundTrip(produceReq("idem", slices.Clone(batch)))); base != 0 || code != 0 {
		t.Fatalf("first write: base %d, code %d", base, code)
	}
	rc.waitConverged("idem")
	if err := rc.c.Kill(old); err != nil {
		t.Fatal(err)
	}
	next := rc.waitLeader("idem", old)
	conn = dialRaw(t, rc.c.Bootstrap()[next-1])
	if base, code := produceResult(t, conn.roundTrip(produceReq("idem", slices.Clone(batch)))); base != 0 || code != 0 {
		t.Fatalf("retry on the new leader %d: base %d, code %d; want the original offset 0", next, base, code)
	}
	if base, code := produceResult(t, conn.roundTrip(produceReq("idem", idempotentBatch(77, 0, 5, 1)))); base != 5 || code != 0 {
		t.Fatalf("next batch on the new leader: base %d, code %d; want 5", base, code)
	}
	if st, _ := rc.c.Node(next).PartitionState("idem", 0); st.LogEndOffset != 6 {
		t.Fatalf("new leader's log end %d, want 6", st.LogEndOffset)
	}
}

// A paused follower stops fetching and heartbeating: it is fenced and leaves the ISR while writes go on, and
// rejoins once resumed and caught up.
func TestPausedFollowerLeavesAndRejoinsISR(t *testing.T) {
	rc := startRepCluster(t, nil)
	rc.createTopic("p", map[string]string{"min.insync.replicas": "2"})
	cl := rc.client()
	mustProduce(t, cl, "p", "a", 10)
	l := rc.waitLeader("p", -1)
	f := rc.others(l)[0]
	rc.c.Node(f).Pause()
	mustProduce(t, cl, "p", "b", 10)
	if isr := rc.waitISR("p", 2); slices.Contains(isr, f) {
		t.Fatalf("ISR %v holds the paused follower %d", isr, f)
	}
	if st, _ := rc.c.Node(f).PartitionState("p", 0); st.LogEndOffset > 10 {
		t.Fatalf("paused follower kept fetching: log end %d", st.LogEndOffset)
	}
	rc.c.Node(f).Resume()
	rc.waitISR("p", 3)
	rc.waitConverged("p")
}
