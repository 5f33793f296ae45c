package builtin

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/nemesis"
)

// TestUncleanElectionComposite runs the nemesis's unclean-election composite against the built-in cluster
// while a producer writes with acks=all and min.insync.replicas=1: the ISR shrinks to the leader, the leader
// dies, the followers are healed. With unclean.leader.election.enable=true a replica that was out of the ISR
// must lead; with false the partition must stay offline until the old leader returns.
func TestUncleanElectionComposite(t *testing.T) {
	for _, unclean := range []bool{true, false} {
		t.Run(fmt.Sprintf("unclean=%v", unclean), func(t *testing.T) {
			tg := startTarget(t, map[string]string{"replica.lag.time.max.ms": "500"})
			ctx := testCtx(t)
			u, one := fmt.Sprint(unclean), "1"
			createTopic(t, tg, "u", 1, 3, map[string]*string{"unclean.leader.election.enable": &u, "min.insync.replicas": &one})
			old, err := tg.Leader(ctx, "u", 0)
			if err != nil || old == "" {
				t.Fatalf("leader: %q %v", old, err)
			}
			// Keep writes flowing so the leader gets ahead of its cut-off followers.
			cl := client(t, tg, manual())
			wctx, stop := context.WithCancel(ctx)
			defer stop()
			go func() {
				for i := 0; wctx.Err() == nil; i++ {
					cl.Produce(wctx, &kgo.Record{Topic: "u", Partition: 0, Value: []byte(fmt.Sprint(i))}, nil)
					time.Sleep(5 * time.Millisecond)
				}
			}()
			r := &nemesis.Runner{Cluster: tg, Logger: testLogger(), Topics: []string{"u"}, Settle: 20 * time.Second}
			plan := []nemesis.Planned{{At: 300 * time.Millisecond, Kind: nemesis.UncleanElection, Target: "leader(u/0)", Draw: 1}}
			if err := r.Run(ctx, time.Now(), plan); err != nil {
				t.Fatal(err)
			}
			if got := r.Active(); len(got) != 1 {
				t.Fatalf("the composite did not start (no active fault): %v", got)
			}
			if unclean {
				waitFor(t, 20*time.Second, "a stale replica leads", func() error {
					l, err := tg.Leader(ctx, "u", 0)
					if err != nil || l == "" || l == old {
						return fmt.Errorf("leader %q (old %s): %v", l, old, err)
					}
					// The composite saw the ISR shrink to the old leader alone before killing it, so any other
					// leader was out of the ISR: an unclean election.
					return nil
				})
			} else {
				// The dead leader is fenced, and then the partition is offline and stays so: no stale replica may
				// ever lead.
				waitFor(t, 20*time.Second, "the partition goes offline", func() error {
					if l, _ := tg.Leader(ctx, "u", 0); l != "" {
						return fmt.Errorf("still led by %s", l)
					}
					return nil
				})
				for i := 0; i < 20; i++ {
					if l, _ := tg.Leader(ctx, "u", 0); l != "" {
						t.Fatalf("unclean=false: %s leads while the only in-sync replica %s is dead", l, old)
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
			stop()
			if err := r.Heal(ctx, 30*time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestHealAfterEveryFaultKind starts each basic and composite fault the built-in target supports, then heals,
// and requires a healthy cluster (every node up, every partition led and fully in sync) afterwards.
func TestHealAfterEveryFaultKind(t *testing.T) {
	tg := startTarget(t, map[string]string{"replica.lag.time.max.ms": "500"})
	ctx := testCtx(t)
	createTopic(t, tg, "h", 2, 3, nil)
	for _, p := range []nemesis.Planned{
		{Kind: nemesis.Kill, Target: "leader(h/0)"},
		{Kind: nemesis.Stop, Target: "random"},
		{Kind: nemesis.Pause, Target: "random"},
		{Kind: nemesis.PowerLoss, Target: "random"},
		{Kind: nemesis.Partition, Shape: nemesis.MajorityMinority},
		{Kind: nemesis.Partition, Shape: nemesis.OneWay, Target: "random", Mode: nemesis.Reset},
		{Kind: nemesis.Partition, Shape: nemesis.Bridge},
		{Kind: nemesis.LoseResponses, Target: "all"},
		{Kind: nemesis.Latency, Target: "random"},
		{Kind: nemesis.ResetConns, Target: "all"},
		{Kind: nemesis.ControllerKill},
		{Kind: nemesis.PowerLossAll},
		{Kind: nemesis.RetryStorm, Target: "all"},
		{Kind: nemesis.RollingBounce},
	} {
		t.Run(string(p.Kind)+string(p.Shape), func(t *testing.T) {
			p.Draw = 7
			r := &nemesis.Runner{Cluster: tg, Logger: testLogger(), Topics: []string{"h"}, Settle: 20 * time.Second}
			if err := r.Run(ctx, time.Now(), []nemesis.Planned{p}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			if err := r.Heal(ctx, 45*time.Second); err != nil {
				t.Fatalf("heal after %s: %v", p.Kind, err)
			}
		})
	}
}
