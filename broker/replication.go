package broker

// The leader side of replication at node level: sending the AlterPartition proposals a partition's
// replica.Leader decides on (at most one in flight per partition, which replica.Leader guarantees), the
// periodic ISR check, and the node's Pause/Resume and partition state accessors. The decisions themselves
// live in broker/replica; partition.go feeds them and this file carries them out.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/kafkatrial/kafkatrial/broker/replica"
	"github.com/twmb/franz-go/pkg/kerr"
)

// PartitionStatus is one replica of a partition as its node holds it now.
type PartitionStatus struct {
	LogStartOffset int64
	LogEndOffset   int64
	HighWatermark  int64
	Leader         int32
	LeaderEpoch    int32
	// IsLeader: this node leads the partition now.
	IsLeader bool
	// ISR is the leader's committed ISR while this node leads, else the ISR of the last applied image.
	ISR []int32
	// LatestEpoch is the newest epoch of the replica's leader-epoch cache (-1 when empty).
	LatestEpoch int32
}

// PartitionState returns this node's replica of topic/partition; false when the node does not host it.
func (n *Node) PartitionState(topic string, partition int32) (PartitionStatus, bool) {
	p := n.partition(topic, partition)
	if p == nil {
		return PartitionStatus{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return PartitionStatus{}, false
	}
	latest, _ := p.log.Epochs().Latest()
	st := PartitionStatus{LogStartOffset: p.log.StartOffset(), LogEndOffset: p.log.EndOffset(), HighWatermark: p.hw.Load(),
		Leader: p.leader, LeaderEpoch: p.leaderEpoch, IsLeader: p.ldr != nil, ISR: slices.Clone(p.isr), LatestEpoch: latest}
	if p.ldr != nil {
		st.ISR = p.ldr.ISR()
	}
	return st, true
}

// Pause makes the node stop doing work, as a SIGSTOP would: no request is handled or answered, no fetcher
// fetches, no ISR check, heartbeat, image application or AlterPartition runs until Resume. Work in flight
// finishes its current step and then waits. Its connections stay open (a fault layer stalls them separately).
// The node's controller voter freezes too (controller.Pause): a paused active controller loses leadership to
// the other voters, and rejoins the quorum at Resume.
func (n *Node) Pause() {
	n.gate.pause()
	n.meta.pause()
}

// Resume undoes Pause.
func (n *Node) Resume() {
	n.meta.resume()
	n.gate.resume()
}

// pauseGate blocks workers while the node is paused.
type pauseGate struct {
	mu     sync.Mutex
	closed chan struct{} // nil while running; open while paused, closed on resume
}

func (g *pauseGate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed == nil {
		g.closed = make(chan struct{})
	}
}

func (g *pauseGate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed != nil {
		close(g.closed)
		g.closed = nil
	}
}

// wait returns at once while running, else when resumed or ctx ends (then with ctx's error).
func (g *pauseGate) wait(ctx context.Context) error {
	g.mu.Lock()
	ch := g.closed
	g.mu.Unlock()
	if ch == nil {
		return ctx.Err()
	}
	select {
	case <-ch:
		return ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendAlterPartition sends prop for p in the background and feeds the controller's answer back to p's leader
// state, resending while the answer says to retry. Callers are node goroutines counted in n.wg.
func (n *Node) sendAlterPartition(p *partition, prop *replica.Proposal) {
	if prop == nil || n.ctx.Err() != nil {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.runAlterPartition(p, prop)
	}()
}

func (n *Node) runAlterPartition(p *partition, prop *replica.Proposal) {
	for prop != nil {
		if n.gate.wait(n.ctx) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Timing.RequestTimeout)
		res, err := n.propose(ctx, meta.Command{AlterPartition: &meta.AlterPartition{Topic: p.tp.topic,
			Partition: p.tp.partition, LeaderID: n.cfg.NodeID, LeaderEpoch: prop.LeaderEpoch,
			PartitionEpoch: prop.PartitionEpoch, NewISR: prop.ISR}})
		cancel()
		if n.ctx.Err() != nil {
			return
		}
		var ar replica.AlterResult
		switch {
		case err != nil:
			// Not committed, or unknown: replica.Leader resends; a resend of an applied change is refused
			// (INVALID_UPDATE_VERSION) and the image that carries the change settles the state.
			ar.ErrorCode = kerr.RequestTimedOut.Code
		default:
			ar.ErrorCode = res.ErrorCode
			if res.Partition != nil {
				ar.LeaderEpoch, ar.PartitionEpoch, ar.ISR = res.Partition.LeaderEpoch, res.Partition.PartitionEpoch, res.Partition.ISR
			}
		}
		next, outcome := p.alterPartitionResult(prop.Seq, ar, time.Now())
		n.log.Info("ISR change", "topic", p.tp.topic, "partition", p.tp.partition, "kind", prop.Kind,
			"isr", prop.ISR, "changed", prop.Changed, "leader_epoch", prop.LeaderEpoch, "outcome", outcome,
			"code", ar.ErrorCode, "err", err)
		if outcome == replica.AlterRetry && !sleepCtx(n.ctx, n.cfg.Timing.ReplicaFetchBackoff) {
			return
		}
		prop = next
	}
}

// isrLoop runs every leader's ISR check every replica.lag.time.max.ms / 2, as Kafka schedules isr-expiration.
func (n *Node) isrLoop() {
	defer n.wg.Done()
	t := time.NewTicker(max(n.cfg.Timing.ReplicaLagTimeMax/2, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if n.gate.wait(n.ctx) != nil {
			return
		}
		now := time.Now()
		for _, p := range n.partitionList() {
			n.sendAlterPartition(p, p.tick(now))
		}
	}
}

// partitionList is a snapshot of the hosted partitions.
func (n *Node) partitionList() []*partition {
	n.partsMu.RLock()
	defer n.partsMu.RUnlock()
	out := make([]*partition, 0, len(n.parts))
	for _, p := range n.parts {
		out = append(out, p)
	}
	return out
}

// sleepCtx sleeps d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitLeadershipGone waits (bounded by d) until the applied image shows this node leading nothing: after a
// controlled shutdown the controller moves every leadership away before the node stops serving.
func (n *Node) waitLeadershipGone(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		im := n.image()
		leads := 0
		if im != nil {
			for _, t := range im.Topics {
				for _, p := range t.Partitions {
					if p.Leader == n.cfg.NodeID {
						leads++
					}
				}
			}
		}
		if leads == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("leadership still held when the controlled shutdown wait ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
