package nemesis

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind names a fault. The names are the scenario format's vocabulary (nemesis.schedule[].fault).
type Kind string

// Process, storage and network faults on brokers.
const (
	Kill          Kind = "kill"           // hard kill: memory gone; comes back (restart) from disk only
	Stop          Kind = "stop"           // clean stop (controlled shutdown) and later start
	Pause         Kind = "pause"          // the node stops working, its connections stall (SIGSTOP)
	PowerLoss     Kind = "power-loss"     // kill plus lose-unsynced: unsynced bytes vanish
	Partition     Kind = "partition"      // a network partition of some shape
	LoseResponses Kind = "lose-responses" // responses from brokers to producers lost after the broker applied them
	Latency       Kind = "latency"        // added latency with jitter on every link
	ResetConns    Kind = "reset-connections"
	// Corrupt flips one byte, anywhere after the API key, in a share of the produce requests clients send to
	// the targets (a faulty NIC, switch or proxy beyond TCP's checksum). Kafka's CRC covers only the record data.
	Corrupt Kind = "corrupt"

	// Composite faults the claims need.
	UncleanElection Kind = "unclean-election" // cut followers off, ISR shrinks to the leader, kill it, heal followers
	RetryStorm      Kind = "retry-storm"      // lost responses and connection resets aimed at producers
	RollingBounce   Kind = "rolling-bounce"   // clean restart of each broker in turn
	ControllerKill  Kind = "controller-kill"  // kill the active controller
	PowerLossAll    Kind = "power-loss-all"   // power loss on every node at once

	// Client faults, carried out by the workload rather than the cluster.
	CrashProducer Kind = "crash-producer"
	CrashConsumer Kind = "crash-consumer"
	JoinConsumer  Kind = "join-consumer"
	LeaveConsumer Kind = "leave-consumer"
)

// Kinds lists every fault kind, for validation messages and random schedules.
var Kinds = []Kind{Kill, Stop, Pause, PowerLoss, Partition, LoseResponses, Latency, ResetConns, Corrupt, UncleanElection,
	RetryStorm, RollingBounce, ControllerKill, PowerLossAll, CrashProducer, CrashConsumer, JoinConsumer, LeaveConsumer}

// IsClientFault reports whether the workload, not the cluster, carries out k.
func (k Kind) IsClientFault() bool {
	return k == CrashProducer || k == CrashConsumer || k == JoinConsumer || k == LeaveConsumer
}

// Shape names a partition shape.
type Shape string

const (
	IsolateNode            Shape = "isolate-node"             // one node (the target) from everyone, clients too
	IsolateLeaderFollowers Shape = "isolate-leader-followers" // a partition's leader from its followers only
	IsolateLeaderClients   Shape = "isolate-leader-clients"   // a partition's leader from clients only
	IsolateLeaderBoth      Shape = "isolate-leader-both"      // a partition's leader from followers and clients
	MajorityMinority       Shape = "majority-minority"        // a random minority of nodes from the majority
	Ring                   Shape = "ring"                     // each node hears only its neighbours: overlapping majorities
	Bridge                 Shape = "bridge"                   // two halves joined through one bridge node
	OneWay                 Shape = "one-way"                  // the target stops hearing everyone else; they still hear it
	RandomShape            Shape = "random"                   // one of the above, drawn from the seed
)

// Shapes lists every concrete shape (not random).
var Shapes = []Shape{IsolateNode, IsolateLeaderFollowers, IsolateLeaderClients, IsolateLeaderBoth, MajorityMinority,
	Ring, Bridge, OneWay}

// Mode is how a network partition treats connections.
type Mode string

const (
	Drop  Mode = "drop"  // bytes stall until heal or timeout, as with lost packets (default)
	Reset Mode = "reset" // connections fail at once
)

