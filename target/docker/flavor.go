package docker

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kafkatrial/kafkatrial/target/builtin"
)

// Kind is the broker software a cluster's containers run.
type Kind string

const (
	// KindKafkatrial is kafkatrial's own broker (`kafkatrial broker node`), the default.
	KindKafkatrial Kind = "kafkatrial"
	// KindKafka is Apache Kafka's official image (apache/kafka) in KRaft combined mode.
	KindKafka Kind = "kafka"
	// KindRedpanda is Redpanda's image (redpandadata/redpanda).
	KindRedpanda Kind = "redpanda"
)

// Container ports every kind uses inside its container.
const (
	// ClientPort is every node's Kafka listener inside the network; it is mapped to a loopback port on the host.
	ClientPort = 9092
	// ControllerPort is the KRaft controller listener (kafkatrial and Kafka).
	ControllerPort = 9093
	// RedpandaRPCPort is Redpanda's internal RPC listener (its Raft traffic).
	RedpandaRPCPort = 33145
)

// ParseImage reads TargetConfig.Image: "" is kafkatrial's own broker built from this module; "<kind>=<ref>"
// names the kind explicitly (kafkatrial, kafka or redpanda; '=' never occurs in an image reference); otherwise
// a reference under apache/kafka is Kafka, one under redpandadata/redpanda (or vectorized/redpanda) is
// Redpanda, and anything else is taken to be a prebuilt kafkatrial image.
func ParseImage(s string) (Kind, string, error) {
	s = strings.TrimSpace(s)
	if k, ref, ok := strings.Cut(s, "="); ok {
		kind := Kind(strings.TrimSpace(k))
		switch kind {
		case KindKafkatrial, KindKafka, KindRedpanda:
		default:
			return "", "", fmt.Errorf("docker target: cluster.image %q: kind %q (want kafkatrial, kafka or redpanda)", s, kind)
		}
		ref = strings.TrimSpace(ref)
		if ref == "" && kind != KindKafkatrial {
			return "", "", fmt.Errorf("docker target: cluster.image %q names no image for kind %s", s, kind)
		}
		return kind, ref, nil
	}
	repo := strings.TrimPrefix(strings.TrimPrefix(s, "docker.io/"), "library/")
	switch {
	case s == "":
		return KindKafkatrial, "", nil
	case strings.HasPrefix(repo, "apache/kafka"):
		return KindKafka, s, nil
	case strings.HasPrefix(repo, "redpandadata/redpanda"), strings.HasPrefix(repo, "vectorized/redpanda"):
		return KindRedpanda, s, nil
	}
	return KindKafkatrial, s, nil
}

// nodeSpec is everything needed to create one node's container, independent of Docker: the pure part of
// starting a cluster, unit-tested without an engine.
type nodeSpec struct {
	ID   int32
	Name string // node-N: container hostname and network alias, and the nemesis's name
	// Image is the reference to run ("" for kafkatrial until its image is built).
	Image string
	Cmd   []string
	Env   map[string]string
	// ReadyLog is the line the node logs once it serves clients; the start wait counts its occurrences.
	ReadyLog string
	// StopTimeout is how long a clean stop waits after SIGTERM before Docker sends SIGKILL.
	StopTimeout time.Duration
	// PowerLossSignal makes the node drop every byte it never fsynced and exit ("" when the kind has no such
	// hook, and power loss is unsupported).
	PowerLossSignal string
}

// NodeName is the node's name: container hostname, network alias and nemesis name.
func NodeName(id int32) string { return "node-" + strconv.Itoa(int(id)) }

// MaxNodes bounds a cluster (one container and one mapped port each).
const MaxNodes = 9

