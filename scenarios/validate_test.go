package scenarios

import (
	"errors"
	"strings"
	"testing"

	"github.com/kafkatrial/kafkatrial/nemesis"
)

// targeted is a scenario with one scheduled step; %s is the step.
const targeted = `id: t
target: %TARGET%
cluster: {nodes: 3}
topics: [{name: trial, partitions: 3}, {name: solo, partitions: 1, replication.factor: 1}]
workload:
  producers: [{count: 2}]
  consumers: [{count: 2}]
nemesis:
  schedule:
    - %STEP%
`

func parseStep(target, step string) (*Scenario, error) {
	body := strings.NewReplacer("%TARGET%", target, "%STEP%", step).Replace(targeted)
	return Parse([]byte(body), "t.yaml")
}

// TestFaultTargetsAreValidated: a target that cannot resolve in any run is a bad scenario, named by its
// schedule entry and key, never a fault that silently does nothing.
func TestFaultTargetsAreValidated(t *testing.T) {
	for _, tc := range []struct{ step, want string }{
		{"{at: 1s, fault: kill, target: leader(nope/0)}", `nemesis.schedule[0].target: "leader(nope/0)": topic "nope" is not among topics (trial, solo)`},
		{"{at: 1s, fault: kill, target: leader(trial/9)}", `nemesis.schedule[0].target: "leader(trial/9)": topic trial has partitions 0 to 2`},
		{"{at: 1s, fault: pause, target: followers(trial/3)}", `topic trial has partitions 0 to 2`},
		{"{at: 1s, fault: pause, target: followers(solo/0)}", `topic solo has no followers (replication.factor 1)`},
		{"{at: 1s, fault: kill, target: node-7}", `nemesis.schedule[0].target: "node-7": no such node (cluster.nodes is 3: node-1 to node-3)`},
		{"{at: 1s, fault: kill, target: node-0}", `"node-0": no such node`},
		{"{at: 1s, fault: kill, target: node-x}", `"node-x": want node-N`},
		{"{at: 1s, fault: crash-producer, target: producer-2}", `"producer-2": no such client (the workload has producer-0 to producer-1)`},
		{"{at: 1s, fault: crash-consumer, target: consumer-5}", `"consumer-5": no such client`},
		{"{at: 1s, fault: crash-producer, target: consumer-0}", `crash-producer acts on a producer, not a consumer`},
		{"{at: 1s, fault: leave-consumer, target: random-producer}", `leave-consumer acts on a consumer, not a producer`},
		{"{at: 1s, fault: crash-producer, target: node-1}", `"node-1" names brokers, and crash-producer acts on a client`},
		{"{at: 1s, fault: crash-consumer, target: leader(trial/0)}", `names brokers, and crash-consumer acts on a client`},
		{"{at: 1s, fault: kill, target: producer-0}", `"producer-0" names a client, and kill acts on brokers`},
		{"{at: 1s, fault: pause, target: random-consumer}", `"random-consumer" names clients, and pause acts on brokers`},
	} {
		_, err := parseStep("builtin", tc.step)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.step, err, tc.want)
		}
	}
	for _, step := range []string{
		"{at: 1s, fault: kill, target: leader(trial/2)}",
		"{at: 1s, fault: kill, target: node-3}",
		"{at: 1s, fault: crash-producer, target: producer-1}",
		"{at: 1s, fault: crash-consumer, target: random-consumer}",
		"{at: 1s, fault: crash-producer, target: random}",
		"{at: 1s, fault: join-consumer, target: random-consumer}",
		"{at: 1s, fault: partition, shape: isolate-node, target: minority}",
	} {
		if _, err := parseStep("builtin", step); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	// An external cluster names its nodes by broker id, known only once reached.
	if _, err := parseStep("external", "{at: 1s, fault: kill, target: node-7}"); err != nil {
		t.Errorf("node-7 on an external cluster: %v", err)
	}
	// A consumer that joins is named consumer-joined-N, and may be targeted later.
	body := strings.NewReplacer("%TARGET%", "builtin", "%STEP%", "{at: 1s, fault: join-consumer, duration: 5s}\n    - {at: 2s, fault: leave-consumer, target: consumer-joined-1}").Replace(targeted)
	if _, err := Parse([]byte(body), "t.yaml"); err != nil {
		t.Errorf("leaving a consumer that joined: %v", err)
	}
	for _, target := range []string{"consumer-joined-2", "consumer-2"} {
		body = strings.NewReplacer("%TARGET%", "builtin", "%STEP%", "{at: 1s, fault: join-consumer, duration: 5s}\n    - {at: 2s, fault: leave-consumer, target: "+target+"}").Replace(targeted)
		if _, err := Parse([]byte(body), "t.yaml"); err == nil || !strings.Contains(err.Error(), "nemesis.schedule[1].target: \""+target+"\": no such client") {
			t.Errorf("%s with one join: %v", target, err)
		}
	}
	// Random schedules' targets are checked against every fault they may draw.
	s, err := parseStep("builtin", "{at: 1s, fault: kill, target: node-1}")
	if err != nil {
		t.Fatal(err)
	}
	s.Nemesis.Random = &nemesis.Random{Faults: []nemesis.Kind{nemesis.Kill, nemesis.CrashConsumer}, Targets: []string{"random", "node-2"}}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `nemesis.random.targets[1]: "node-2" names brokers, and crash-consumer`) {
		t.Errorf("random targets: %v", err)
	}
}

