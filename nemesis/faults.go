package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// faults maps every kind to its implementation. Basic faults act through one Cluster method; composites are
// sequences of basic ones; client faults act through Clients.
var faults map[Kind]fault

func init() {
	faults = map[Kind]fault{
		Kill:            processFault(Kill),
		Stop:            processFault(Stop),
		Pause:           processFault(Pause),
		PowerLoss:       processFault(PowerLoss),
		Partition:       partitionFault,
		LoseResponses:   loseResponsesFault,
		Latency:         latencyFault,
		ResetConns:      resetFault,
		Corrupt:         corruptFault,
		UncleanElection: uncleanElectionFault,
		RetryStorm:      retryStormFault,
		RollingBounce:   rollingBounceFault,
		ControllerKill:  controllerKillFault,
		PowerLossAll:    powerLossAllFault,
		CrashProducer:   crashFault(true),
		CrashConsumer:   crashFault(false),
		JoinConsumer:    joinConsumerFault,
		LeaveConsumer:   leaveConsumerFault,
	}
}

// processFault kills, stops, pauses or power-cuts the targets; undo restarts (or resumes) them.
func processFault(k Kind) fault {
	return func(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
		nodes, err := r.resolve(ctx, p.Target, rng)
		if err != nil {
			return nil, "", nil, err
		}
		c := r.Cluster
		act, undo := c.Kill, c.Restart
		switch k {
		case Stop:
			act = c.Stop
		case Pause:
			act, undo = c.Pause, c.Resume
		case PowerLoss:
			act = c.PowerLoss
		}
		if err := act(ctx, nodes); err != nil {
			return nodes, "", nil, err
		}
		return nodes, "", func(ctx context.Context) error { return undo(ctx, nodes) }, nil
	}
}

func controllerKillFault(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
	p.Target = "controller"
	return processFault(Kill)(ctx, r, p, rng)
}

func powerLossAllFault(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
	p.Target = "all"
	return processFault(PowerLoss)(ctx, r, p, rng)
}

// partitionFault builds the links of a shape and cuts them.
func partitionFault(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
	shape := p.Shape
	if shape == "" || shape == RandomShape {
		shape = Shapes[rng.IntN(len(Shapes))]
	}
	links, targets, err := r.shapeLinks(ctx, shape, p.Target, rng)
	if err != nil {
		return nil, string(shape), nil, err
	}
	mode := p.Mode
	if mode == "" {
		mode = Drop
	}
	heal, err := r.Cluster.Partition(ctx, links, mode)
	if err != nil {
		return targets, string(shape), nil, err
	}
	return targets, fmt.Sprintf("%s, %s, %d links", shape, mode, len(links)), func(context.Context) error { return heal() }, nil
}

// shapeLinks returns the links a shape cuts and the nodes it is centred on.
func (r *Runner) shapeLinks(ctx context.Context, shape Shape, target string, rng *rand.Rand) ([]Link, []string, error) {
	nodes := r.Cluster.Nodes()
	leaderShaped := shape == IsolateLeaderFollowers || shape == IsolateLeaderClients || shape == IsolateLeaderBoth
	if leaderShaped && !strings.HasPrefix(target, "leader(") {
		t := r.firstTopicLeader()
		if t == "" {
			return nil, nil, fmt.Errorf("shape %s needs target leader(topic/partition)", shape)
		}
		target = t
	}
	switch shape {
	case IsolateNode, OneWay:
		if target == "" {
			target = "random"
		}
		n, err := r.resolve(ctx, target, rng)
		if err != nil {
			return nil, nil, err
		}
		others := append(without(nodes, n...), Client)
		if shape == IsolateNode {
			return cut(n, others, ""), n, nil
		}
		var links []Link
		for _, o := range without(nodes, n...) {
			for _, x := range n {
				links = append(links, Link{From: o, To: x}) // x stops hearing o; o still hears x
			}
		}
		return links, n, nil
	case IsolateLeaderFollowers, IsolateLeaderClients, IsolateLeaderBoth:
		l, f, err := r.leaderAndFollowers(ctx, target)
		if err != nil {
			return nil, nil, err
		}
		var links []Link
		if shape != IsolateLeaderClients {
			links = append(links, cut([]string{l}, f, PlaneData)...)
		}
		if shape != IsolateLeaderFollowers {
			links = append(links, cut([]string{l}, []string{Client}, "")...)
		}
		return links, []string{l}, nil
	case MajorityMinority:
		shuffled := slices.Clone(nodes)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		minority := sorted(shuffled[:max(1, (len(nodes)-1)/2)])
		return cut(minority, without(nodes, minority...), ""), minority, nil
	case Ring, Bridge:
		order := slices.Clone(nodes)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		n := len(order)
		var links []Link
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				adjacent := j == i+1 || (shape == Ring && i == 0 && j == n-1)
				if !adjacent {
					links = append(links, cut([]string{order[i]}, []string{order[j]}, "")...)
				}
			}
		}
		if len(links) == 0 {
			return nil, nil, fmt.Errorf("shape %s needs more nodes than %d to cut anything", shape, n)
		}
		return links, order, nil
	}
	return nil, nil, fmt.Errorf("unknown shape %q", shape)
}

