package builtin

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/kafkatrial/kafkatrial/nemesis"
	"github.com/kafkatrial/kafkatrial/nemesis/faultnet"
)

// Nodes lists every node's name, running or not.
func (t *Target) Nodes() []string { return slices.Clone(t.names) }

// basicKinds are the faults this target carries out directly; composites are built from them.
var basicKinds = []nemesis.Kind{nemesis.Kill, nemesis.Stop, nemesis.Pause, nemesis.PowerLoss, nemesis.Partition,
	nemesis.LoseResponses, nemesis.Latency, nemesis.ResetConns, nemesis.Corrupt}

// Supports reports whether k is a basic fault kind (every one is supported, partitions of the data plane
// alone included).
func (t *Target) Supports(k nemesis.Kind) bool { return slices.Contains(basicKinds, k) }

// Kill hard-kills nodes at once (concurrently).
func (t *Target) Kill(ctx context.Context, nodes []string) error {
	return t.eachNode(nodes, t.cluster.Kill)
}

// Stop stops nodes cleanly (controlled shutdown first).
func (t *Target) Stop(ctx context.Context, nodes []string) error {
	return t.eachNode(nodes, t.cluster.Stop)
}

// Restart starts every one of nodes that is down, concurrently (a node needs a quorum of voters to register,
// so restarting most of the cluster one by one would never finish).
func (t *Target) Restart(ctx context.Context, nodes []string) error {
	return t.eachNode(nodes, t.cluster.Restart)
}

// PowerLoss kills nodes and cuts their disks back to what was fsynced, all at once.
func (t *Target) PowerLoss(ctx context.Context, nodes []string) error {
	return t.eachNode(nodes, t.cluster.PowerLoss)
}

// Pause freezes nodes: the broker stops working (broker.Node.Pause) and every connection to or from its
// broker and controller stalls, both directions, as a stopped process looks from outside. A node that is down
// gets the network pause only (a restarted node starts unpaused, with its connections still stalled).
func (t *Target) Pause(ctx context.Context, nodes []string) error {
	ids, err := t.ids(nodes)
	if err != nil {
		return err
	}
	for _, id := range ids {
		for _, name := range []string{NodeName(id), ControllerName(id)} {
			if _, err := t.net.Pause(name); err != nil {
				return fmt.Errorf("builtin target: pause %s: %w", name, err)
			}
		}
		if err := t.cluster.Pause(id); err != nil {
			return fmt.Errorf("builtin target: pause %s: %w", NodeName(id), err)
		}
	}
	return nil
}

// Resume thaws nodes; a node that is not paused is left alone.
func (t *Target) Resume(ctx context.Context, nodes []string) error {
	ids, err := t.ids(nodes)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := t.cluster.Resume(id); err != nil {
			return fmt.Errorf("builtin target: resume %s: %w", NodeName(id), err)
		}
		t.net.Resume(NodeName(id))
		t.net.Resume(ControllerName(id))
	}
	return nil
}

// Partition blocks every link under mode (drop stalls, reset breaks). A link between nodes cuts both their
// broker and controller identities; a link of the data plane (Plane "data") cuts the brokers only, so the
// controller quorum stays connected. Clients only ever talk to brokers.
func (t *Target) Partition(ctx context.Context, links []nemesis.Link, mode nemesis.Mode) (func() error, error) {
	var fl []faultnet.Link
	for _, l := range links {
		from, err := t.identities(l.From, l.Plane)
		if err != nil {
			return nil, err
		}
		to, err := t.identities(l.To, l.Plane)
		if err != nil {
			return nil, err
		}
		for _, f := range from {
			for _, x := range to {
				if f != x {
					fl = append(fl, faultnet.Link{From: f, To: x})
				}
			}
		}
	}
	id, err := t.net.Partition(fl, faultnet.Mode(mode))
	if err != nil {
		return nil, fmt.Errorf("builtin target: %w", err)
	}
	return t.healer(id), nil
}

// identities are the faultnet nodes standing for a nemesis endpoint on a plane.
func (t *Target) identities(name, plane string) ([]string, error) {
	if plane != "" && plane != nemesis.PlaneData {
		return nil, fmt.Errorf("builtin target: unknown plane %q (want %q or none)", plane, nemesis.PlaneData)
	}
	if name == nemesis.Client {
		return []string{faultnet.Client}, nil
	}
	id, err := t.id(name)
	if err != nil {
		return nil, err
	}
	if plane == nemesis.PlaneData {
		return []string{NodeName(id)}, nil
	}
	return []string{NodeName(id), ControllerName(id)}, nil
}