// specs builds every node's container spec for a cluster of n nodes of kind, with broker settings by Kafka
// name and a timing profile ("trial", the default, or "kafka"). seed makes Kafka's cluster id reproducible.
func specs(kind Kind, image string, n int, timing string, settings map[string]string, seed int64) ([]nodeSpec, error) {
	if n < 1 || n > MaxNodes {
		return nil, fmt.Errorf("docker target: %d nodes (want 1 to %d)", n, MaxNodes)
	}
	if timing != "" && timing != "trial" && timing != "kafka" {
		return nil, fmt.Errorf("docker target: cluster.timing %q (want trial or kafka)", timing)
	}
	var build func(id int32) (nodeSpec, error)
	switch kind {
	case KindKafkatrial:
		args, err := kafkatrialSettingArgs(timing, settings)
		if err != nil {
			return nil, err
		}
		build = func(id int32) (nodeSpec, error) { return kafkatrialSpec(id, n, args), nil }
	case KindKafka:
		env, err := kafkaEnv(n, timing, settings, clusterID(seed))
		if err != nil {
			return nil, err
		}
		build = func(id int32) (nodeSpec, error) { return kafkaSpec(id, n, env), nil }
	case KindRedpanda:
		args, err := redpandaSettingArgs(settings)
		if err != nil {
			return nil, err
		}
		build = func(id int32) (nodeSpec, error) { return redpandaSpec(id, n, args), nil }
	default:
		return nil, fmt.Errorf("docker target: unknown kind %q", kind)
	}
	out := make([]nodeSpec, 0, n)
	for id := int32(1); id <= int32(n); id++ {
		s, err := build(id)
		if err != nil {
			return nil, err
		}
		s.Image = image
		out = append(out, s)
	}
	return out, nil
}

// voters is the KRaft voter list every node shares: "1@node-1:9093,2@node-2:9093,...".
func voters(n int) string {
	parts := make([]string, n)
	for i := range n {
		id := int32(i + 1)
		parts[i] = fmt.Sprintf("%d@%s:%d", id, NodeName(id), ControllerPort)
	}
	return strings.Join(parts, ",")
}

// --- kafkatrial ---------------------------------------------------------------------------------------------

// kafkatrialReadyLog is what `kafkatrial broker node` prints once its node serves clients.
const kafkatrialReadyLog = "bootstrap: "

// kafkatrialSpec runs `kafkatrial broker node`. The controller listener is the node's own voter address
// (node-N:9093, resolved inside the container), as the node requires; the client listener takes every
// interface so the published port reaches it.
func kafkatrialSpec(id int32, n int, settingArgs []string) nodeSpec {
	cmd := []string{"broker", "node",
		"--id", strconv.Itoa(int(id)),
		"--listen", fmt.Sprintf("0.0.0.0:%d", ClientPort),
		"--advertise", fmt.Sprintf("%s:%d", NodeName(id), ClientPort),
		"--controller", fmt.Sprintf("%s:%d", NodeName(id), ControllerPort),
		"--voters", voters(n),
		"--data", "/data",
	}
	return nodeSpec{ID: id, Name: NodeName(id), Cmd: append(cmd, settingArgs...), ReadyLog: kafkatrialReadyLog,
		StopTimeout: 30 * time.Second, PowerLossSignal: kafkatrialPowerLossSignal}
}

// kafkatrialPowerLossSignal is the signal `kafkatrial broker node` reads as "lose every unsynced byte and exit".
const kafkatrialPowerLossSignal = "SIGUSR1"

// kafkatrialSettingArgs turns the timing profile and broker settings into `broker node` flags (Kafka names). They
// are checked here with the node's own mapping, so an unknown or unsupported setting is refused before any
// container starts, never silently dropped.
func kafkatrialSettingArgs(timing string, settings map[string]string) ([]string, error) {
	if _, _, _, err := builtin.BrokerConfig(timing, settings); err != nil {
		return nil, fmt.Errorf("docker target: %w", err)
	}
	var args []string
	if timing != "" {
		args = append(args, "--timing", timing)
	}
	for _, k := range sortedKeys(settings) {
		args = append(args, "--set", k+"="+settings[k])
	}
	return args, nil
}

