package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
)

// resolve turns a target into node names now, drawing from rng where the target is random.
func (r *Runner) resolve(ctx context.Context, target string, rng *rand.Rand) ([]string, error) {
	t, err := ParseTarget(target)
	if err != nil {
		return nil, err
	}
	nodes := r.Cluster.Nodes()
	switch t.Kind {
	case "name":
		if !slices.Contains(nodes, t.Name) {
			return nil, fmt.Errorf("no node %s (nodes: %v)", t.Name, nodes)
		}
		return []string{t.Name}, nil
	case "leader":
		l, err := r.Cluster.Leader(ctx, t.Topic, t.Partition)
		if err != nil {
			return nil, fmt.Errorf("finding the leader of %s/%d: %w", t.Topic, t.Partition, err)
		}
		if l == "" {
			return nil, fmt.Errorf("%s/%d has no leader now", t.Topic, t.Partition)
		}
		return []string{l}, nil
	case "followers":
		return r.followers(ctx, t.Topic, t.Partition)
	case "controller":
		c, err := r.Cluster.Controller(ctx)
		if err != nil {
			return nil, fmt.Errorf("finding the active controller: %w", err)
		}
		if c == "" {
			return nil, fmt.Errorf("no active controller now")
		}
		return []string{c}, nil
	case "random":
		return []string{nodes[rng.IntN(len(nodes))]}, nil
	case "minority":
		shuffled := slices.Clone(nodes)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		return sorted(shuffled[:max(1, (len(nodes)-1)/2)]), nil
	case "all":
		return slices.Clone(nodes), nil
	}
	return nil, fmt.Errorf("target %q names clients, not nodes", target)
}

func (r *Runner) followers(ctx context.Context, topic string, partition int32) ([]string, error) {
	l, err := r.Cluster.Leader(ctx, topic, partition)
	if err != nil {
		return nil, err
	}
	reps, err := r.Cluster.Replicas(ctx, topic, partition)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range reps {
		if n != l {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s/%d has no followers", topic, partition)
	}
	return out, nil
}

// leaderAndFollowers resolves a leader-shaped target: the leader named by target (or, for a node target, that
// node and the followers of nothing).
func (r *Runner) leaderAndFollowers(ctx context.Context, target string) (leader string, followers []string, err error) {
	t, err := ParseTarget(target)
	if err != nil {
		return "", nil, err
	}
	if t.Kind != "leader" {
		return "", nil, fmt.Errorf("target %q: this fault needs leader(topic/partition)", target)
	}
	l, err := r.Cluster.Leader(ctx, t.Topic, t.Partition)
	if err != nil || l == "" {
		return "", nil, fmt.Errorf("%s/%d has no leader now (%v)", t.Topic, t.Partition, err)
	}
	f, err := r.followers(ctx, t.Topic, t.Partition)
	return l, f, err
}

func sorted(xs []string) []string {
	slices.Sort(xs)
	return xs
}

// cut returns the links separating a from b in both directions.
func cut(a, b []string, plane string) []Link {
	var out []Link
	for _, x := range a {
		for _, y := range b {
			if x != y {
				out = append(out, Link{From: x, To: y, Plane: plane}, Link{From: y, To: x, Plane: plane})
			}
		}
	}
	return out
}

func without(all []string, drop ...string) []string {
	var out []string
	for _, x := range all {
		if !slices.Contains(drop, x) {
			out = append(out, x)
		}
	}
	return out
}
