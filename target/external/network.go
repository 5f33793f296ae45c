package external

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kafkatrial/kafkatrial/nemesis"
)

// Network faults run per node: isolate, latency and lose-responses each change one broker's traffic, and
// heal removes every network fault of that broker. Overlapping network faults on the same broker therefore
// heal together; the nemesis log still records each one's own stop.

// Partition carries out a link set that isolates whole nodes: each isolated node is cut both ways from every
// other broker (and from clients when isolate-cuts-clients is set), and nothing else is cut. It runs the
// isolate command on each isolated node. Any other link set (one-way cuts, a leader cut from its followers
// only, a data-plane-only cut, overlapping halves) is refused with an error wrapping nemesis.ErrUnsupported
// that names the links.
func (t *Target) Partition(ctx context.Context, links []nemesis.Link, mode nemesis.Mode) (func() error, error) {
	if !t.Supports(nemesis.Partition) {
		return nil, fmt.Errorf("no isolate and heal commands are configured: %w", nemesis.ErrUnsupported)
	}
	isolated, err := isolatedNodes(links, t.Nodes(), t.cfg.IsolateCutsClients)
	if err != nil {
		return nil, err
	}
	m := "drop"
	switch mode {
	case "", nemesis.Drop:
	case nemesis.Reset:
		m = "reset"
		if !slices.ContainsFunc(t.tmpl["isolate"].parts, func(p part) bool { return p.ph == "mode" }) {
			return nil, fmt.Errorf("a reset-mode partition needs {mode} in the isolate command, which only drops: %w", nemesis.ErrUnsupported)
		}
	default:
		return nil, fmt.Errorf("partition mode %q: %w", mode, nemesis.ErrUnsupported)
	}
	err = t.forEachVars(ctx, "isolate", isolated, map[string]string{"mode": m}, t.markNet, nil)
	heal := t.healOnce(isolated)
	if err != nil {
		// Leave nothing half-done: heal every node the isolate command may have touched.
		return nil, errors.Join(err, heal())
	}
	return heal, nil
}

// LoseResponses runs the lose-responses command on each node; the returned function heals them.
func (t *Target) LoseResponses(ctx context.Context, nodes []string) (func() error, error) {
	if !t.Supports(nemesis.LoseResponses) {
		return nil, fmt.Errorf("no lose-responses and heal commands are configured: %w", nemesis.ErrUnsupported)
	}
	return t.netFault(ctx, "lose-responses", nodes, nil)
}

// Corrupt runs the corrupt command on each node with {fraction}; the returned function heals them.
func (t *Target) Corrupt(ctx context.Context, nodes []string, fraction float64) (func() error, error) {
	if !t.Supports(nemesis.Corrupt) {
		return nil, fmt.Errorf("no corrupt and heal commands are configured: %w", nemesis.ErrUnsupported)
	}
	return t.netFault(ctx, "corrupt", nodes, map[string]string{"fraction": strconv.FormatFloat(fraction, 'g', -1, 64)})
}

// Latency runs the latency command on each node with {latency_ms} and {jitter_ms}; the returned function
// heals them.
func (t *Target) Latency(ctx context.Context, nodes []string, mean, jitter time.Duration) (func() error, error) {
	if !t.Supports(nemesis.Latency) {
		return nil, fmt.Errorf("no latency and heal commands are configured: %w", nemesis.ErrUnsupported)
	}
	return t.netFault(ctx, "latency", nodes, map[string]string{"latency_ms": millis(mean), "jitter_ms": millis(jitter)})
}

// ResetConnections runs the reset-connections command on each node once.
func (t *Target) ResetConnections(ctx context.Context, nodes []string) error {
	if !t.Supports(nemesis.ResetConns) {
		return fmt.Errorf("no reset-connections command is configured: %w", nemesis.ErrUnsupported)
	}
	return t.forEach(ctx, "reset-connections", nodes, nil, nil)
}

