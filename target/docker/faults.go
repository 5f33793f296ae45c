package docker

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	mnet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/kafkatrial/kafkatrial/nemesis"
)

// Supports reports the faults Docker can carry out: kill, clean stop, pause and (some shapes of) partition
// always; power loss only where the node has a lose-unsynced hook. Lost responses, latency and connection
// resets need a proxy or traffic control inside the network, which this target does not have.
func (t *Target) Supports(k nemesis.Kind) bool {
	switch k {
	case nemesis.Kill, nemesis.Stop, nemesis.Pause, nemesis.Partition:
		return true
	case nemesis.PowerLoss:
		return len(t.nodes) > 0 && t.nodes[0].spec.PowerLossSignal != ""
	}
	return false
}

// Expressible says, before any container starts, whether the target can carry out fault kind k (with a
// partition shape, for partitions) on a cluster of image: nil if it can, else why not. It agrees with Supports
// and Partition: faults acting on clients are the workload's and always possible; composites need what they
// are built from.
func Expressible(image string, k nemesis.Kind, shape nemesis.Shape) error {
	switch k {
	case nemesis.Kill, nemesis.Stop, nemesis.Pause, nemesis.RollingBounce, nemesis.ControllerKill,
		nemesis.CrashProducer, nemesis.CrashConsumer, nemesis.JoinConsumer, nemesis.LeaveConsumer:
		return nil
	case nemesis.PowerLoss, nemesis.PowerLossAll:
		kind, _, err := ParseImage(image)
		if err != nil {
			return err
		}
		if kind != KindKafkatrial {
			return fmt.Errorf("a %s node has no hook to drop what it never fsynced (only kafkatrial's own image has one)", kind)
		}
		return nil
	case nemesis.Partition:
		switch shape {
		case nemesis.IsolateNode, nemesis.IsolateLeaderBoth:
			return nil
		case "", nemesis.RandomShape:
			return fmt.Errorf("shape %q draws one of every shape, and docker network disconnect isolates whole nodes only (give shape isolate-node or isolate-leader-both)", cmp.Or(shape, nemesis.RandomShape))
		}
		return fmt.Errorf("shape %s cuts only some of a node's links, and docker network disconnect isolates whole nodes only (use isolate-node or isolate-leader-both)", shape)
	case nemesis.UncleanElection:
		return fmt.Errorf("it cuts a leader off its followers while clients still reach it, and docker network disconnect isolates whole nodes only")
	case nemesis.LoseResponses, nemesis.RetryStorm:
		return fmt.Errorf("losing responses after the broker applied a request needs a proxy on the connection, which this target does not have")
	case nemesis.Latency:
		return fmt.Errorf("added latency needs a proxy or traffic control on the connection, which this target does not have")
	case nemesis.ResetConns:
		return fmt.Errorf("resetting client connections needs a proxy on the connection, which this target does not have")
	case nemesis.Corrupt:
		return fmt.Errorf("corrupting requests needs a proxy on the connection, which this target does not have")
	}
	return fmt.Errorf("unknown fault %q", k)
}

var unpauseOptions = client.ContainerUnpauseOptions{}

// Kill sends SIGKILL to each node's container (docker kill): the process dies with everything in its memory;
// files keep what was written, since the container's filesystem outlives the process. A node that is not
// running is left alone; a paused one is killed frozen.
func (t *Target) Kill(ctx context.Context, nodes []string) error {
	return t.each(ctx, nodes, func(ctx context.Context, n *node) error {
		st, err := t.inspect(ctx, n)
		if err != nil || !st.Running {
			return err
		}
		if _, err := t.cli.ContainerKill(ctx, n.c.GetContainerID(), client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
			return fmt.Errorf("docker target: killing %s: %w", n.spec.Name, err)
		}
		if err := t.waitExited(ctx, n); err != nil {
			return err
		}
		n.state.Store(stateDown)
		return nil
	})
}