// Step is one scripted fault: at At, start Fault on Target; if Duration is set, undo it Duration later.
type Step struct {
	At       time.Duration `yaml:"at" json:"at"`
	Fault    Kind          `yaml:"fault" json:"fault"`
	Target   string        `yaml:"target,omitempty" json:"target,omitempty"`
	Shape    Shape         `yaml:"shape,omitempty" json:"shape,omitempty"`
	Mode     Mode          `yaml:"mode,omitempty" json:"mode,omitempty"`
	Duration time.Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
	// Latency faults: mean added delay and jitter.
	Latency time.Duration `yaml:"latency,omitempty" json:"latency,omitempty"`
	Jitter  time.Duration `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	// Fraction is the share of produce requests a corrupt fault hits (default DefaultCorruptFraction).
	Fraction float64 `yaml:"fraction,omitempty" json:"fraction,omitempty"`
	// Repeat runs the step again every Repeat until the workload ends (e.g. kill the leader repeatedly).
	Repeat time.Duration `yaml:"repeat,omitempty" json:"repeat,omitempty"`
}

// Random is a seeded random schedule: after Start, every Interval draw one of Faults on a random target, keep
// it Duration, undo it, and leave the cluster alone for Stable before the next.
type Random struct {
	Faults   []Kind        `yaml:"faults" json:"faults"`
	Start    time.Duration `yaml:"start,omitempty" json:"start,omitempty"`
	Interval time.Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	Duration time.Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
	Stable   time.Duration `yaml:"stable,omitempty" json:"stable,omitempty"`
	Mode     Mode          `yaml:"mode,omitempty" json:"mode,omitempty"`
	Shapes   []Shape       `yaml:"shapes,omitempty" json:"shapes,omitempty"`
	// Targets are drawn from for each fault (target syntax below); default: random.
	Targets []string `yaml:"targets,omitempty" json:"targets,omitempty"`
}

// Spec is a scenario's nemesis: a scripted timeline, a random schedule, or both.
type Spec struct {
	Schedule []Step  `yaml:"schedule,omitempty" json:"schedule,omitempty"`
	Random   *Random `yaml:"random,omitempty" json:"random,omitempty"`
	// HealTimeout bounds the final heal: every fault undone, every node up, every partition led and in sync.
	HealTimeout time.Duration `yaml:"heal_timeout,omitempty" json:"heal_timeout,omitempty"`
}

// Target syntax (resolved when the fault starts):
//
//	node-2               a node by name
//	leader(trial/0)      the leader of a topic-partition
//	followers(trial/0)   its followers
//	controller           the active controller
//	random               a random node
//	minority             a random minority of the nodes
//	all                  every node
//	producer-1, consumer-0, random-consumer, random-producer   clients (client faults only)
func ParseTarget(s string) (TargetSpec, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "" || s == "random":
		return TargetSpec{Kind: "random"}, nil
	case s == "controller" || s == "minority" || s == "all" || s == "random-consumer" || s == "random-producer":
		return TargetSpec{Kind: s}, nil
	case strings.HasPrefix(s, "node-") || strings.HasPrefix(s, "producer-") || strings.HasPrefix(s, "consumer-"):
		return TargetSpec{Kind: "name", Name: s}, nil
	}
	for _, fn := range []string{"leader", "followers"} {
		if strings.HasPrefix(s, fn+"(") && strings.HasSuffix(s, ")") {
			inner := s[len(fn)+1 : len(s)-1]
			i := strings.LastIndexByte(inner, '/')
			var p int32
			if i <= 0 {
				return TargetSpec{}, fmt.Errorf("target %q: want %s(topic/partition)", s, fn)
			}
			if _, err := fmt.Sscanf(inner[i+1:], "%d", &p); err != nil || p < 0 {
				return TargetSpec{}, fmt.Errorf("target %q: bad partition number", s)
			}
			return TargetSpec{Kind: fn, Topic: inner[:i], Partition: p}, nil
		}
	}
	return TargetSpec{}, fmt.Errorf("unknown target %q (want node-N, leader(topic/p), followers(topic/p), controller, random, minority, all, producer-N, consumer-N, random-producer or random-consumer)", s)
}

// TargetSpec is a parsed target.
type TargetSpec struct {
	Kind      string // name, leader, followers, controller, random, minority, all, random-consumer, random-producer
	Name      string
	Topic     string
	Partition int32
}

// Validate checks a spec against a run of the given length; it names the offending step and key.
func (s *Spec) Validate(runFor time.Duration) error {
	for i, st := range s.Schedule {
		where := fmt.Sprintf("nemesis.schedule[%d]", i)
		if !slices.Contains(Kinds, st.Fault) {
			return fmt.Errorf("%s.fault: unknown fault %q (want one of %v)", where, st.Fault, Kinds)
		}
		if st.At < 0 || st.Duration < 0 || st.Repeat < 0 {
			return fmt.Errorf("%s: at, duration and repeat must not be negative", where)
		}
		if runFor > 0 && st.At > runFor {
			return fmt.Errorf("%s.at: %v is after the workload ends (%v)", where, st.At, runFor)
		}
		if st.Repeat > 0 && st.Repeat <= st.Duration {
			return fmt.Errorf("%s.repeat: %v must be longer than duration %v", where, st.Repeat, st.Duration)
		}
		if _, err := ParseTarget(st.Target); err != nil {
			return fmt.Errorf("%s.target: %w", where, err)
		}
		if st.Shape != "" && st.Shape != RandomShape && !slices.Contains(Shapes, st.Shape) {
			return fmt.Errorf("%s.shape: unknown shape %q (want one of %v or random)", where, st.Shape, Shapes)
		}
		if st.Mode != "" && st.Mode != Drop && st.Mode != Reset {
			return fmt.Errorf("%s.mode: %q (want drop or reset)", where, st.Mode)
		}
		if st.Fraction != 0 && st.Fault != Corrupt {
			return fmt.Errorf("%s.fraction: only a corrupt fault takes a fraction (this step is %s)", where, st.Fault)
		}
		if st.Fraction < 0 || st.Fraction > 1 {
			return fmt.Errorf("%s.fraction: %v is not a share of requests (want a number in (0, 1], e.g. 0.05)", where, st.Fraction)
		}
	}
	if r := s.Random; r != nil {
		if len(r.Faults) == 0 {
			return fmt.Errorf("nemesis.random.faults: list at least one fault")
		}
		for _, k := range r.Faults {
			if !slices.Contains(Kinds, k) {
				return fmt.Errorf("nemesis.random.faults: unknown fault %q (want one of %v)", k, Kinds)
			}
		}
		if r.Interval < 0 || r.Duration < 0 || r.Stable < 0 || r.Start < 0 {
			return fmt.Errorf("nemesis.random: start, interval, duration and stable must not be negative")
		}
		for _, sh := range r.Shapes {
			if !slices.Contains(Shapes, sh) {
				return fmt.Errorf("nemesis.random.shapes: unknown shape %q (want one of %v)", sh, Shapes)
			}
		}
		for _, t := range r.Targets {
			if _, err := ParseTarget(t); err != nil {
				return fmt.Errorf("nemesis.random.targets: %w", err)
			}
		}
		if r.Mode != "" && r.Mode != Drop && r.Mode != Reset {
			return fmt.Errorf("nemesis.random.mode: %q (want drop or reset)", r.Mode)
		}
	}
	if s.HealTimeout < 0 {
		return fmt.Errorf("nemesis.heal_timeout: must not be negative")
	}
	return nil
}
