package scenarios

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/kafkatrial/kafkatrial/checker"
	"github.com/kafkatrial/kafkatrial/nemesis"
)

// FaultCheck says, before anything starts, whether a target can carry out a fault kind on a cluster configured
// as c: nil if it can, else an error saying why not. shape is the partition shape of a partition fault ("" or
// random: drawn when the fault starts).
type FaultCheck func(c Cluster, kind nemesis.Kind, shape nemesis.Shape) error

// BrokerDefaults returns the broker defaults a target applies, by Kafka name, for a cluster configured as c
// (nil: unknown, as for a cluster kafkatrial did not start).
type BrokerDefaults func(c Cluster) map[string]string

var (
	checksMu       sync.Mutex // guards faultChecks and brokerDefaults
	faultChecks    = map[string]FaultCheck{}
	brokerDefaults = map[string]BrokerDefaults{
		// The built-in broker keeps Kafka's defaults (a test holds it to that).
		"builtin": func(Cluster) map[string]string { return KafkaDurabilityDefaults() },
	}
)

// KafkaDurabilityDefaults are Kafka's broker defaults for the topic settings that decide durability.
func KafkaDurabilityDefaults() map[string]string {
	return map[string]string{"min.insync.replicas": "1", "unclean.leader.election.enable": "false"}
}

// RegisterFaultCheck lets a target refuse, when a scenario is validated, faults it can never carry out.
func RegisterFaultCheck(target string, check FaultCheck) {
	checksMu.Lock()
	defer checksMu.Unlock()
	faultChecks[target] = check
}

// RegisterBrokerDefaults tells the runner which broker defaults a target applies, so the run directory's
// scenario.yaml can state them.
func RegisterBrokerDefaults(target string, defaults BrokerDefaults) {
	checksMu.Lock()
	defer checksMu.Unlock()
	brokerDefaults[target] = defaults
}

// validateFaultsForTarget refuses faults the scenario's target registered it cannot carry out.
func (s *Scenario) validateFaultsForTarget() error {
	checksMu.Lock()
	check := faultChecks[s.Target]
	checksMu.Unlock()
	if check == nil {
		return nil
	}
	refuse := func(where string, k nemesis.Kind, err error) error {
		key := where + ".fault"
		if k == nemesis.Partition {
			key = where + ".shape"
		}
		return fmt.Errorf("%s: the %s target cannot carry out %s: %w", key, s.Target, k, err)
	}
	for i, st := range s.Nemesis.Schedule {
		if err := check(s.Cluster, st.Fault, st.Shape); err != nil {
			return refuse(fmt.Sprintf("nemesis.schedule[%d]", i), st.Fault, err)
		}
	}
	if r := s.Nemesis.Random; r != nil {
		for _, k := range r.Faults {
			shapes := []nemesis.Shape{""}
			if k == nemesis.Partition && len(r.Shapes) > 0 {
				shapes = r.Shapes
			}
			for _, sh := range shapes {
				if err := check(s.Cluster, k, sh); err != nil {
					return refuse("nemesis.random", k, err)
				}
			}
		}
	}
	return nil
}

// validateFaultTargets checks every fault target that can be checked before the run: a topic among topics,
// a partition the topic has, a node the cluster has, a client the workload defines, and a target of the
// right sort for the fault (brokers for cluster faults, clients for client faults).
func (s *Scenario) validateFaultTargets() error {
	for i, st := range s.Nemesis.Schedule {
		if err := s.checkTarget(st.Fault, st.Target); err != nil {
			return fmt.Errorf("nemesis.schedule[%d].target: %w", i, err)
		}
	}
	if r := s.Nemesis.Random; r != nil {
		for j, t := range r.Targets {
			for _, k := range r.Faults {
				if err := s.checkTarget(k, t); err != nil {
					return fmt.Errorf("nemesis.random.targets[%d]: %w", j, err)
				}
			}
		}
	}
	return nil
}