// Stop stops each node cleanly (docker stop): SIGTERM, which the node answers with a controlled shutdown,
// then SIGKILL if it has not exited within its stop timeout. A paused node is thawed first, since a frozen
// process cannot shut down.
func (t *Target) Stop(ctx context.Context, nodes []string) error {
	return t.each(ctx, nodes, func(ctx context.Context, n *node) error {
		st, err := t.inspect(ctx, n)
		if err != nil || !st.Running {
			return err
		}
		id := n.c.GetContainerID()
		if st.Paused {
			if _, err := t.cli.ContainerUnpause(ctx, id, unpauseOptions); err != nil {
				return fmt.Errorf("docker target: thawing %s before stopping it: %w", n.spec.Name, err)
			}
		}
		secs := int(n.spec.StopTimeout / time.Second)
		sctx, cancel := context.WithTimeout(ctx, n.spec.StopTimeout+opTimeout)
		defer cancel()
		if _, err := t.cli.ContainerStop(sctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
			return fmt.Errorf("docker target: stopping %s cleanly (SIGTERM, %v to exit): %w", n.spec.Name, n.spec.StopTimeout, err)
		}
		n.state.Store(stateDown)
		return nil
	})
}

// Restart starts each node whose container is not running and waits for its ready line; a running node
// (paused or not) is left alone. The node comes back from what its container's filesystem holds.
func (t *Target) Restart(ctx context.Context, nodes []string) error {
	return t.each(ctx, nodes, func(ctx context.Context, n *node) error {
		st, err := t.inspect(ctx, n)
		if err != nil || st.Running {
			return err
		}
		return t.startNode(ctx, n)
	})
}

// startNode starts n's stopped container and waits until it logs its ready line once more than before.
func (t *Target) startNode(ctx context.Context, n *node) error {
	before, err := t.readyCount(ctx, n)
	if err != nil {
		return err
	}
	began := time.Now()
	if _, err := t.cli.ContainerStart(ctx, n.c.GetContainerID(), client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("docker target: starting %s: %w", n.spec.Name, err)
	}
	started := time.Now()
	n.state.Store(stateUp)
	w := wait.ForLog(n.spec.ReadyLog).WithOccurrence(before + 1).WithStartupTimeout(readyTimeout).WithPollInterval(100 * time.Millisecond)
	if err := w.WaitUntilReady(ctx, n.c); err != nil {
		return fmt.Errorf("docker target: %s did not log %q within %v of its restart (the engine took %v to start it): %w%s",
			n.spec.Name, n.spec.ReadyLog, time.Since(began).Round(time.Millisecond), started.Sub(began).Round(time.Millisecond), err, t.logTail(n))
	}
	t.logger.Info("docker target: node restarted", "node", n.spec.Name, "engine_start", started.Sub(began).Round(time.Millisecond),
		"ready", time.Since(began).Round(time.Millisecond))
	return nil
}

// PowerLoss sends each running node its lose-unsynced signal: the node cuts every file back to what it
// fsynced and exits. A node that is already down is an error: its process, which alone knew what was
// unsynced, is gone.
func (t *Target) PowerLoss(ctx context.Context, nodes []string) error {
	return t.each(ctx, nodes, func(ctx context.Context, n *node) error {
		sig := n.spec.PowerLossSignal
		if sig == "" {
			return fmt.Errorf("%w: power-loss on %s: the %s node has no lose-unsynced hook", nemesis.ErrUnsupported, n.spec.Name, t.kind)
		}
		st, err := t.inspect(ctx, n)
		if err != nil {
			return err
		}
		if !st.Running {
			return fmt.Errorf("docker target: power-loss on %s: it is not running, so what it never fsynced can no longer be told apart", n.spec.Name)
		}
		if st.Paused {
			if _, err := t.cli.ContainerUnpause(ctx, n.c.GetContainerID(), unpauseOptions); err != nil {
				return fmt.Errorf("docker target: thawing %s for a power loss: %w", n.spec.Name, err)
			}
		}
		if _, err := t.cli.ContainerKill(ctx, n.c.GetContainerID(), client.ContainerKillOptions{Signal: sig}); err != nil {
			return fmt.Errorf("docker target: power-loss on %s (signal %s): %w", n.spec.Name, sig, err)
		}
		if err := t.waitExited(ctx, n); err != nil {
			return fmt.Errorf("docker target: power-loss on %s: %w", n.spec.Name, err)
		}
		n.state.Store(stateDown)
		return nil
	})
}