// firstTopicLeader is the default leader target of leader-shaped partitions: partition 0 of the first topic.
func (r *Runner) firstTopicLeader() string {
	if len(r.Topics) == 0 {
		return ""
	}
	return "leader(" + r.Topics[0] + "/0)"
}

func loseResponsesFault(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
	nodes, err := r.resolveOrAll(ctx, p.Target, rng)
	if err != nil {
		return nil, "", nil, err
	}
	heal, err := r.Cluster.LoseResponses(ctx, nodes)
	if err != nil {
		return nodes, "", nil, err
	}
	return nodes, "responses to clients lost", func(context.Context) error { return heal() }, nil
}

func latencyFault(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
	nodes, err := r.resolveOrAll(ctx, p.Target, rng)
	if err != nil {
		return nil, "", nil, err
	}
	mean := p.Latency
	if mean == 0 {
		mean = 50 * time.Millisecond
	}
	heal, err := r.Cluster.Latency(ctx, nodes, mean, p.Jitter)
	if err != nil {
		return nodes, "", nil, err
	}
	return nodes, fmt.Sprintf("%v ± %v", mean, p.Jitter), func(context.Context) error { return heal() }, nil
}

// corruptFault flips one byte, anywhere after the API key, in a share of the produce requests clients send to
// the targets (default: every node), until undone.
func corruptFault(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
	nodes, err := r.resolveOrAll(ctx, p.Target, rng)
	if err != nil {
		return nil, "", nil, err
	}
	fraction := p.Fraction
	if fraction == 0 {
		fraction = DefaultCorruptFraction
	}
	heal, err := r.Cluster.Corrupt(ctx, nodes, fraction)
	if err != nil {
		return nodes, "", nil, err
	}
	return nodes, fmt.Sprintf("%g of produce requests corrupted", fraction), func(context.Context) error { return heal() }, nil
}

func resetFault(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
	nodes, err := r.resolveOrAll(ctx, p.Target, rng)
	if err != nil {
		return nil, "", nil, err
	}
	return nodes, "", nil, r.Cluster.ResetConnections(ctx, nodes)
}

// retryStormFault loses producers' responses on the targets and resets their connections every so often, so
// many producers retry at once. It runs until undone.
func retryStormFault(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
	nodes, err := r.resolveOrAll(ctx, p.Target, rng)
	if err != nil {
		return nil, "", nil, err
	}
	heal, err := r.Cluster.LoseResponses(ctx, nodes)
	if err != nil {
		return nodes, "", nil, err
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(150 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				_ = r.Cluster.ResetConnections(ctx, nodes)
			}
		}
	}()
	return nodes, "responses lost, connections reset every 150ms", func(context.Context) error {
		close(stop)
		<-done
		return heal()
	}, nil
}