// HealNetwork runs the heal command on every node with a network fault this target made and not yet healed.
func (t *Target) HealNetwork(ctx context.Context) error {
	t.mu.Lock()
	var nodes []string
	for _, id := range t.ids {
		if t.netFaulted[id] {
			nodes = append(nodes, nodeName(id))
		}
	}
	t.mu.Unlock()
	if len(nodes) == 0 {
		return nil
	}
	return t.heal(ctx, nodes)
}

func (t *Target) netFault(ctx context.Context, key string, nodes []string, extra map[string]string) (func() error, error) {
	err := t.forEachVars(ctx, key, nodes, extra, t.markNet, nil)
	heal := t.healOnce(nodes)
	if err != nil {
		return nil, errors.Join(err, heal())
	}
	return heal, nil
}

// markNet records a network fault on id; called under t.mu.
func (t *Target) markNet(id int32) { t.netFaulted[id] = true }

// healOnce returns a function that heals nodes the first time it is called (the nemesis may call a heal
// function and then HealNetwork). It runs on its own bounded context: heal functions take none.
func (t *Target) healOnce(nodes []string) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), t.cfg.Timeout*time.Duration(len(nodes)+1))
			defer cancel()
			err = t.heal(ctx, nodes)
		})
		return err
	}
}

func (t *Target) heal(ctx context.Context, nodes []string) error {
	return t.forEach(ctx, "heal", nodes, nil, func(id int32) { delete(t.netFaulted, id) })
}

// isolatedNodes returns the nodes a link set isolates, or an error wrapping nemesis.ErrUnsupported when the
// set is not exactly the isolation of whole nodes.
func isolatedNodes(links []nemesis.Link, nodes []string, cutsClients bool) ([]string, error) {
	if len(links) == 0 {
		return nil, fmt.Errorf("an empty partition: %w", nemesis.ErrUnsupported)
	}
	type dir struct{ from, to string }
	set := map[dir]bool{}
	for _, l := range links {
		if l.Plane != "" {
			return nil, fmt.Errorf("partition %s cuts only the %s plane, and the isolate command cuts every plane: %w",
				describeLinks(links), l.Plane, nemesis.ErrUnsupported)
		}
		set[dir{l.From, l.To}] = true
	}
	cutOf := func(n string) []dir {
		var ds []dir
		for _, o := range nodes {
			if o != n {
				ds = append(ds, dir{n, o}, dir{o, n})
			}
		}
		if cutsClients {
			ds = append(ds, dir{n, nemesis.Client}, dir{nemesis.Client, n})
		}
		return ds
	}
	var isolated []string
	covered := map[dir]bool{}
	for _, n := range nodes {
		ds := cutOf(n)
		if !slices.ContainsFunc(ds, func(d dir) bool { return !set[d] }) {
			isolated = append(isolated, n)
			for _, d := range ds {
				covered[d] = true
			}
		}
	}
	if len(isolated) == 0 || len(covered) != len(set) {
		what := "whole nodes from every other broker"
		if cutsClients {
			what = "whole nodes from every other broker and from clients"
		}
		return nil, fmt.Errorf("partition %s does not isolate %s, which is all the isolate command can do: %w",
			describeLinks(links), what, nemesis.ErrUnsupported)
	}
	return isolated, nil
}

// describeLinks names at most a dozen links, pairing the two directions of a cut as a<->b.
func describeLinks(links []nemesis.Link) string {
	const limit = 12
	seen := map[string]bool{}
	var parts []string
	for _, l := range links {
		both := slices.ContainsFunc(links, func(o nemesis.Link) bool { return o.From == l.To && o.To == l.From && o.Plane == l.Plane })
		a, b, arrow := l.From, l.To, "->"
		if both {
			arrow = "<->"
			if a > b {
				a, b = b, a
			}
		}
		s := a + arrow + b
		if l.Plane != "" {
			s += " (" + l.Plane + ")"
		}
		if !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	if len(parts) > limit {
		return "[" + strings.Join(parts[:limit], " ") + " and " + strconv.Itoa(len(parts)-limit) + " more]"
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// millis renders a duration as whole milliseconds, rounded to nearest.
func millis(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Millisecond/2)/time.Millisecond), 10)
}