// Pause freezes each running node's processes (docker pause: the cgroup freezer). Connections to it stay
// open and stall.
func (t *Target) Pause(ctx context.Context, nodes []string) error {
	return t.each(ctx, nodes, func(ctx context.Context, n *node) error {
		st, err := t.inspect(ctx, n)
		if err != nil || !st.Running || st.Paused {
			return err
		}
		if _, err := t.cli.ContainerPause(ctx, n.c.GetContainerID(), client.ContainerPauseOptions{}); err != nil {
			return fmt.Errorf("docker target: pausing %s: %w", n.spec.Name, err)
		}
		n.state.Store(statePaused)
		return nil
	})
}

// Resume thaws each paused node; others are left alone.
func (t *Target) Resume(ctx context.Context, nodes []string) error {
	return t.each(ctx, nodes, func(ctx context.Context, n *node) error {
		st, err := t.inspect(ctx, n)
		if err != nil || !st.Paused {
			return err
		}
		if _, err := t.cli.ContainerUnpause(ctx, n.c.GetContainerID(), unpauseOptions); err != nil {
			return fmt.Errorf("docker target: resuming %s: %w", n.spec.Name, err)
		}
		n.state.Store(stateUp)
		return nil
	})
}

// Partition carries out a partition that isolates some nodes completely (from every other node and from
// clients, both ways) by disconnecting their containers from the cluster network. Other shapes (one-way
// cuts, a leader cut from its followers only, cuts that leave clients connected) cannot be made with docker
// network disconnect and are refused with nemesis.ErrUnsupported. A link limited to the data plane is cut
// whole (the controller listener goes with it). Both modes behave the same: new connections to an isolated
// node fail at once (its name no longer resolves; its mapped port refuses), established ones stall until
// TCP gives up.
func (t *Target) Partition(ctx context.Context, links []nemesis.Link, mode nemesis.Mode) (func() error, error) {
	if mode != "" && mode != nemesis.Drop && mode != nemesis.Reset {
		return nil, fmt.Errorf("%w: partition mode %q", nemesis.ErrUnsupported, mode)
	}
	isolated, err := isolatedNodes(t.names, links)
	if err != nil {
		return nil, err
	}
	t.netMu.Lock()
	defer t.netMu.Unlock()
	var errs []error
	for _, name := range isolated {
		if t.cutCount(name) == 0 {
			errs = append(errs, t.disconnect(ctx, name))
		}
	}
	id := t.nextCut
	t.nextCut++
	t.cuts[id] = isolated
	if err := errors.Join(errs...); err != nil {
		delete(t.cuts, id)
		return nil, errors.Join(err, t.reconnectUncut(context.Background(), isolated))
	}
	var once sync.Once
	var healErr error
	return func() error {
		once.Do(func() {
			t.netMu.Lock()
			defer t.netMu.Unlock()
			if _, ok := t.cuts[id]; !ok {
				return // HealNetwork already healed it
			}
			delete(t.cuts, id)
			hctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			healErr = t.reconnectUncut(hctx, isolated)
		})
		return healErr
	}, nil
}

// HealNetwork reconnects every node a partition disconnected.
func (t *Target) HealNetwork(ctx context.Context) error {
	t.netMu.Lock()
	defer t.netMu.Unlock()
	var names []string
	for _, ns := range t.cuts {
		names = append(names, ns...)
	}
	t.cuts = map[int][]string{}
	return t.reconnectUncut(ctx, names)
}

// Corrupt is not supported: Docker has no proxy between clients and brokers that could alter a request.
func (t *Target) Corrupt(context.Context, []string, float64) (func() error, error) {
	return nil, fmt.Errorf("%w: corrupt (the docker target has no proxy between clients and brokers)", nemesis.ErrUnsupported)
}