// TestTargetRefusesFaultsAtValidation: a target's registered check refuses, with the entry and key, faults it
// can never carry out.
func TestTargetRefusesFaultsAtValidation(t *testing.T) {
	RegisterFaultCheck("test-killonly", func(c Cluster, k nemesis.Kind, shape nemesis.Shape) error {
		if k == nemesis.Kill || (k == nemesis.Partition && shape == nemesis.IsolateNode) {
			return nil
		}
		return errors.New("only kills and isolate-node here")
	})
	t.Cleanup(func() { RegisterFaultCheck("test-killonly", nil) })
	s, err := parseStep("builtin", "{at: 1s, fault: latency, target: all}")
	if err != nil {
		t.Fatal(err)
	}
	s.Target = "test-killonly"
	if err := s.validateFaultsForTarget(); err == nil || err.Error() != "nemesis.schedule[0].fault: the test-killonly target cannot carry out latency: only kills and isolate-node here" {
		t.Errorf("latency: %v", err)
	}
	s.Nemesis.Schedule[0] = nemesis.Step{At: 1, Fault: nemesis.Partition, Shape: nemesis.OneWay}
	if err := s.validateFaultsForTarget(); err == nil || !strings.HasPrefix(err.Error(), "nemesis.schedule[0].shape:") {
		t.Errorf("one-way: %v", err)
	}
	s.Nemesis.Schedule[0].Shape = nemesis.IsolateNode
	s.Nemesis.Random = &nemesis.Random{Faults: []nemesis.Kind{nemesis.Kill, nemesis.Partition}}
	if err := s.validateFaultsForTarget(); err == nil || !strings.HasPrefix(err.Error(), "nemesis.random.shape:") {
		t.Errorf("random partition of any shape: %v", err)
	}
	s.Nemesis.Random.Shapes = []nemesis.Shape{nemesis.IsolateNode}
	if err := s.validateFaultsForTarget(); err != nil {
		t.Errorf("kills and isolate-node only: %v", err)
	}
}

// TestValidationNamesOneKey: each message names the one key at fault and its value.
func TestValidationNamesOneKey(t *testing.T) {
	base := "id: x\nworkload:\n  producers: [{}]\n"
	for _, tc := range []struct{ yaml, want string }{
		{"id: x\nduration: eight\nworkload:\n  producers: [{}]\n", `duration: "eight" is not a duration`},
		{"id: x\nduration: -1s\nworkload:\n  producers: [{}]\n", "duration: -1s (want a positive duration"},
		{"id: x\nlinearizability_timeout: -1s\nworkload:\n  producers: [{}]\n", "linearizability_timeout: -1s"},
		{"id: x\nwarmup: -1s\nworkload:\n  producers: [{}]\n", "warmup: -1s"},
		{"id: x\nworkload:\n  consumers: [{process_time: lots}]\n", `workload.consumers[0].process_time: "lots" is not a duration`},
		{base + "nemesis: {schedule: [{at: soon, fault: kill}]}\n", `nemesis.schedule[0].at: "soon" is not a duration`},
		{"id: x\nworkload:\n  producers: [{rate: -5}]\n", "workload.producers[0].rate: -5 (want sends per second, 0 or more; 0 sends as fast as possible)"},
		{"id: x\nworkload:\n  producers: [{retries: -1}]\n", "workload.producers[0].retries: -1"},
		{"id: x\nworkload:\n  producers: [{batch.size: -1}]\n", "workload.producers[0].batch.size: -1"},
		{"id: x\nworkload:\n  producers: [{enable.idempotence: false, max.in.flight.requests.per.connection: -2}]\n", "workload.producers[0].max.in.flight.requests.per.connection: -2"},
	} {
		_, err := Parse([]byte(tc.yaml), "s.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
	s, err := Parse([]byte("id: x\nworkload:\n  producers: [{rate: 0}]\n"), "s.yaml")
	if err != nil || s.Workload.Producers[0].Rate != 0 {
		t.Fatalf("rate 0 (as fast as possible): %v", err)
	}
	if err := s.Set("rate", "-5"); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "workload.producers[0].rate: -5") {
		t.Errorf("--set rate=-5: %v", err)
	}
}