// --- Apache Kafka -------------------------------------------------------------------------------------------

// kafkaReadyLog is what KafkaRaftServer logs once started.
const kafkaReadyLog = "Kafka Server started"

// kafkaTrialTiming shortens Kafka's failure detection the way the trial profile does for the built-in broker,
// so a trial sees failovers within seconds. Scenario settings override each. Kafka's own minimums allow these
// values; they were not run here (see doc.go).
var kafkaTrialTiming = map[string]string{
	"replica.lag.time.max.ms":               "2000",
	"replica.fetch.wait.max.ms":             "250",
	"replica.socket.timeout.ms":             "3000",
	"replica.fetch.backoff.ms":              "100",
	"broker.heartbeat.interval.ms":          "500",
	"broker.session.timeout.ms":             "3000",
	"controller.quorum.election.timeout.ms": "1000",
	"controller.quorum.fetch.timeout.ms":    "2000",
	"group.initial.rebalance.delay.ms":      "100",
	"group.min.session.timeout.ms":          "500",
}

// kafkaEnv is the environment every Kafka node shares: the apache/kafka image turns KAFKA_* variables into
// server.properties entries.
func kafkaEnv(n int, timing string, settings map[string]string, cluster string) (map[string]string, error) {
	props := map[string]string{
		"process.roles":                            "broker,controller",
		"listeners":                                fmt.Sprintf("PLAINTEXT://0.0.0.0:%d,CONTROLLER://0.0.0.0:%d", ClientPort, ControllerPort),
		"listener.security.protocol.map":           "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"controller.listener.names":                "CONTROLLER",
		"inter.broker.listener.name":               "PLAINTEXT",
		"controller.quorum.voters":                 voters(n),
		"offsets.topic.replication.factor":         strconv.Itoa(min(n, 3)),
		"transaction.state.log.replication.factor": strconv.Itoa(min(n, 3)),
		"transaction.state.log.min.isr":            strconv.Itoa(min(n, 2)),
	}
	if timing == "" || timing == "trial" {
		for k, v := range kafkaTrialTiming {
			props[k] = v
		}
	}
	reserved := map[string]bool{"node.id": true, "advertised.listeners": true, "listeners": true,
		"process.roles": true, "controller.quorum.voters": true, "controller.listener.names": true}
	for _, k := range sortedKeys(settings) {
		if reserved[k] {
			return nil, fmt.Errorf("docker target: broker setting %s is set by the target itself (it wires the cluster)", k)
		}
		if !validKafkaName(k) {
			return nil, fmt.Errorf("docker target: broker setting %q is not a Kafka setting name", k)
		}
		props[k] = settings[k]
	}
	env := map[string]string{"CLUSTER_ID": cluster}
	for k, v := range props {
		env[kafkaEnvName(k)] = v
	}
	return env, nil
}

func kafkaSpec(id int32, _ int, shared map[string]string) nodeSpec {
	env := make(map[string]string, len(shared)+2)
	for k, v := range shared {
		env[k] = v
	}
	env["KAFKA_NODE_ID"] = strconv.Itoa(int(id))
	env["KAFKA_ADVERTISED_LISTENERS"] = fmt.Sprintf("PLAINTEXT://%s:%d", NodeName(id), ClientPort)
	return nodeSpec{ID: id, Name: NodeName(id), Env: env, ReadyLog: kafkaReadyLog, StopTimeout: 60 * time.Second}
}

// kafkaEnvName is the apache/kafka image's variable for a property: '-' becomes "___", '_' becomes "__", '.'
// becomes '_', upper-cased, prefixed with KAFKA_.
func kafkaEnvName(prop string) string {
	r := strings.NewReplacer("-", "___", "_", "__", ".", "_")
	return "KAFKA_" + strings.ToUpper(r.Replace(prop))
}