// LoseResponses is not supported: Docker cannot drop a node's responses after it applied a request.
func (t *Target) LoseResponses(context.Context, []string) (func() error, error) {
	return nil, fmt.Errorf("%w: lose-responses (the docker target has no proxy between clients and brokers)", nemesis.ErrUnsupported)
}

// ResetConnections is not supported: Docker cannot break a container's established connections.
func (t *Target) ResetConnections(context.Context, []string) error {
	return fmt.Errorf("%w: reset-connections (the docker target cannot break established connections)", nemesis.ErrUnsupported)
}

// Latency is not supported: it would need traffic control (tc netem) inside each container.
func (t *Target) Latency(context.Context, []string, time.Duration, time.Duration) (func() error, error) {
	return nil, fmt.Errorf("%w: latency (the docker target has no traffic control in its containers)", nemesis.ErrUnsupported)
}

// isolatedNodes returns the nodes links isolate completely: every link to and from each of them, toward
// every other node and the client, is cut, and no other link is. Anything else cannot be done by
// disconnecting containers and is an error wrapping nemesis.ErrUnsupported that names a link in the way.
func isolatedNodes(nodes []string, links []nemesis.Link) ([]string, error) {
	if len(links) == 0 {
		return nil, fmt.Errorf("%w: a partition with no links", nemesis.ErrUnsupported)
	}
	endpoints := append(append([]string(nil), nodes...), nemesis.Client)
	known := map[string]bool{}
	for _, e := range endpoints {
		known[e] = true
	}
	type dir struct{ from, to string }
	cut := map[dir]bool{}
	for _, l := range links {
		if !known[l.From] || !known[l.To] || l.From == l.To {
			return nil, fmt.Errorf("docker target: partition link %s→%s names no pair of distinct nodes (nodes: %s)", l.From, l.To, strings.Join(nodes, ", "))
		}
		cut[dir{l.From, l.To}] = true
	}
	in := map[string]bool{}
	var isolated []string
	for _, x := range nodes {
		all := true
		for _, y := range endpoints {
			if y != x && (!cut[dir{x, y}] || !cut[dir{y, x}]) {
				all = false
				break
			}
		}
		if all {
			in[x] = true
			isolated = append(isolated, x)
		}
	}
	var stray []string
	for d := range cut {
		if !in[d.from] && !in[d.to] {
			stray = append(stray, d.from+"→"+d.to)
		}
	}
	sort.Strings(stray)
	if len(isolated) == 0 || len(stray) > 0 {
		what := "no node is cut from every other node and the clients in both directions"
		if len(stray) > 0 {
			what = "link " + stray[0] + " would be cut between nodes that keep other links"
		}
		return nil, fmt.Errorf("%w: partition: docker network disconnect isolates a node from everyone at once, and in this partition %s (one-way, leader-from-followers-only and similar shapes need a proxy)",
			nemesis.ErrUnsupported, what)
	}
	return isolated, nil
}

// cutCount is how many active partitions disconnect name; netMu must be held.
func (t *Target) cutCount(name string) int {
	c := 0
	for _, ns := range t.cuts {
		for _, n := range ns {
			if n == name {
				c++
			}
		}
	}
	return c
}

// reconnectUncut reconnects those of names no active partition still cuts; netMu must be held.
func (t *Target) reconnectUncut(ctx context.Context, names []string) error {
	var errs []error
	done := map[string]bool{}
	for _, name := range names {
		if done[name] || t.cutCount(name) > 0 {
			continue
		}
		done[name] = true
		errs = append(errs, t.reconnect(ctx, name))
	}
	return errors.Join(errs...)
}

