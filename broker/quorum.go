package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/controller"
	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
)

// metadataService is the node's path to the metadata quorum: its controller voter, its registration and
// heartbeats, and the application of every new image to the node's partitions. It is the only metadata
// path: handlers read n.image() and change metadata only through propose.
type metadataService struct {
	ctrl        *controller.Controller
	brokerEpoch atomic.Int64
	cancelSub   func()
	// applyMu serialises image application (Start's first image, then the subscription loop).
	applyMu sync.Mutex
	// applied is the last image whose partitions were applied.
	applied *meta.Image
}

// startMetadata starts the controller voter, registers the node, applies the current image and starts the
// image, heartbeat and checkpoint loops.
func (n *Node) startMetadata() error {
	voters := n.cfg.Voters
	addr := n.cfg.ControllerAddr
	if len(voters) == 0 {
		var err error
		if addr, err = fixedLoopbackAddr(addr); err != nil {
			return err
		}
		voters = map[int32]string{n.cfg.NodeID: addr}
	}
	dir := n.cfg.DataDir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(n.disk.Root(), dir)
	}
	listen, dial := n.cfg.ControllerListen, n.cfg.ControllerDial
	if listen == nil {
		listen = n.cfg.Listen
	}
	if dial == nil {
		dial = n.cfg.Dial
	}
	ctrl, err := controller.Start(controller.Config{NodeID: n.cfg.NodeID, Voters: voters,
		DataDir: filepath.Join(dir, controllerDirName), Listen: listen, Dial: dial,
		Logger: n.log.With("part", "controller"), Timing: n.cfg.Timing.Controller,
		ClusterDefaults: n.cfg.Defaults.clusterDefaults()})
	if err != nil {
		return fmt.Errorf("broker: starting the controller: %w", err)
	}
	n.meta.ctrl = ctrl
	if err := n.register(); err != nil {
		ctrl.Kill()
		return err
	}
	ch, cancel := ctrl.Subscribe()
	n.meta.cancelSub = cancel
	if err := n.awaitOwnRegistration(); err != nil {
		cancel()
		ctrl.Kill()
		return err
	}
	if err := n.applyImage(ctrl.Image()); err != nil {
		cancel()
		ctrl.Kill()
		return err
	}
	n.wg.Add(4)
	go n.imageLoop(ch)
	go n.heartbeatLoop()
	go n.checkpointLoop()
	go n.isrLoop()
	return nil
}

// fixedLoopbackAddr turns a port-0 address into a free fixed one (a Raft voter's address must not change).
func fixedLoopbackAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("broker: controller.listener %q: %w", addr, err)
	}
	if port != "0" {
		return addr, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("broker: finding a free port for controller.listener: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// register registers this incarnation with the controller, retrying until RequestTimeout.
func (n *Node) register() error {
	host, port := n.advertised()
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Timing.RequestTimeout)
	defer cancel()
	epoch, err := n.meta.ctrl.RegisterBroker(ctx, n.cfg.NodeID, host, port)
	if err != nil {
		return fmt.Errorf("broker: registering node %d with the controller: %w", n.cfg.NodeID, err)
	}
	n.meta.brokerEpoch.Store(epoch)
	return nil
}

// awaitOwnRegistration waits until the local controller's image includes this incarnation's registration.
// A restarted voter replays its log and catches up with the quorum only gradually: acting on an image from
// before its registration would make it lead partitions it led before it died (a zombie answering clients with
// a stale high watermark). Kafka's broker likewise waits to catch up with the metadata log before serving.
func (n *Node) awaitOwnRegistration() error {
	epoch := n.meta.brokerEpoch.Load()
	deadline := time.Now().Add(n.cfg.Timing.RequestTimeout)
	for n.meta.ctrl.Image().Offset < epoch {
		if time.Now().After(deadline) {
			return fmt.Errorf("broker: node %d: the metadata image did not reach this node's registration (offset %d) within %v",
				n.cfg.NodeID, epoch, n.cfg.Timing.RequestTimeout)
		}
		if !sleepCtx(n.ctx, 5*time.Millisecond) {
			return n.ctx.Err()
		}
	}
	return nil
}

// imageLoop applies every new image until the node stops.
func (n *Node) imageLoop(ch <-chan *meta.Image) {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case im := <-ch:
			if n.gate.wait(n.ctx) != nil {
				return
			}
			if err := n.applyImage(im); err != nil {
				n.log.Error("applying a metadata image failed; partitions may lag the metadata", "offset", im.Offset, "err", err)
			}
		}
	}
}

// heartbeatLoop keeps the node's registration alive, registering again when the controller forgot it.
func (n *Node) heartbeatLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.meta.ctrl.Timing().BrokerHeartbeatInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if n.gate.wait(n.ctx) != nil {
			return
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.meta.ctrl.Timing().SessionTimeout)
		err := n.meta.ctrl.Heartbeat(ctx, n.cfg.NodeID, n.meta.brokerEpoch.Load())
		cancel()
		if errors.Is(err, kerr.StaleBrokerEpoch) || errors.Is(err, kerr.BrokerIDNotRegistered) {
			err = n.register()
		}
		switch {
		case err != nil && !failing && n.ctx.Err() == nil:
			n.log.Warn("broker heartbeat failing", "err", err)
			failing = true
		case err == nil && failing:
			n.log.Info("broker heartbeat recovered")
			failing = false
		}
	}
}

