package docker

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/kafkatrial/kafkatrial/nemesis"
)

func TestParseImage(t *testing.T) {
	tests := []struct {
		in       string
		kind     Kind
		ref      string
		errMatch string
	}{
		{"", KindKafkatrial, "", ""},
		{"apache/kafka:3.9.0", KindKafka, "apache/kafka:3.9.0", ""},
		{"docker.io/apache/kafka-native:3.9.0", KindKafka, "docker.io/apache/kafka-native:3.9.0", ""},
		{"redpandadata/redpanda:v24.2.1", KindRedpanda, "redpandadata/redpanda:v24.2.1", ""},
		{"vectorized/redpanda:latest", KindRedpanda, "vectorized/redpanda:latest", ""},
		{"kafkatrial-broker:abc", KindKafkatrial, "kafkatrial-broker:abc", ""},
		{"kafka=registry.local:5000/my/kafka:1", KindKafka, "registry.local:5000/my/kafka:1", ""},
		{"redpanda=mirror/rp:1", KindRedpanda, "mirror/rp:1", ""},
		{"kafkatrial=", KindKafkatrial, "", ""},
		{"zookeeper=foo", "", "", "kind \"zookeeper\""},
		{"kafka=", "", "", "names no image"},
	}
	for _, tc := range tests {
		kind, ref, err := ParseImage(tc.in)
		if tc.errMatch != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errMatch) {
				t.Errorf("ParseImage(%q) error %v, want one containing %q", tc.in, err, tc.errMatch)
			}
			continue
		}
		if err != nil || kind != tc.kind || ref != tc.ref {
			t.Errorf("ParseImage(%q) = %q, %q, %v; want %q, %q", tc.in, kind, ref, err, tc.kind, tc.ref)
		}
	}
}