func (t *Target) disconnect(ctx context.Context, name string) error {
	n, err := t.node(name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	n.ip = t.networkIP(ctx, n)
	if _, err := t.cli.NetworkDisconnect(ctx, t.network.ID, client.NetworkDisconnectOptions{Container: n.c.GetContainerID(), Force: true}); err != nil {
		return fmt.Errorf("docker target: disconnecting %s from network %s: %w", name, t.network.Name, err)
	}
	return nil
}

// reconnect attaches name's container to the cluster network again under its alias; a container that is
// already attached is left alone.
func (t *Target) reconnect(ctx context.Context, name string) error {
	n, err := t.node(name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	res, err := t.cli.ContainerInspect(ctx, n.c.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		return fmt.Errorf("docker target: inspecting %s before reconnecting it: %w", name, err)
	}
	if ns := res.Container.NetworkSettings; ns != nil {
		if _, ok := ns.Networks[t.network.Name]; ok {
			return nil
		}
	}
	_, err = t.cli.NetworkConnect(ctx, t.network.ID, client.NetworkConnectOptions{Container: n.c.GetContainerID(),
		EndpointConfig: &mnet.EndpointSettings{Aliases: []string{name}}})
	if err != nil {
		return fmt.Errorf("docker target: reconnecting %s to network %s: %w", name, t.network.Name, err)
	}
	// A running node bound its controller listener to its address when it started; if the engine hands it a
	// different one now, the node is reachable by name but deaf on that listener. Say so rather than leave a
	// cluster that cannot heal.
	if old, now := n.ip, t.networkIP(ctx, n); old != "" && now != "" && old != now {
		if st, err := t.inspect(ctx, n); err == nil && st.Running {
			return fmt.Errorf("docker target: %s came back on network %s with address %s instead of %s; its listeners bound to the old one (restart it)",
				name, t.network.Name, now, old)
		}
	}
	return nil
}

// networkIP is n's address on the cluster network ("" when it has none or the engine does not answer).
func (t *Target) networkIP(ctx context.Context, n *node) string {
	res, err := t.cli.ContainerInspect(ctx, n.c.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil || res.Container.NetworkSettings == nil {
		return ""
	}
	ep, ok := res.Container.NetworkSettings.Networks[t.network.Name]
	if !ok || ep == nil || !ep.IPAddress.IsValid() {
		return ""
	}
	return ep.IPAddress.String()
}

// each runs op on every named node at once (faults aimed at several nodes land together, as a power loss of
// every replica must), each under its node's op lock and a bounded context, and joins the errors.
func (t *Target) each(ctx context.Context, names []string, op func(context.Context, *node) error) error {
	ns := make([]*node, 0, len(names))
	for _, name := range names {
		n, err := t.node(name)
		if err != nil {
			return err
		}
		ns = append(ns, n)
	}
	errs := make([]error, len(ns))
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Go(func() {
			n.op.Lock()
			defer n.op.Unlock()
			octx, cancel := context.WithTimeout(ctx, readyTimeout+n.spec.StopTimeout+opTimeout)
			defer cancel()
			errs[i] = op(octx, n)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// inspect returns the engine's view of n's container state.
func (t *Target) inspect(ctx context.Context, n *node) (*container.State, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	res, err := t.cli.ContainerInspect(ctx, n.c.GetContainerID(), client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker target: inspecting %s: %w", n.spec.Name, err)
	}
	if res.Container.State == nil {
		return nil, fmt.Errorf("docker target: inspecting %s: the engine reported no state", n.spec.Name)
	}
	return res.Container.State, nil
}

// waitExited waits (bounded) until n's container is no longer running.
func (t *Target) waitExited(ctx context.Context, n *node) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	for {
		st, err := t.inspect(ctx, n)
		if err != nil {
			return err
		}
		if !st.Running {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker target: %s still running %v after it was signalled", n.spec.Name, opTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readyCount counts n's ready lines in its whole log so far.
func (t *Target) readyCount(ctx context.Context, n *node) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	rc, err := n.c.Logs(ctx)
	if err != nil {
		return 0, fmt.Errorf("docker target: reading the log of %s: %w", n.spec.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxLogBytes))
	if err != nil {
		return 0, fmt.Errorf("docker target: reading the log of %s: %w", n.spec.Name, err)
	}
	return bytes.Count(b, []byte(n.spec.ReadyLog)), nil
}