// applyImage publishes im to handlers and brings the node's partitions in line with it: it opens the
// partitions it hosts, updates their leadership and settings, and deletes those of deleted topics.
func (n *Node) applyImage(im *meta.Image) error {
	n.meta.applyMu.Lock()
	defer n.meta.applyMu.Unlock()
	if prev := n.meta.applied; prev != nil && prev.Offset > im.Offset {
		return nil
	}
	var errs []error
	want := map[topicPartition]*meta.Topic{}
	for _, t := range im.Topics {
		for _, mp := range t.Partitions {
			for _, r := range mp.Replicas {
				if r == n.cfg.NodeID {
					want[topicPartition{t.Name, mp.Partition}] = t
				}
			}
		}
	}
	// Deleted partitions (or ones whose topic was recreated under a new id) go first.
	n.partsMu.Lock()
	for tp, p := range n.parts {
		if t, ok := want[tp]; !ok || t.ID != p.topicID {
			delete(n.parts, tp)
			if err := p.delete(); err != nil {
				errs = append(errs, fmt.Errorf("deleting partition %s-%d: %w", tp.topic, tp.partition, err))
			}
		}
	}
	n.partsMu.Unlock()
	now := time.Now()
	for tp, t := range want {
		mp := t.Partitions[tp.partition]
		cfg := logConfig(im, t.Name, n.cfg.Defaults)
		cfg.Logger = n.log
		minISR, _ := strconv.Atoi(im.Config(t.Name, meta.ConfigMinInsyncReplicas, "1"))
		n.partsMu.RLock()
		p := n.parts[tp]
		n.partsMu.RUnlock()
		if p == nil {
			var err error
			p, err = openPartition(n.disk, n.path(logsDirName, partitionDir(tp)), tp, t.ID, n.cfg.NodeID, cfg, n.hwCheckpoint[tp])
			if err != nil {
				errs = append(errs, fmt.Errorf("opening partition %s-%d: %w", tp.topic, tp.partition, err))
				continue
			}
			n.partsMu.Lock()
			n.parts[tp] = p
			n.partsMu.Unlock()
		}
		prop, err := p.applyMetadata(metadataUpdate{mp: mp, minISR: max(minISR, 1), cfg: cfg, eligible: im.Eligible,
			lagMax: n.cfg.Timing.ReplicaLagTimeMax, now: now})
		if err != nil {
			errs = append(errs, fmt.Errorf("partition %s-%d: %w", tp.topic, tp.partition, err))
		}
		n.sendAlterPartition(p, prop)
	}
	n.meta.applied = im
	n.img.Store(im)
	n.updateFetchers(im)
	n.groups.onImage(im)
	return errors.Join(errs...)
}

// propose commits a metadata command through the quorum.
func (n *Node) propose(ctx context.Context, cmd meta.Command) (meta.Result, error) {
	return n.meta.ctrl.Propose(ctx, cmd)
}

// partition returns the hosted partition, or nil.
func (n *Node) partition(topic string, part int32) *partition {
	n.partsMu.RLock()
	defer n.partsMu.RUnlock()
	return n.parts[topicPartition{topic, part}]
}

// controlledShutdown asks the controller to move leadership away before a clean stop (bounded).
func (n *Node) controlledShutdown() {
	if n.meta.ctrl == nil {
		return
	}
	// Bounded by the broker session: a broker that stopped without one is fenced within that time anyway,
	// and a quorum that cannot commit the request (its other voters stopping too) must not hold the stop.
	bound := n.meta.ctrl.Timing().SessionTimeout
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	res, err := n.propose(ctx, meta.Command{ControlledShutdown: &meta.ControlledShutdown{ID: n.cfg.NodeID}})
	if err != nil || res.ErrorCode != 0 {
		n.log.Warn("controlled shutdown request failed; stopping anyway", "err", err, "code", res.ErrorCode)
		return
	}
	// The image carrying the change reaches this node through its subscription; until then clients would
	// still be told this node leads.
	if err := n.waitLeadershipGone(bound); err != nil {
		n.log.Warn("controlled shutdown: stopping anyway", "err", err)
	}
}

// close stops the controller cleanly.
func (m *metadataService) close() error {
	if m.ctrl == nil {
		return nil
	}
	if m.cancelSub != nil {
		m.cancelSub()
	}
	return m.ctrl.Close()
}

// kill stops the controller as a crash would.
func (m *metadataService) kill() {
	if m.ctrl == nil {
		return
	}
	if m.cancelSub != nil {
		m.cancelSub()
	}
	m.ctrl.Kill()
}

// pause freezes the controller voter with the rest of the node (Node.Pause); nil before Start.
func (m *metadataService) pause() {
	if m.ctrl != nil {
		m.ctrl.Pause()
	}
}

// resume undoes pause.
func (m *metadataService) resume() {
	if m.ctrl != nil {
		m.ctrl.Resume()
	}
}