// LoseResponses makes every response from nodes to clients vanish (the request was applied) and breaks the
// connection, until healed.
func (t *Target) LoseResponses(ctx context.Context, nodes []string) (func() error, error) {
	if _, err := t.ids(nodes); err != nil {
		return nil, err
	}
	var ids []faultnet.FaultID
	for _, n := range nodes {
		id, err := t.net.LoseResponses(n, 0)
		if err != nil {
			_ = t.healer(ids...)()
			return nil, fmt.Errorf("builtin target: %w", err)
		}
		ids = append(ids, id)
	}
	return t.healer(ids...), nil
}

// ResetConnections resets every live connection to or from nodes (broker and controller) once.
func (t *Target) ResetConnections(ctx context.Context, nodes []string) error {
	ids, err := t.ids(nodes)
	if err != nil {
		return err
	}
	for _, id := range ids {
		t.net.ResetConns(NodeName(id))
		t.net.ResetConns(ControllerName(id))
	}
	return nil
}

// Latency delays every link touching nodes (their brokers and controllers, to and from every other node and
// the clients) by mean ± jitter, until healed. Each call draws its delays from its own stream of the target's
// seed.
func (t *Target) Latency(ctx context.Context, nodes []string, mean, jitter time.Duration) (func() error, error) {
	ids, err := t.ids(nodes)
	if err != nil {
		return nil, err
	}
	seen := map[faultnet.Link]bool{}
	var links []faultnet.Link
	for _, id := range ids {
		for _, n := range []string{NodeName(id), ControllerName(id)} {
			links = t.touching(n, links, seen)
		}
	}
	t.mu.Lock()
	draw := t.draws
	t.draws++
	t.mu.Unlock()
	rng := rand.New(rand.NewPCG(nemesis.SubSeed(t.seed, "builtin/latency"), draw))
	id, err := t.net.LatencyLinks(links, mean, jitter, rng)
	if err != nil {
		return nil, fmt.Errorf("builtin target: %w", err)
	}
	return t.healer(id), nil
}

// touching appends every link to or from faultnet node n not yet in seen.
func (t *Target) touching(n string, links []faultnet.Link, seen map[faultnet.Link]bool) []faultnet.Link {
	for _, o := range append(t.net.Nodes(), faultnet.Client) {
		for _, l := range []faultnet.Link{{From: n, To: o}, {From: o, To: n}} {
			if o != n && !seen[l] {
				seen[l] = true
				links = append(links, l)
			}
		}
	}
	return links
}

// HealNetwork removes every network fault (partitions, latency, lost responses and pauses).
func (t *Target) HealNetwork(ctx context.Context) error {
	t.net.HealAll()
	return nil
}

// healer returns a function healing exactly ids; a fault already healed (by HealNetwork) is not an error.
func (t *Target) healer(ids ...faultnet.FaultID) func() error {
	return func() error {
		var errs []error
		for _, id := range ids {
			if err := t.net.Heal(id); err != nil && !errors.Is(err, faultnet.ErrUnknownFault) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// eachNode runs op on every node concurrently (a power loss of all nodes happens at once) and joins errors.
func (t *Target) eachNode(nodes []string, op func(int32) error) error {
	ids, err := t.ids(nodes)
	if err != nil {
		return err
	}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { errs[i] = op(id) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Leader names the node leading topic/partition as the freshest metadata says ("" when offline).
func (t *Target) Leader(ctx context.Context, topic string, partition int32) (string, error) {
	p, err := t.partition(topic, partition)
	if err != nil || p.Leader == meta.NoLeader {
		return "", err
	}
	return NodeName(p.Leader), nil
}

// Replicas names the partition's assigned replicas, preferred leader first.
func (t *Target) Replicas(ctx context.Context, topic string, partition int32) ([]string, error) {
	p, err := t.partition(topic, partition)
	if err != nil {
		return nil, err
	}
	return names(p.Replicas), nil
}

// ISR names the partition's in-sync replicas.
func (t *Target) ISR(ctx context.Context, topic string, partition int32) ([]string, error) {
	p, err := t.partition(topic, partition)
	if err != nil {
		return nil, err
	}
	return names(p.ISR), nil
}

// Controller names the active controller ("" when none is known or it is not running).
func (t *Target) Controller(ctx context.Context) (string, error) {
	id := t.cluster.ActiveController()
	if id < 0 {
		return "", nil
	}
	return NodeName(id), nil
}

func (t *Target) partition(topic string, partition int32) (meta.Partition, error) {
	im := t.cluster.Image()
	if im == nil {
		return meta.Partition{}, errors.New("builtin target: no node is running")
	}
	tp := im.Topics[topic]
	if tp == nil {
		return meta.Partition{}, fmt.Errorf("builtin target: topic %s does not exist", topic)
	}
	if partition < 0 || int(partition) >= len(tp.Partitions) {
		return meta.Partition{}, fmt.Errorf("builtin target: topic %s has no partition %d (it has %d)", topic, partition, len(tp.Partitions))
	}
	return tp.Partitions[partition], nil
}
