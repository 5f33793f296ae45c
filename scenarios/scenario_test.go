package scenarios

import (
	"strings"
	"testing"
	"time"
)

const minimal = `
id: demo
topics:
  - name: trial
    partitions: 2
    configs:
      min.insync.replicas: "2"
workload:
  producers:
    - acks: all
      linger.ms: 5
      request.timeout.ms: 1.5s
  consumers:
    - commit: before-process
nemesis:
  schedule:
    - at: 3s
      fault: kill
      target: leader(trial/0)
      duration: 2s
expect:
  lost-write: none
`

func TestParseFillsDefaults(t *testing.T) {
	s, err := Parse([]byte(minimal), "demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := s.Workload.Producers[0]
	if p.LingerMs.D() != 5*time.Millisecond || p.RequestTimeoutMs.D() != 1500*time.Millisecond {
		t.Errorf("ms settings: linger %v request timeout %v", p.LingerMs.D(), p.RequestTimeoutMs.D())
	}
	if !*p.EnableIdempotence || p.Topic != "trial" || p.Count != 1 || p.Mode != "sync" {
		t.Errorf("producer defaults not filled: %+v", p)
	}
	c := s.Workload.Consumers[0]
	if *c.EnableAutoCommit || c.GroupID == "" || c.Topics[0] != "trial" {
		t.Errorf("consumer defaults not filled: %+v", c)
	}
	if s.Cluster.Nodes != 3 || s.Topics[0].ReplicationFactor != 3 || s.Duration != 20*time.Second {
		t.Errorf("scenario defaults not filled: %+v", s)
	}
	// The scenario as run must parse back to the same thing.
	out, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Parse(out, "round-trip")
	if err != nil {
		t.Fatalf("marshalled scenario does not parse: %v\n%s", err, out)
	}
	out2, _ := s2.Marshal()
	if string(out) != string(out2) {
		t.Errorf("round trip changed the scenario:\n%s\n---\n%s", out, out2)
	}
}

func TestParseErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown key with line", "id: x\nworkload:\n  producers:\n    - acks: all\n      lingr.ms: 5\n", `[5:7] unknown field "lingr.ms"`},
		{"missing id", "workload:\n  producers: [{}]\n", "id: required"},
		{"bad acks", "id: x\nworkload:\n  producers: [{acks: \"2\"}]\n", "workload.producers[0].acks"},
		{"idempotence needs acks all", "id: x\nworkload:\n  producers: [{acks: \"1\", enable.idempotence: true}]\n", "enable.idempotence: true needs acks=all"},
		{"unknown topic config", "id: x\ntopics: [{name: t, configs: {min.isr: \"1\"}}]\nworkload:\n  producers: [{}]\n", "topics[0].configs.min.isr: unknown setting"},
		{"bad config value", "id: x\ntopics: [{name: t, configs: {unclean.leader.election.enable: maybe}}]\nworkload:\n  producers: [{}]\n", "unclean.leader.election.enable"},
		{"rf above nodes", "id: x\ncluster: {nodes: 1}\ntopics: [{name: t, replication.factor: 3}]\nworkload:\n  producers: [{}]\n", "topics[0].replication.factor: 3"},
		{"bad expect", "id: x\nworkload:\n  producers: [{}]\nexpect: {lost-writes: none}\n", "expect.lost-writes: unknown anomaly"},
		{"bad expect value", "id: x\nworkload:\n  producers: [{}]\nexpect: {lost-write: never}\n", "expect.lost-write"},
		{"bad fault", "id: x\nworkload:\n  producers: [{}]\nnemesis: {schedule: [{at: 1s, fault: nuke}]}\n", "nemesis.schedule[0].fault"},
		{"bad ms", "id: x\nworkload:\n  producers: [{linger.ms: soon}]\n", "neither milliseconds nor a duration"},
		{"no workload", "id: x\n", "workload: list at least one"},
		{"empty", "", "empty scenario"},
	} {
		_, err := Parse([]byte(tc.yaml), "s.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestSetOverridesByKafkaName(t *testing.T) {
	s, err := Parse([]byte(minimal), "demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{{"acks", "1"}, {"min.insync.replicas", "1"}, {"unclean.leader.election.enable", "true"},
		{"log.flush.interval.messages", "1"}, {"linger.ms", "20"}, {"enable.auto.commit", "true"}, {"nodes", "5"},
		{"replica.lag.time.max.ms", "500"}, {"max.poll.records", "50"}} {
		if err := s.Set(kv[0], kv[1]); err != nil {
			t.Fatalf("Set(%s): %v", kv[0], err)
		}
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	p, c, tp := s.Workload.Producers[0], s.Workload.Consumers[0], s.Topics[0]
	if p.Acks != "1" || *p.EnableIdempotence || p.LingerMs.D() != 20*time.Millisecond {
		t.Errorf("producer overrides: %+v", p)
	}
	if tp.Configs["min.insync.replicas"] != "1" || tp.Configs["unclean.leader.election.enable"] != "true" || tp.Configs["log.flush.interval.messages"] != "1" {
		t.Errorf("topic overrides: %+v", tp.Configs)
	}
	if c.Commit != "auto" || !*c.EnableAutoCommit || c.MaxPollRecords != 50 || s.Cluster.Nodes != 5 || s.Cluster.Broker["replica.lag.time.max.ms"] != "500" {
		t.Errorf("consumer/cluster overrides: %+v %+v", c, s.Cluster)
	}
	for _, kv := range [][2]string{{"acks.please", "1"}, {"min.insync.replicas", "zero"}, {"linger.ms", "x"}, {"max.poll.records", "many"}} {
		if err := s.Set(kv[0], kv[1]); err == nil || !strings.Contains(err.Error(), "--set "+kv[0]) {
			t.Errorf("Set(%s=%s) = %v, want an error naming it", kv[0], kv[1], err)
		}
	}
}
