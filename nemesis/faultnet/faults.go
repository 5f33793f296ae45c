package faultnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// FaultID names one active fault so it can be healed on its own.
type FaultID uint64

// Kind is the kind of a fault.
type Kind string

// The fault kinds.
const (
	KindPartition     Kind = "partition"
	KindLatency       Kind = "latency"
	KindLoseResponses Kind = "lose-responses"
	KindPause         Kind = "pause"
)

// Mode is how a partition treats connections across a blocked link (same values as the nemesis spec).
type Mode string

const (
	// Drop stalls bytes, as lost packets do: nothing is lost or reordered, the stream resumes intact after heal
	// unless the endpoints time out. New connections are accepted and stall.
	Drop Mode = "drop"
	// Reset breaks existing connections at once and resets new ones right after accept.
	Reset Mode = "reset"
)

// Link is one direction of traffic: bytes sent by From toward To. Either may be Client.
type Link struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func (l Link) String() string { return l.From + "->" + l.To }

// ErrUnknownFault is returned by Heal for an id that is not active (never started, or already healed).
var ErrUnknownFault = errors.New("faultnet: no such active fault")

// fault is one active rule. Its fields never change after it is added, except rng, which is used under Net.mu.
type fault struct {
	id     FaultID
	kind   Kind
	mode   Mode          // partition
	links  map[Link]bool // partition, latency
	node   string        // pause, lose-responses, corrupt
	mean   time.Duration // latency
	jitter time.Duration // latency
	rng    *rand.Rand    // latency, corrupt; owned by the Net while the fault is active
	// fraction is the share of produce requests a corrupt fault hits.
	fraction float64
	since    time.Time
	until    time.Time   // zero: until healed
	expiry   *time.Timer // lose-responses with a duration
}

// FaultInfo describes an active fault for status lines and nemesis.jsonl.
type FaultInfo struct {
	ID      FaultID       `json:"id"`
	Kind    Kind          `json:"fault"`
	Mode    Mode          `json:"mode,omitempty"`
	Targets []string      `json:"targets"`
	Links   []Link        `json:"links,omitempty"`
	Mean    time.Duration `json:"mean,omitempty"`
	Jitter  time.Duration `json:"jitter,omitempty"`
	// Fraction is the share of produce requests a corrupt fault hits.
	Fraction float64   `json:"fraction,omitempty"`
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until,omitzero"`
}

// String renders the fault on one line, e.g. "#3 partition(drop) node-1->node-2 node-2->node-1".
func (f FaultInfo) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s", f.ID, f.Kind)
	switch f.Kind {
	case KindPartition:
		fmt.Fprintf(&b, "(%s)", f.Mode)
	case KindLatency:
		fmt.Fprintf(&b, "(%s±%s)", f.Mean, f.Jitter)
	case KindCorrupt:
		fmt.Fprintf(&b, "(%g of produce requests)", f.Fraction)
	}
	if len(f.Links) > 0 {
		for _, l := range f.Links {
			b.WriteString(" " + l.String())
		}
	} else {
		b.WriteString(" " + strings.Join(f.Targets, ","))
	}
	if !f.Until.IsZero() {
		fmt.Fprintf(&b, " until %s", f.Until.Format(time.RFC3339Nano))
	}
	return b.String()
}

// Partition blocks every link in links until healed. mode "" means Drop. Build links with Isolate, Cut and
// OneWay. Under Reset, every live connection with either direction on a link is reset at once.
func (n *Net) Partition(links []Link, mode Mode) (FaultID, error) {
	if mode == "" {
		mode = Drop
	}
	if mode != Drop && mode != Reset {
		return 0, fmt.Errorf("faultnet: partition: unknown mode %q (want %q or %q)", mode, Drop, Reset)
	}
	set, err := n.linkSet(links)
	if err != nil {
		return 0, fmt.Errorf("faultnet: partition: %w", err)
	}
	f := &fault{kind: KindPartition, mode: mode, links: set}
	id, victims := n.add(f)
	for _, c := range victims {
		c.shutdown(errResetByFault)
	}
	return id, nil
}

// Isolate returns the links cutting node off from every registered node and from clients, both directions.
func (n *Net) Isolate(node string) []Link {
	others := append(n.Nodes(), Client)
	var links []Link
	for _, o := range others {
		if o != node {
			links = append(links, Link{From: node, To: o}, Link{From: o, To: node})
		}
	}
	return links
}