func (s *Scenario) checkTarget(kind nemesis.Kind, target string) error {
	if kind == nemesis.JoinConsumer || target == "" {
		return nil // a joining consumer is new: it has no target to check
	}
	t, err := nemesis.ParseTarget(target)
	if err != nil {
		return err
	}
	client := kind.IsClientFault()
	wantClients := func() error {
		return fmt.Errorf("%q names brokers, and %s acts on a client (want producer-N, consumer-N, random-producer or random-consumer)", target, kind)
	}
	switch t.Kind {
	case "leader", "followers":
		if client {
			return wantClients()
		}
		for _, tp := range s.Topics {
			if tp.Name == t.Topic {
				if t.Partition >= tp.Partitions {
					return fmt.Errorf("%q: topic %s has partitions 0 to %d", target, tp.Name, tp.Partitions-1)
				}
				if t.Kind == "followers" && tp.ReplicationFactor < 2 {
					return fmt.Errorf("%q: topic %s has no followers (replication.factor %d)", target, tp.Name, tp.ReplicationFactor)
				}
				return nil
			}
		}
		names := make([]string, len(s.Topics))
		for i, tp := range s.Topics {
			names[i] = tp.Name
		}
		return fmt.Errorf("%q: topic %q is not among topics (%s)", target, t.Topic, strings.Join(names, ", "))
	case "controller", "minority", "all":
		if client {
			return wantClients()
		}
	case "random":
		// "random" picks a node for a cluster fault and a client for a client fault.
	case "random-producer", "random-consumer":
		if !client {
			return fmt.Errorf("%q names clients, and %s acts on brokers (want node-N, leader(topic/p), followers(topic/p), controller, random, minority or all)", target, kind)
		}
		if err := s.checkClientSort(kind, strings.TrimPrefix(target, "random-")); err != nil {
			return fmt.Errorf("%q: %w", target, err)
		}
	case "name":
		if rest, ok := strings.CutPrefix(t.Name, "consumer-joined-"); ok {
			// A consumer a join-consumer fault started (consumer-joined-1, -2, ...).
			if !client {
				return fmt.Errorf("%q names a client, and %s acts on brokers", target, kind)
			}
			if err := s.checkClientSort(kind, "consumer"); err != nil {
				return fmt.Errorf("%q: %w", target, err)
			}
			n, err := strconv.Atoi(rest)
			if joins := s.joins(); err != nil || n < 1 || n > joins {
				return fmt.Errorf("%q: no such client (the schedule starts %d joining consumers: consumer-joined-1 up)", target, joins)
			}
			return nil
		}
		sort, num, _ := strings.Cut(t.Name, "-")
		n, err := strconv.Atoi(num)
		if err != nil || n < 0 || strconv.Itoa(n) != num {
			return fmt.Errorf("%q: want %s-N with N a number", target, sort)
		}
		if sort == "node" {
			if client {
				return wantClients()
			}
			// Nodes of the targets kafkatrial starts are node-1..node-N; an external cluster's are named by
			// its broker ids, known only once it is reached.
			if s.Target != "external" && (n < 1 || n > s.Cluster.Nodes) {
				return fmt.Errorf("%q: no such node (cluster.nodes is %d: node-1 to node-%d)", target, s.Cluster.Nodes, s.Cluster.Nodes)
			}
			return nil
		}
		if !client {
			return fmt.Errorf("%q names a client, and %s acts on brokers (want node-N, leader(topic/p), followers(topic/p), controller, random, minority or all)", target, kind)
		}
		if err := s.checkClientSort(kind, sort); err != nil {
			return fmt.Errorf("%q: %w", target, err)
		}
		if have := s.countOf(sort); n >= have {
			return fmt.Errorf("%q: no such client (the workload has %s-0 to %s-%d)", target, sort, sort, have-1)
		}
	}
	return nil
}

// checkClientSort checks that a client fault names the sort of client it acts on, and that the workload has
// such clients.
func (s *Scenario) checkClientSort(kind nemesis.Kind, sort string) error {
	want := "consumer"
	if kind == nemesis.CrashProducer {
		want = "producer"
	}
	if sort != want {
		return fmt.Errorf("%s acts on a %s, not a %s", kind, want, sort)
	}
	if s.countOf(want) == 0 {
		return fmt.Errorf("the workload defines no %ss", want)
	}
	return nil
}