// uncleanElectionFault sets up the conditions for an unclean election: cut the followers off the leader (data
// plane only: the leader still reaches the controller, so it can shrink the ISR), wait until the ISR is the
// leader alone, let writes land on it alone, kill it, and heal the followers. Whether a stale follower is
// then elected is the controller's decision under the topic's unclean.leader.election.enable; undo restarts
// the old leader.
func uncleanElectionFault(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
	t, err := ParseTarget(p.Target)
	if err != nil || t.Kind != "leader" {
		if tgt := r.firstTopicLeader(); tgt != "" {
			t, _ = ParseTarget(tgt)
		} else {
			return nil, "", nil, fmt.Errorf("unclean-election needs target leader(topic/partition)")
		}
	}
	l, f, err := r.leaderAndFollowers(ctx, fmt.Sprintf("leader(%s/%d)", t.Topic, t.Partition))
	if err != nil {
		return nil, "", nil, err
	}
	heal, err := r.Cluster.Partition(ctx, cut([]string{l}, f, PlaneData), Drop)
	if err != nil {
		return []string{l}, "", nil, err
	}
	shrunk := waitFor(ctx, r.Settle, func() bool {
		isr, err := r.Cluster.ISR(ctx, t.Topic, t.Partition)
		return err == nil && len(isr) == 1 && isr[0] == l
	})
	if !shrunk {
		_ = heal()
		return []string{l}, "", nil, fmt.Errorf("the ISR of %s/%d did not shrink to %s alone within %v", t.Topic, t.Partition, l, r.Settle)
	}
	// Let writes land on the leader alone before it dies.
	sleepUntil(ctx, time.Now().Add(500*time.Millisecond))
	if err := r.Cluster.Kill(ctx, []string{l}); err != nil {
		_ = heal()
		return []string{l}, "", nil, err
	}
	if err := heal(); err != nil {
		return []string{l}, "", nil, err
	}
	return []string{l}, fmt.Sprintf("ISR of %s/%d shrank to %s, which was killed; followers %v healed", t.Topic, t.Partition, l, f),
		func(ctx context.Context) error { return r.Cluster.Restart(ctx, []string{l}) }, nil
}

// rollingBounceFault restarts each node cleanly in turn, waiting for the cluster to be healthy in between.
func rollingBounceFault(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
	nodes := r.Cluster.Nodes()
	for _, n := range nodes {
		if err := r.Cluster.Stop(ctx, []string{n}); err != nil {
			return nodes, "", nil, fmt.Errorf("stopping %s: %w", n, err)
		}
		sleepUntil(ctx, time.Now().Add(300*time.Millisecond))
		if err := r.Cluster.Restart(ctx, []string{n}); err != nil {
			return nodes, "", nil, fmt.Errorf("restarting %s: %w", n, err)
		}
		if !waitFor(ctx, r.Settle, func() bool { return r.Cluster.Healthy(ctx, r.Topics) == nil }) {
			return nodes, "", nil, fmt.Errorf("cluster not healthy within %v after restarting %s", r.Settle, n)
		}
	}
	return nodes, "each node stopped cleanly and restarted in turn", nil, nil
}

// crashFault crashes a producer or consumer; undo starts it again under a new process number.
func crashFault(producer bool) fault {
	return func(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
		names := r.Clients.Consumers()
		crash, restart := r.Clients.CrashConsumer, r.Clients.RestartConsumer
		if producer {
			names = r.Clients.Producers()
			crash, restart = r.Clients.CrashProducer, r.Clients.RestartProducer
		}
		name, err := pickClient(p.Target, names, rng)
		if err != nil {
			return nil, "", nil, err
		}
		if err := crash(ctx, name); err != nil {
			return []string{name}, "", nil, err
		}
		return []string{name}, "", func(ctx context.Context) error { return restart(ctx, name) }, nil
	}
}

func joinConsumerFault(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
	name, err := r.Clients.JoinConsumer(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	return []string{name}, "a new member joined", func(ctx context.Context) error { return r.Clients.LeaveConsumer(ctx, name) }, nil
}

func leaveConsumerFault(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) ([]string, string, func(context.Context) error, error) {
	name, err := pickClient(p.Target, r.Clients.Consumers(), rng)
	if err != nil {
		return nil, "", nil, err
	}
	if err := r.Clients.LeaveConsumer(ctx, name); err != nil {
		return []string{name}, "", nil, err
	}
	return []string{name}, "left the group cleanly", func(ctx context.Context) error { return r.Clients.RestartConsumer(ctx, name) }, nil
}

func pickClient(target string, names []string, rng *rand.Rand) (string, error) {
	if len(names) == 0 {
		return "", fmt.Errorf("no such clients in this workload")
	}
	switch {
	case target == "" || strings.HasPrefix(target, "random"):
		return names[rng.IntN(len(names))], nil
	case slices.Contains(names, target):
		return target, nil
	}
	return "", fmt.Errorf("no client %q (have %v)", target, names)
}

// resolveOrAll resolves target, defaulting to every node: network faults without a target act on the whole
// cluster.
func (r *Runner) resolveOrAll(ctx context.Context, target string, rng *rand.Rand) ([]string, error) {
	if target == "" {
		target = "all"
	}
	return r.resolve(ctx, target, rng)
}