// Cut returns the links between every member of a and every member of b, both directions.
func Cut(a, b []string) []Link {
	var links []Link
	for _, x := range a {
		for _, y := range b {
			if x != y {
				links = append(links, Link{From: x, To: y}, Link{From: y, To: x})
			}
		}
	}
	return links
}

// OneWay returns the single link from -> to: from's bytes stop reaching to, while to's still reach from.
func OneWay(from, to string) []Link { return []Link{{From: from, To: to}} }

// Latency delays bytes from -> to by mean ± jitter (uniform, never negative), keeping their order. rng draws
// the delays; the Net uses it under its lock until the fault is healed, so the caller must not share it.
func (n *Net) Latency(from, to string, mean, jitter time.Duration, rng *rand.Rand) (FaultID, error) {
	return n.LatencyLinks(OneWay(from, to), mean, jitter, rng)
}

// LatencyLinks is Latency on every link in links (e.g. Isolate(node) for every link touching node).
func (n *Net) LatencyLinks(links []Link, mean, jitter time.Duration, rng *rand.Rand) (FaultID, error) {
	if mean < 0 || jitter < 0 {
		return 0, fmt.Errorf("faultnet: latency: mean %s and jitter %s must not be negative", mean, jitter)
	}
	if rng == nil {
		return 0, errors.New("faultnet: latency: a seeded rand source is required")
	}
	set, err := n.linkSet(links)
	if err != nil {
		return 0, fmt.Errorf("faultnet: latency: %w", err)
	}
	id, _ := n.add(&fault{kind: KindLatency, links: set, mean: mean, jitter: jitter, rng: rng})
	return id, nil
}

// LoseResponses makes every byte node writes to clients vanish, and breaks the connection right after that
// write: the node applied the request but the client never hears back. d > 0 heals it automatically after d;
// d == 0 lasts until healed.
func (n *Net) LoseResponses(node string, d time.Duration) (FaultID, error) {
	if d < 0 {
		return 0, fmt.Errorf("faultnet: lose-responses on %s: negative duration %s", node, d)
	}
	if err := n.checkNode(node, false); err != nil {
		return 0, fmt.Errorf("faultnet: lose-responses: %w", err)
	}
	f := &fault{kind: KindLoseResponses, node: node}
	if d > 0 {
		f.until = time.Now().Add(d)
	}
	id, _ := n.add(f)
	if d > 0 {
		n.mu.Lock()
		// Heal fails only if someone healed it first, which is the outcome wanted anyway.
		f.expiry = time.AfterFunc(d, func() { _ = n.Heal(id) })
		n.mu.Unlock()
	}
	return id, nil
}

// Pause stalls every connection to or from node in both directions, as a stopped process would; the node's own
// timers are the node's business. Resume(node) or Heal(id) undoes it.
func (n *Net) Pause(node string) (FaultID, error) {
	if err := n.checkNode(node, false); err != nil {
		return 0, fmt.Errorf("faultnet: pause: %w", err)
	}
	id, _ := n.add(&fault{kind: KindPause, node: node})
	return id, nil
}

// Resume heals every pause of node and reports how many there were.
func (n *Net) Resume(node string) int {
	return n.healWhere(func(f *fault) bool { return f.kind == KindPause && f.node == node })
}

// ResetConns resets every live connection to or from node once (a one-shot fault, nothing to heal) and reports
// how many it broke.
func (n *Net) ResetConns(node string) int {
	n.mu.Lock()
	var victims []*conn
	for c := range n.conns {
		if c.local == node || c.remote == node {
			victims = append(victims, c)
		}
	}
	n.mu.Unlock()
	for _, c := range victims {
		c.shutdown(errResetByFault)
	}
	if len(victims) > 0 {
		n.logger.Info("connections reset", "node", node, "count", len(victims))
	}
	return len(victims)
}

// Heal removes one fault; stalled bytes then flow again.
func (n *Net) Heal(id FaultID) error {
	if n.healWhere(func(f *fault) bool { return f.id == id }) == 0 {
		return fmt.Errorf("faultnet: heal #%d: %w", id, ErrUnknownFault)
	}
	return nil
}