// countOf is the number of producers or consumers the workload starts.
func (s *Scenario) countOf(sort string) int {
	n := 0
	if sort == "producer" {
		for _, p := range s.Workload.Producers {
			n += p.Count
		}
		return n
	}
	for _, c := range s.Workload.Consumers {
		n += c.Count
	}
	return n
}

// joins bounds the consumers join-consumer faults can start: one per scheduled join (with its repeats); a
// random schedule that joins consumers lifts the bound.
func (s *Scenario) joins() int {
	if r := s.Nemesis.Random; r != nil && slices.Contains(r.Faults, nemesis.JoinConsumer) {
		return 1 << 30
	}
	n := 0
	for _, st := range s.Nemesis.Schedule {
		if st.Fault != nemesis.JoinConsumer {
			continue
		}
		for at := st.At; at <= s.Duration; at += st.Repeat {
			n++
			if st.Repeat <= 0 {
				break
			}
		}
	}
	return n
}

// ApplyTargetDefaults writes into the scenario the broker defaults its target will apply, for the settings
// that decide durability (min.insync.replicas, unclean.leader.election.enable): into cluster.broker where
// unset, and into every topic's configs where unset (a topic takes the broker's value, as in Kafka). Stating
// them changes nothing the cluster does; it lets a reader of the run's scenario.yaml see what was judged.
// Targets whose defaults are unknown (external clusters) are left alone.
func (s *Scenario) ApplyTargetDefaults() {
	checksMu.Lock()
	def := brokerDefaults[s.Target]
	checksMu.Unlock()
	if def == nil {
		return
	}
	defaults := def(s.Cluster)
	if len(defaults) == 0 {
		return
	}
	if s.Cluster.Broker == nil {
		s.Cluster.Broker = map[string]string{}
	}
	for k, v := range defaults {
		if _, ok := s.Cluster.Broker[k]; !ok {
			s.Cluster.Broker[k] = v
		}
	}
	for i := range s.Topics {
		t := &s.Topics[i]
		for k, v := range s.Cluster.Broker {
			if _, topicLevel := topicSettings[k]; !topicLevel {
				continue
			}
			if t.Configs == nil {
				t.Configs = map[string]string{}
			}
			if _, ok := t.Configs[k]; !ok {
				t.Configs[k] = v
			}
		}
	}
}

// judgeFaults notes every scheduled fault that could not be injected, and reports whether faults were due and
// none was injected. Then the claims are not evidence either way: every claim but a violated guarantee (an
// anomaly that happened is a fact) and a reported count becomes unknown. A fault is due once the nemesis tried
// to start it (a start event, with or without an error). A run interrupted before any fault was due is judged
// on its claims (its notes say it was cut short); a run that was not interrupted yet tried none of its planned
// faults is undecided too.
func judgeFaults(v *checker.Verdict, planned int, events []nemesis.Event, interrupted bool) (noneInjected bool) {
	due, started := 0, 0
	for _, e := range events {
		if e.Phase != nemesis.PhaseStart {
			continue
		}
		due++
		if e.Error == "" {
			started++
			continue
		}
		v.Notes = append(v.Notes, fmt.Sprintf("fault %s at %.1fs was not injected: %s", e.Fault, float64(e.Time)/1e9, e.Error))
	}
	if planned == 0 || started > 0 || due == 0 && interrupted {
		return false
	}
	const reason = "no scheduled fault was injected, so the run shows nothing about the fault"
	if due == 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("none of the %d scheduled faults was started: the run is undecided", planned))
	} else {
		v.Notes = append(v.Notes, fmt.Sprintf("none of the %d faults due was injected: the run is undecided", due))
	}
	for i := range v.Claims {
		c := &v.Claims[i]
		switch c.Status {
		case checker.StatusHeld, checker.StatusReproduced, checker.StatusNotReproduced:
			c.Status, c.Held, c.Reason = checker.StatusUnknown, false, reason
		}
	}
	return true
}