func validKafkaName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// clusterID is a KRaft cluster id (16 bytes, URL-safe base64 without padding) drawn from the run's seed, so
// a run's containers are reproducible.
func clusterID(seed int64) string {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6b61666b61747269))
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// --- Redpanda -----------------------------------------------------------------------------------------------

// redpandaReadyLog is what Redpanda logs once it serves.
const redpandaReadyLog = "Successfully started Redpanda!"

// redpandaSettings maps the Kafka broker settings Redpanda has an equivalent for onto its cluster properties.
var redpandaSettings = map[string]string{
	"auto.create.topics.enable":        "auto_create_topics_enabled",
	"default.replication.factor":       "default_topic_replications",
	"num.partitions":                   "default_topic_partitions",
	"log.segment.bytes":                "log_segment_size",
	"group.initial.rebalance.delay.ms": "group_initial_rebalance_delay",
}

// redpandaRefused explains the Kafka settings Redpanda has no equivalent for: a trial that silently ignored
// one would judge the wrong broker.
var redpandaRefused = map[string]string{
	"min.insync.replicas":         "Redpanda replicates with Raft (acks=all waits for a majority); it has no min.insync.replicas",
	"log.flush.interval.messages": "Redpanda fsyncs on its own schedule (write caching); it has no log.flush.interval.messages",
	"log.flush.interval.ms":       "Redpanda fsyncs on its own schedule (write caching); it has no log.flush.interval.ms",
}

// redpandaSettingArgs turns broker settings into `redpanda start --set` flags. unclean.leader.election.enable
// =false is accepted as Raft's own behaviour (no unclean election exists); true is refused.
func redpandaSettingArgs(settings map[string]string) ([]string, error) {
	var args []string
	for _, k := range sortedKeys(settings) {
		v := settings[k]
		if k == "unclean.leader.election.enable" {
			if v == "false" {
				continue
			}
			return nil, errors.New("docker target: broker setting unclean.leader.election.enable=" + v +
				" is not supported by Redpanda (Raft never elects an out-of-date replica)")
		}
		if why, ok := redpandaRefused[k]; ok {
			return nil, fmt.Errorf("docker target: broker setting %s is not supported by Redpanda: %s", k, why)
		}
		prop, ok := redpandaSettings[k]
		if !ok {
			return nil, fmt.Errorf("docker target: broker setting %s has no Redpanda equivalent here (supported: %s, unclean.leader.election.enable=false)",
				k, strings.Join(sortedKeys(redpandaSettings), ", "))
		}
		args = append(args, "--set", "redpanda."+prop+"="+v)
	}
	return args, nil
}

func redpandaSpec(id int32, n int, settingArgs []string) nodeSpec {
	seeds := make([]string, n)
	for i := range n {
		seeds[i] = fmt.Sprintf("%s:%d", NodeName(int32(i+1)), RedpandaRPCPort)
	}
	cmd := []string{"redpanda", "start",
		"--node-id", strconv.Itoa(int(id)),
		"--kafka-addr", fmt.Sprintf("PLAINTEXT://0.0.0.0:%d", ClientPort),
		"--advertise-kafka-addr", fmt.Sprintf("PLAINTEXT://%s:%d", NodeName(id), ClientPort),
		"--rpc-addr", fmt.Sprintf("0.0.0.0:%d", RedpandaRPCPort),
		"--advertise-rpc-addr", fmt.Sprintf("%s:%d", NodeName(id), RedpandaRPCPort),
		"--seeds", strings.Join(seeds, ","),
		// One core and a little memory per node: a trial runs three on one machine. Not dev-container mode:
		// that turns on write caching, which changes the durability under trial.
		"--smp", "1", "--memory", "1G", "--reserve-memory", "0M", "--overprovisioned", "--check=false",
		"--default-log-level=info",
	}
	return nodeSpec{ID: id, Name: NodeName(id), Cmd: append(cmd, settingArgs...), ReadyLog: redpandaReadyLog,
		StopTimeout: 30 * time.Second}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