// HealAll removes every fault and reports how many there were.
func (n *Net) HealAll() int {
	return n.healWhere(func(*fault) bool { return true })
}

// Blocked reports whether a partition or a pause currently stops bytes from -> to.
func (n *Net) Blocked(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stateLocked(from, to).blocked
}

// Active describes every active fault, oldest first.
func (n *Net) Active() []FaultInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]FaultInfo, 0, len(n.faults))
	for _, f := range n.faults {
		out = append(out, f.info())
	}
	return out
}

func (f *fault) info() FaultInfo {
	fi := FaultInfo{ID: f.id, Kind: f.kind, Since: f.since, Until: f.until}
	switch f.kind {
	case KindPartition, KindLatency:
		targets := map[string]bool{}
		for l := range f.links {
			fi.Links = append(fi.Links, l)
			targets[l.From], targets[l.To] = true, true
		}
		sort.Slice(fi.Links, func(i, j int) bool {
			a, b := fi.Links[i], fi.Links[j]
			return a.From < b.From || (a.From == b.From && a.To < b.To)
		})
		for t := range targets {
			fi.Targets = append(fi.Targets, t)
		}
		sort.Strings(fi.Targets)
		if f.kind == KindPartition {
			fi.Mode = f.mode
		} else {
			fi.Mean, fi.Jitter = f.mean, f.jitter
		}
	default:
		fi.Targets = []string{f.node}
		fi.Fraction = f.fraction
	}
	return fi
}

// add installs f, wakes every waiter, and returns the connections a reset partition must now break.
func (n *Net) add(f *fault) (FaultID, []*conn) {
	n.mu.Lock()
	n.nextID++
	f.id = n.nextID
	f.since = time.Now()
	n.faults = append(n.faults, f)
	var victims []*conn
	if f.kind == KindPartition && f.mode == Reset {
		for c := range n.conns {
			if f.links[Link{From: c.local, To: c.remote}] || f.links[Link{From: c.remote, To: c.local}] {
				victims = append(victims, c)
			}
		}
	}
	n.signalLocked()
	info := f.info()
	n.mu.Unlock()
	n.logger.Info("fault start", "fault", info.String(), "reset_conns", len(victims))
	return f.id, victims
}

func (n *Net) healWhere(match func(*fault) bool) int {
	n.mu.Lock()
	kept := n.faults[:0]
	var healed []FaultInfo
	for _, f := range n.faults {
		if !match(f) {
			kept = append(kept, f)
			continue
		}
		if f.expiry != nil {
			f.expiry.Stop()
		}
		healed = append(healed, f.info())
	}
	for i := len(kept); i < len(n.faults); i++ {
		n.faults[i] = nil
	}
	n.faults = kept
	if len(healed) > 0 {
		n.signalLocked()
	}
	n.mu.Unlock()
	for _, h := range healed {
		n.logger.Info("fault heal", "fault", h.String())
	}
	return len(healed)
}

// linkSet validates links: known nodes or Client, no self-links, at least one.
func (n *Net) linkSet(links []Link) (map[Link]bool, error) {
	if len(links) == 0 {
		return nil, errors.New("no links")
	}
	set := make(map[Link]bool, len(links))
	for _, l := range links {
		if l.From == l.To {
			return nil, fmt.Errorf("link %s: a node cannot be cut from itself", l)
		}
		if err := n.checkNode(l.From, true); err != nil {
			return nil, fmt.Errorf("link %s: %w", l, err)
		}
		if err := n.checkNode(l.To, true); err != nil {
			return nil, fmt.Errorf("link %s: %w", l, err)
		}
		set[l] = true
	}
	return set, nil
}

func (n *Net) checkNode(name string, clientOK bool) error {
	if name == Client {
		if clientOK {
			return nil
		}
		return fmt.Errorf("%q is not a node here", Client)
	}
	if _, ok := n.nodeAddr(name); !ok {
		return fmt.Errorf("unknown node %q", name)
	}
	return nil
}

// sampleDelayLocked draws one delay of a latency fault. Called with Net.mu held (the rng is not safe for
// concurrent use).
func (f *fault) sampleDelayLocked() time.Duration {
	d := f.mean
	if f.jitter > 0 {
		d += time.Duration((f.rng.Float64()*2 - 1) * float64(f.jitter))
	}
	return max(d, 0)
}
