package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
)

// liveness tracks broker heartbeats on the active controller. Last-heard times live only in memory (as in
// Kafka they are not replicated): a newly active controller starts every broker's clock fresh, which gives
// brokers one session timeout of grace to find it. The run goroutine owns the leadership state; mu guards
// heard and ready, which heartbeat handlers also touch.
type liveness struct {
	c     *Controller
	mu    sync.Mutex
	heard map[int32]heard
	// ready is true once this voter leads and has applied everything committed before its election (a
	// barrier), so its image is current enough to judge epochs.
	ready bool
	kick  chan struct{}
}

type heard struct {
	at    time.Time
	epoch int64
	// beat is true when at came from a real heartbeat rather than the grace-period reset; only a real
	// heartbeat unfences.
	beat bool
}

func newLiveness(c *Controller) *liveness {
	return &liveness{c: c, heard: map[int32]heard{}, kick: make(chan struct{}, 1)}
}

// heartbeat records a broker heartbeat. ok=false means this voter is not (yet) the active controller and
// did nothing.
func (l *liveness) heartbeat(id int32, epoch int64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ready || l.c.raft.State() != raft.Leader {
		return false, nil
	}
	b, ok := l.c.Image().Brokers[id]
	if !ok {
		return true, fmt.Errorf("broker %d is not registered: %w", id, kerr.BrokerIDNotRegistered)
	}
	if b.Epoch != epoch {
		return true, fmt.Errorf("broker %d has epoch %d, heartbeat carries %d: %w", id, b.Epoch, epoch, kerr.StaleBrokerEpoch)
	}
	l.heard[id] = heard{at: time.Now(), epoch: epoch, beat: true}
	if b.Fenced {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return true, nil
}

func (l *liveness) run() {
	tick := time.NewTicker(max(l.c.cfg.Timing.BrokerHeartbeatInterval/2, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-l.c.stop:
			return
		case <-tick.C:
		case <-l.kick:
		case <-l.c.notify:
		}
		// A paused voter judges nobody: it resumes with the first tick after Resume.
		if l.c.frz.wait(context.Background(), nil) != nil {
			return
		}
		l.check()
	}
}

// check fences brokers whose session lapsed and unfences fenced brokers heard from again.
func (l *liveness) check() {
	if l.c.raft.State() != raft.Leader {
		l.mu.Lock()
		l.ready = false
		l.mu.Unlock()
		return
	}
	if !l.isReady() {
		if err := l.c.raft.Barrier(l.c.cfg.Timing.RaftRPCTimeout).Error(); err != nil {
			return
		}
		now := time.Now()
		l.mu.Lock()
		l.heard = map[int32]heard{}
		for id, b := range l.c.Image().Brokers {
			l.heard[id] = heard{at: now, epoch: b.Epoch}
		}
		l.ready = true
		brokers := len(l.heard)
		l.mu.Unlock()
		l.c.log.Info("active controller ready", "brokers", brokers)
	}
	var cmds []meta.Command
	im := l.c.Image()
	now := time.Now()
	session := l.c.cfg.Timing.SessionTimeout
	l.mu.Lock()
	ids := make([]int32, 0, len(im.Brokers))
	for id := range im.Brokers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		b := im.Brokers[id]
		h, ok := l.heard[id]
		if !ok || h.epoch != b.Epoch {
			l.heard[id] = heard{at: now, epoch: b.Epoch} // a new registration counts as being heard from
			continue
		}
		switch {
		case !b.Fenced && now.Sub(h.at) > session:
			cmds = append(cmds, meta.Command{FenceBroker: &meta.FenceBroker{ID: id, Epoch: b.Epoch}})
		case b.Fenced && !b.ShuttingDown && h.beat && now.Sub(h.at) <= session:
			cmds = append(cmds, meta.Command{UnfenceBroker: &meta.UnfenceBroker{ID: id, Epoch: b.Epoch}})
		}
	}
	l.mu.Unlock()
	for _, cmd := range cmds {
		l.propose(cmd)
	}
}

func (l *liveness) isReady() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ready
}

func (l *liveness) propose(cmd meta.Command) {
	data, err := json.Marshal(cmd)
	if err != nil {
		l.c.log.Error("encode liveness command", "kind", cmd.Kind(), "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.c.cfg.Timing.RaftRPCTimeout)
	defer cancel()
	res, _, err := l.c.proposeLocal(ctx, data)
	switch {
	case err != nil:
		l.c.log.Warn("liveness command failed", "kind", cmd.Kind(), "err", err)
	case res.ErrorCode != 0:
		l.c.log.Info("liveness command rejected", "kind", cmd.Kind(), "msg", res.Message)
	default:
		l.c.log.Info("liveness", "kind", cmd.Kind(), "broker", brokerOf(cmd))
	}
}

func brokerOf(cmd meta.Command) int32 {
	if cmd.FenceBroker != nil {
		return cmd.FenceBroker.ID
	}
	if cmd.UnfenceBroker != nil {
		return cmd.UnfenceBroker.ID
	}
	return -1
}