func TestKafkatrialSpecs(t *testing.T) {
	sp, err := specs(KindKafkatrial, "img", 3, "trial", nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(sp) != 3 {
		t.Fatalf("%d specs, want 3", len(sp))
	}
	want := []string{"broker", "node", "--id", "2", "--listen", "0.0.0.0:9092", "--advertise", "node-2:9092",
		"--controller", "node-2:9093", "--voters", "1@node-1:9093,2@node-2:9093,3@node-3:9093", "--data", "/data",
		"--timing", "trial"}
	if !slices.Equal(sp[1].Cmd, want) {
		t.Errorf("node-2 command\n got %q\nwant %q", sp[1].Cmd, want)
	}
	if sp[1].Name != "node-2" || sp[1].ID != 2 || sp[1].Image != "img" || sp[1].ReadyLog == "" || sp[1].StopTimeout <= 0 || sp[1].PowerLossSignal != "SIGUSR1" {
		t.Errorf("node-2 spec %+v", sp[1])
	}
	// Broker settings and the timing profile reach every node as flags of its command.
	sp, err = specs(KindKafkatrial, "", 3, "kafka", map[string]string{"min.insync.replicas": "2", "replica.lag.time.max.ms": "500"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	tail := []string{"--timing", "kafka", "--set", "min.insync.replicas=2", "--set", "replica.lag.time.max.ms=500"}
	if got := sp[0].Cmd[len(sp[0].Cmd)-len(tail):]; !slices.Equal(got, tail) {
		t.Errorf("node-1 command ends %q, want %q", got, tail)
	}
	// A setting the node does not honour is refused before any container starts, naming it.
	if _, err := specs(KindKafkatrial, "", 3, "", map[string]string{"retention.ms": "1000"}, 1); err == nil || !strings.Contains(err.Error(), "retention.ms") {
		t.Errorf("a broker setting the node cannot honour: %v, want an error naming it", err)
	}
	if _, err := specs(KindKafkatrial, "", 3, "", map[string]string{"no.such.setting": "1"}, 1); err == nil || !strings.Contains(err.Error(), "no.such.setting") {
		t.Errorf("an unknown broker setting: %v, want an error naming it", err)
	}
}

func TestKafkaSpecs(t *testing.T) {
	sp, err := specs(KindKafka, "apache/kafka:3.9.0", 3, "", map[string]string{
		"min.insync.replicas": "2", "unclean.leader.election.enable": "false", "replica.lag.time.max.ms": "5000"}, 42)
	if err != nil {
		t.Fatal(err)
	}
	env := sp[2].Env
	checks := map[string]string{
		"KAFKA_NODE_ID":                          "3",
		"KAFKA_PROCESS_ROLES":                    "broker,controller",
		"KAFKA_CONTROLLER_QUORUM_VOTERS":         "1@node-1:9093,2@node-2:9093,3@node-3:9093",
		"KAFKA_LISTENERS":                        "PLAINTEXT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093",
		"KAFKA_ADVERTISED_LISTENERS":             "PLAINTEXT://node-3:9092",
		"KAFKA_CONTROLLER_LISTENER_NAMES":        "CONTROLLER",
		"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":   "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"KAFKA_MIN_INSYNC_REPLICAS":              "2",
		"KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE":   "false",
		"KAFKA_REPLICA_LAG_TIME_MAX_MS":          "5000", // the scenario's value beats the trial profile's
		"KAFKA_BROKER_SESSION_TIMEOUT_MS":        "3000", // trial profile (timing "" is trial)
		"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "3",
	}
	for k, v := range checks {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if len(env["CLUSTER_ID"]) != 22 || env["CLUSTER_ID"] != sp[0].Env["CLUSTER_ID"] {
		t.Errorf("CLUSTER_ID %q (node-1 %q): want one 22-character id shared by every node", env["CLUSTER_ID"], sp[0].Env["CLUSTER_ID"])
	}
	if sp[0].Env["KAFKA_NODE_ID"] != "1" || sp[0].Env["KAFKA_ADVERTISED_LISTENERS"] != "PLAINTEXT://node-1:9092" {
		t.Errorf("node-1 env leaks another node's identity: %v", sp[0].Env)
	}
	if sp[0].PowerLossSignal != "" {
		t.Error("Kafka nodes claim a power-loss hook they do not have")
	}
	kt, err := specs(KindKafka, "apache/kafka", 1, "kafka", nil, 42)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kt[0].Env["KAFKA_BROKER_SESSION_TIMEOUT_MS"]; ok {
		t.Error("timing kafka still shortened broker.session.timeout.ms")
	}
	if kt[0].Env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] != "1" {
		t.Errorf("one node: offsets topic replication %q, want 1", kt[0].Env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"])
	}
	if _, err := specs(KindKafka, "apache/kafka", 3, "", map[string]string{"advertised.listeners": "x"}, 1); err == nil {
		t.Error("a setting the target wires itself was accepted")
	}
	if clusterID(1) == clusterID(2) || clusterID(7) != clusterID(7) {
		t.Error("cluster ids are not a function of the seed")
	}
}

func TestKafkaEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"min.insync.replicas":   "KAFKA_MIN_INSYNC_REPLICAS",
		"some_prop.x":           "KAFKA_SOME__PROP_X",
		"listener.name.a-b.foo": "KAFKA_LISTENER_NAME_A___B_FOO",
	} {
		if got := kafkaEnvName(in); got != want {
			t.Errorf("kafkaEnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedpandaSpecs(t *testing.T) {
	sp, err := specs(KindRedpanda, "redpandadata/redpanda:v24", 3, "", map[string]string{
		"default.replication.factor": "3", "unclean.leader.election.enable": "false"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	cmd := strings.Join(sp[0].Cmd, " ")
	for _, want := range []string{"redpanda start", "--node-id 1", "--advertise-kafka-addr PLAINTEXT://node-1:9092",
		"--seeds node-1:33145,node-2:33145,node-3:33145", "--set redpanda.default_topic_replications=3"} {
		if !strings.Contains(cmd, want) {
			t.Errorf("redpanda command %q lacks %q", cmd, want)
		}
	}
	if strings.Contains(cmd, "dev-container") {
		t.Error("redpanda runs in dev-container mode (write caching changes durability)")
	}
	for k, v := range map[string]string{"min.insync.replicas": "2", "unclean.leader.election.enable": "true", "log.flush.interval.messages": "1", "no.such": "1"} {
		if _, err := specs(KindRedpanda, "r", 3, "", map[string]string{k: v}, 1); err == nil {
			t.Errorf("redpanda accepted %s=%s", k, v)
		}
	}
}

func TestSpecsRejectBadClusters(t *testing.T) {
	if _, err := specs(KindKafkatrial, "", 0, "", nil, 1); err == nil {
		t.Error("0 nodes accepted")
	}
	if _, err := specs(KindKafkatrial, "", MaxNodes+1, "", nil, 1); err == nil {
		t.Error("too many nodes accepted")
	}
	if _, err := specs(KindKafkatrial, "", 3, "fast", nil, 1); err == nil {
		t.Error("unknown timing accepted")
	}
}

// cutBoth is every link between each of a and each of b, both ways (the nemesis's cut).
func cutBoth(a, b []string) []nemesis.Link {
	var out []nemesis.Link
	for _, x := range a {
		for _, y := range b {
			if x != y {
				out = append(out, nemesis.Link{From: x, To: y}, nemesis.Link{From: y, To: x})
			}
		}
	}
	return out
}

func TestIsolatedNodes(t *testing.T) {
	nodes := []string{"node-1", "node-2", "node-3"}
	all := append(slices.Clone(nodes), nemesis.Client)
	dataPlane := cutBoth([]string{"node-1"}, []string{"node-2", "node-3"})
	for i := range dataPlane {
		dataPlane[i].Plane = nemesis.PlaneData
	}
	tests := []struct {
		name  string
		links []nemesis.Link
		want  []string // nil: refused
	}{
		{"isolate one node", cutBoth([]string{"node-2"}, all), []string{"node-2"}},
		{"isolate two nodes", cutBoth([]string{"node-1", "node-3"}, all), []string{"node-1", "node-3"}},
		{"leader from followers and clients (data plane cut whole)", append(dataPlane, cutBoth([]string{"node-1"}, []string{nemesis.Client})...), []string{"node-1"}},
		{"leader from followers only", cutBoth([]string{"node-1"}, []string{"node-2", "node-3"}), nil},
		{"leader from clients only", cutBoth([]string{"node-1"}, []string{nemesis.Client}), nil},
		{"one-way", []nemesis.Link{{From: "node-2", To: "node-1"}, {From: "node-3", To: "node-1"}, {From: nemesis.Client, To: "node-1"}}, nil},
		{"two nodes cut from each other only", cutBoth([]string{"node-1"}, []string{"node-2"}), nil},
		{"isolation plus a stray cut", append(cutBoth([]string{"node-1"}, all), nemesis.Link{From: "node-2", To: "node-3"}), nil},
		{"no links", nil, nil},
	}
	for _, tc := range tests {
		got, err := isolatedNodes(nodes, tc.links)
		if tc.want == nil {
			if !errors.Is(err, nemesis.ErrUnsupported) {
				t.Errorf("%s: got %v, %v; want ErrUnsupported", tc.name, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := isolatedNodes(nodes, []nemesis.Link{{From: "node-9", To: "node-1"}}); err == nil || errors.Is(err, nemesis.ErrUnsupported) {
		t.Errorf("unknown node: %v, want a plain error naming it", err)
	}
}
