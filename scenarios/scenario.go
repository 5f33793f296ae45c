package scenarios

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/kafkatrial/kafkatrial/nemesis"
	"github.com/kafkatrial/kafkatrial/workloads"
)

// Scenario is one trial: a cluster, topics, a workload, a nemesis and the claims to judge. It decodes from YAML
// with unknown keys rejected; Kafka's own names are used for Kafka settings. Every default is in Defaults()
// and documented on its field.
type Scenario struct {
	// Source is where the scenario was loaded from: a bundled id, or the path of its YAML file. The reproduce
	// line names it, so rerunning a file runs that file, never a bundled scenario of the same id.
	Source string `yaml:"-"`

	ID          string `yaml:"id"`
	Description string `yaml:"description,omitempty"`
	// Seed drives every random choice of the run (fault plan, targets, value order); 0 means "pick one and
	// print it".
	Seed int64 `yaml:"seed,omitempty"`
	// Target is builtin (default), docker or external.
	Target string `yaml:"target,omitempty"`
	// Warmup runs the workload before any fault (default 1s). Duration is how long the workload runs after
	// warm-up (default 20s); faults are scheduled relative to the end of warm-up.
	Warmup   time.Duration `yaml:"warmup,omitempty"`
	Duration time.Duration `yaml:"duration,omitempty"`
	// FinalReadTimeout bounds the final read after heal (default 30s).
	FinalReadTimeout time.Duration `yaml:"final_read_timeout,omitempty"`
	// LinearizabilityTimeout bounds porcupine per run (default 30s); past it the result is Unknown.
	LinearizabilityTimeout time.Duration `yaml:"linearizability_timeout,omitempty"`

	Cluster  Cluster           `yaml:"cluster,omitempty"`
	Topics   []Topic           `yaml:"topics"`
	Workload Workload          `yaml:"workload"`
	Nemesis  nemesis.Spec      `yaml:"nemesis,omitempty"`
	Expect   map[string]string `yaml:"expect,omitempty"`
}

// Cluster describes the cluster under trial.
type Cluster struct {
	// Nodes is the number of brokers (default 3).
	Nodes int `yaml:"nodes,omitempty"`
	// Timing is "trial" (default: failure detected and a leader elected within about a second) or "kafka"
	// (Kafka's own defaults).
	Timing string `yaml:"timing,omitempty"`
	// Broker holds broker-level settings by their Kafka names (log.flush.interval.messages,
	// replica.lag.time.max.ms, min.insync.replicas, unclean.leader.election.enable, ...).
	Broker map[string]string `yaml:"broker,omitempty"`
	// Image is the container image for the docker target (default: kafkatrial's own).
	Image string `yaml:"image,omitempty"`
	// Bootstrap lists host:port seeds for the external target.
	Bootstrap []string `yaml:"bootstrap,omitempty"`
	// ExternalConfig is the external target's file of fault commands (target/external/example.yaml).
	ExternalConfig string `yaml:"external_config,omitempty"`
}

// Topic is a topic created before the workload starts.
type Topic struct {
	Name              string `yaml:"name"`
	Partitions        int32  `yaml:"partitions,omitempty"`         // default 3
	ReplicationFactor int16  `yaml:"replication.factor,omitempty"` // default min(3, nodes)
	// Configs are topic configs by their Kafka names (min.insync.replicas, unclean.leader.election.enable,
	// log.flush.interval.messages, ...).
	Configs map[string]string `yaml:"configs,omitempty"`
}

// Workload is the set of clients driving the trial.
type Workload struct {
	Producers []Producer `yaml:"producers,omitempty"`
	Consumers []Consumer `yaml:"consumers,omitempty"`
}

// Producer is a group of identical producers. Settings use Kafka's producer config names.
type Producer struct {
	Topic string `yaml:"topic,omitempty"` // default: the first topic
	Count int    `yaml:"count,omitempty"` // default 1
	// Acks is 0, 1 or all (default all).
	Acks                             string  `yaml:"acks,omitempty"`
	EnableIdempotence                *bool   `yaml:"enable.idempotence,omitempty"` // default true with acks=all
	Retries                          *int    `yaml:"retries,omitempty"`            // default 2147483647
	MaxInFlightRequestsPerConnection int     `yaml:"max.in.flight.requests.per.connection,omitempty"`
	RequestTimeoutMs                 Millis  `yaml:"request.timeout.ms,omitempty"`
	DeliveryTimeoutMs                Millis  `yaml:"delivery.timeout.ms,omitempty"`
	LingerMs                         Millis  `yaml:"linger.ms"`                      // default 0 (written: 0 is a setting, not "unset")
	RetryBackoffMs                   Millis  `yaml:"retry.backoff.ms,omitempty"`     // default 100ms (Kafka's)
	RetryBackoffMaxMs                Millis  `yaml:"retry.backoff.max.ms,omitempty"` // default 1s (Kafka's)
	BatchSize                        int     `yaml:"batch.size,omitempty"`
	CompressionType                  string  `yaml:"compression.type,omitempty"`
	Mode                             string  `yaml:"mode,omitempty"`       // sync (default) or async
	Rate                             Rate    `yaml:"rate"`                 // sends per second per producer; 0 = as fast as possible
	Partitions                       []int32 `yaml:"partitions,omitempty"` // explicit partitions, round-robin; default all
	Keys                             bool    `yaml:"keys,omitempty"`       // partition by key instead
}

// Consumer is a group of identical consumers.
type Consumer struct {
	Topics               []string `yaml:"topics,omitempty"` // default: every topic
	Count                int      `yaml:"count,omitempty"`  // default 1
	GroupID              string   `yaml:"group.id,omitempty"`
	EnableAutoCommit     *bool    `yaml:"enable.auto.commit,omitempty"`
	AutoCommitIntervalMs Millis   `yaml:"auto.commit.interval.ms,omitempty"`
	IsolationLevel       string   `yaml:"isolation.level,omitempty"`
	AutoOffsetReset      string   `yaml:"auto.offset.reset,omitempty"`
	SessionTimeoutMs     Millis   `yaml:"session.timeout.ms,omitempty"`
	// MaxPollRecords bounds the records one poll returns (Kafka's max.poll.records, default 500): with slow
	// processing it sets how long a consumer goes between polls, and so how soon it takes part in a rebalance.
	MaxPollRecords int `yaml:"max.poll.records,omitempty"`
	// Commit is the commit strategy: auto, after-process (default), async, before-process or with-results.
	// Group members subscribe to Topics; with-results consumers assign every partition themselves and resume
	// from the offsets stored with their results (the direct style), never from the group's commits.
	Commit string `yaml:"commit,omitempty"`
	// Processing is inline (default) or buffered (records queued and processed later by a worker).
	Processing string `yaml:"processing,omitempty"`
	// ProcessTime is the simulated work per processed record (default 0: none).
	ProcessTime time.Duration `yaml:"process_time"`
}

// Millis is a Kafka "*.ms" setting: an integer number of milliseconds in YAML (as Kafka writes it) or a
// duration string such as "1.5s"; a time.Duration inside Go.
type Millis time.Duration

// D returns the duration.
func (m Millis) D() time.Duration { return time.Duration(m) }

// UnmarshalYAML accepts 1500 or "1500" (milliseconds) and "1.5s".
func (m *Millis) UnmarshalYAML(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"'`)
	var ms int64
	if _, err := fmt.Sscanf(s, "%d", &ms); err == nil && fmt.Sprint(ms) == s {
		if ms < 0 {
			return fmt.Errorf("negative milliseconds %d", ms)
		}
		*m = Millis(time.Duration(ms) * time.Millisecond)
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("%q is neither milliseconds nor a duration like 1.5s", s)
	}
	*m = Millis(d)
	return nil
}

// MarshalYAML writes whole milliseconds as Kafka does, else a duration string.
func (m Millis) MarshalYAML() ([]byte, error) {
	d := time.Duration(m)
	if d%time.Millisecond == 0 {
		return []byte(fmt.Sprint(int64(d / time.Millisecond))), nil
	}
	return []byte(d.String()), nil
}

// Rate is a producer's sends per second. It is written as a plain number (200, not 200.0).
type Rate float64

// MarshalYAML writes the shortest form of the number.
func (r Rate) MarshalYAML() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(r), 'f', -1, 64)), nil
}

// Parse decodes a scenario strictly: an unknown key is an error naming the key and its line. The result has
// every default filled in and is validated.
func Parse(data []byte, source string) (*Scenario, error) {
	var s Scenario
	dec := yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField())
	if err := dec.Decode(&s); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("%s: empty scenario", source)
		}
		if derr := badDuration(data); derr != nil {
			return nil, fmt.Errorf("%s: %w", source, derr)
		}
		return nil, fmt.Errorf("%s: %s", source, yaml.FormatError(err, false, true))
	}
	s.ApplyDefaults()
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return &s, nil
}

// ParseFile reads and parses a scenario file.
func ParseFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	return Parse(data, path)
}

// Marshal writes the scenario as run (every default filled in).
func (s *Scenario) Marshal() ([]byte, error) {
	return yaml.MarshalWithOptions(s, yaml.Indent(2), yaml.IndentSequence(true))
}

// Anomaly names a verdict may judge (claims.md); expect keys must be among them.
var Anomalies = []string{"lost-write", "duplicate", "inconsistent-offset", "reorder", "phantom", "poll-skip",
	"nonmonotonic-poll", "nonlinearizable", "processed-loss", "duplicate-processing"}

// ApplyDefaults fills every unset field with its documented default.
func (s *Scenario) ApplyDefaults() {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	if s.Target == "" {
		s.Target = "builtin"
	}
	setDur(&s.Warmup, time.Second)
	setDur(&s.Duration, 20*time.Second)
	setDur(&s.FinalReadTimeout, 30*time.Second)
	setDur(&s.LinearizabilityTimeout, 30*time.Second)
	setDur(&s.Nemesis.HealTimeout, nemesis.DefaultHealTimeout)
	if s.Cluster.Nodes == 0 {
		s.Cluster.Nodes = 3
	}
	if s.Cluster.Timing == "" {
		s.Cluster.Timing = "trial"
	}
	if len(s.Topics) == 0 {
		s.Topics = []Topic{{Name: "trial"}}
	}
	for i := range s.Topics {
		t := &s.Topics[i]
		if t.Partitions == 0 {
			t.Partitions = 3
		}
		if t.ReplicationFactor == 0 {
			t.ReplicationFactor = int16(min(3, s.Cluster.Nodes))
		}
	}
	for i := range s.Workload.Producers {
		p := &s.Workload.Producers[i]
		if p.Topic == "" {
			p.Topic = s.Topics[0].Name
		}
		if p.Count == 0 {
			p.Count = 1
		}
		if p.Acks == "" {
			p.Acks = "all"
		}
		if p.EnableIdempotence == nil {
			v := p.Acks == "all" || p.Acks == "-1"
			p.EnableIdempotence = &v
		}
		if p.Retries == nil {
			v := 2147483647
			p.Retries = &v
		}
		if p.MaxInFlightRequestsPerConnection == 0 {
			p.MaxInFlightRequestsPerConnection = 5
		}
		if p.RequestTimeoutMs == 0 {
			p.RequestTimeoutMs = Millis(2 * time.Second)
		}
		if p.DeliveryTimeoutMs == 0 {
			p.DeliveryTimeoutMs = Millis(30 * time.Second)
		}
		if p.RetryBackoffMs == 0 {
			p.RetryBackoffMs = Millis(workloads.DefaultRetryBackoff)
		}
		if p.RetryBackoffMaxMs == 0 {
			p.RetryBackoffMaxMs = Millis(workloads.DefaultRetryBackoffMax)
		}
		if p.BatchSize == 0 {
			p.BatchSize = 16384
		}
		if p.CompressionType == "" {
			p.CompressionType = "none"
		}
		if p.Mode == "" {
			p.Mode = "sync"
		}
	}
	for i := range s.Workload.Consumers {
		c := &s.Workload.Consumers[i]
		if len(c.Topics) == 0 {
			for _, t := range s.Topics {
				c.Topics = append(c.Topics, t.Name)
			}
		}
		if c.Count == 0 {
			c.Count = 1
		}
		if c.GroupID == "" {
			c.GroupID = "trial-group"
		}
		if c.Commit == "" {
			c.Commit = "after-process"
			if c.EnableAutoCommit != nil && *c.EnableAutoCommit {
				c.Commit = "auto"
			}
		}
		if c.EnableAutoCommit == nil {
			v := c.Commit == "auto"
			c.EnableAutoCommit = &v
		}
		if c.AutoCommitIntervalMs == 0 {
			c.AutoCommitIntervalMs = Millis(time.Second)
		}
		if c.IsolationLevel == "" {
			c.IsolationLevel = "read_uncommitted"
		}
		if c.AutoOffsetReset == "" {
			c.AutoOffsetReset = "earliest"
		}
		if c.SessionTimeoutMs == 0 {
			c.SessionTimeoutMs = Millis(6 * time.Second)
		}
		if c.MaxPollRecords == 0 {
			c.MaxPollRecords = 500
		}
		if c.Processing == "" {
			c.Processing = "inline"
		}
	}
}

// Validate rejects bad values with a message naming the key and the fix.
func (s *Scenario) Validate() error {
	if s.ID == "" {
		return fmt.Errorf("id: required (a short name such as acks1-leader-kill)")
	}
	if !slices.Contains([]string{"builtin", "docker", "external"}, s.Target) {
		return fmt.Errorf("target: %q (want builtin, docker or external)", s.Target)
	}
	if s.Warmup < 0 {
		return fmt.Errorf("warmup: %v (want 0 or a positive duration like 1s)", s.Warmup)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"duration", s.Duration}, {"final_read_timeout", s.FinalReadTimeout}, {"linearizability_timeout", s.LinearizabilityTimeout}} {
		if d.v <= 0 {
			return fmt.Errorf("%s: %v (want a positive duration like 20s)", d.key, d.v)
		}
	}
	if s.Cluster.Nodes < 1 || s.Cluster.Nodes > 9 {
		return fmt.Errorf("cluster.nodes: %d (want 1 to 9)", s.Cluster.Nodes)
	}
	if s.Cluster.Timing != "trial" && s.Cluster.Timing != "kafka" {
		return fmt.Errorf("cluster.timing: %q (want trial or kafka)", s.Cluster.Timing)
	}
	for k, v := range s.Cluster.Broker {
		if err := validateSetting(k, v, brokerSettings); err != nil {
			return fmt.Errorf("cluster.broker.%s: %w", k, err)
		}
	}
	names := map[string]bool{}
	for i, t := range s.Topics {
		where := fmt.Sprintf("topics[%d]", i)
		if t.Name == "" || strings.ContainsAny(t.Name, "/ ") {
			return fmt.Errorf("%s.name: %q (want a Kafka topic name without / or spaces)", where, t.Name)
		}
		if names[t.Name] {
			return fmt.Errorf("%s.name: %q listed twice", where, t.Name)
		}
		names[t.Name] = true
		if t.Partitions < 1 || t.Partitions > 1000 {
			return fmt.Errorf("%s.partitions: %d (want 1 to 1000)", where, t.Partitions)
		}
		if t.ReplicationFactor < 1 || int(t.ReplicationFactor) > s.Cluster.Nodes {
			return fmt.Errorf("%s.replication.factor: %d (want 1 to cluster.nodes = %d)", where, t.ReplicationFactor, s.Cluster.Nodes)
		}
		for k, v := range t.Configs {
			if err := validateSetting(k, v, topicSettings); err != nil {
				return fmt.Errorf("%s.configs.%s: %w", where, k, err)
			}
		}
	}
	if len(s.Workload.Producers) == 0 && len(s.Workload.Consumers) == 0 {
		return fmt.Errorf("workload: list at least one producer or consumer")
	}
	for i, p := range s.Workload.Producers {
		where := fmt.Sprintf("workload.producers[%d]", i)
		if !names[p.Topic] {
			return fmt.Errorf("%s.topic: %q is not among topics", where, p.Topic)
		}
		if p.Count < 1 || p.Count > 100 {
			return fmt.Errorf("%s.count: %d (want 1 to 100)", where, p.Count)
		}
		if !slices.Contains([]string{"0", "1", "all", "-1"}, p.Acks) {
			return fmt.Errorf("%s.acks: %q (want 0, 1 or all)", where, p.Acks)
		}
		if *p.EnableIdempotence && p.Acks != "all" && p.Acks != "-1" {
			return fmt.Errorf("%s.enable.idempotence: true needs acks=all (set enable.idempotence: false for acks=%s)", where, p.Acks)
		}
		if *p.EnableIdempotence && p.MaxInFlightRequestsPerConnection != 5 {
			return fmt.Errorf("%s.max.in.flight.requests.per.connection: %d (franz-go keeps 5 requests in flight with idempotence; set enable.idempotence: false to bound it)", where, p.MaxInFlightRequestsPerConnection)
		}
		if *p.Retries < 0 {
			return fmt.Errorf("%s.retries: %d (want 0 or more)", where, *p.Retries)
		}
		if p.MaxInFlightRequestsPerConnection < 1 {
			return fmt.Errorf("%s.max.in.flight.requests.per.connection: %d (want 1 or more)", where, p.MaxInFlightRequestsPerConnection)
		}
		if p.BatchSize < 1 {
			return fmt.Errorf("%s.batch.size: %d (want 1 or more bytes)", where, p.BatchSize)
		}
		if r := float64(p.Rate); r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			return fmt.Errorf("%s.rate: %v (want sends per second, 0 or more; 0 sends as fast as possible)", where, r)
		}
		if !slices.Contains([]string{"none", "gzip", "snappy", "lz4", "zstd"}, p.CompressionType) {
			return fmt.Errorf("%s.compression.type: %q (want none, gzip, snappy, lz4 or zstd)", where, p.CompressionType)
		}
		if p.Mode != "sync" && p.Mode != "async" {
			return fmt.Errorf("%s.mode: %q (want sync or async)", where, p.Mode)
		}
	}
	for i, c := range s.Workload.Consumers {
		where := fmt.Sprintf("workload.consumers[%d]", i)
		for _, t := range c.Topics {
			if !names[t] {
				return fmt.Errorf("%s.topics: %q is not among topics", where, t)
			}
		}
		if c.Count < 1 || c.Count > 100 {
			return fmt.Errorf("%s.count: %d (want 1 to 100)", where, c.Count)
		}
		if !slices.Contains([]string{"auto", "after-process", "async", "before-process", "with-results"}, c.Commit) {
			return fmt.Errorf("%s.commit: %q (want auto, after-process, async, before-process or with-results)", where, c.Commit)
		}
		if (c.Commit == "auto") != *c.EnableAutoCommit {
			return fmt.Errorf("%s.enable.auto.commit: %v contradicts commit: %s (auto-commit goes with commit: auto)", where, *c.EnableAutoCommit, c.Commit)
		}
		if c.Processing != "inline" && c.Processing != "buffered" {
			return fmt.Errorf("%s.processing: %q (want inline or buffered)", where, c.Processing)
		}
		if c.IsolationLevel != "read_uncommitted" && c.IsolationLevel != "read_committed" {
			return fmt.Errorf("%s.isolation.level: %q (want read_uncommitted or read_committed)", where, c.IsolationLevel)
		}
		if c.AutoOffsetReset != "earliest" && c.AutoOffsetReset != "latest" {
			return fmt.Errorf("%s.auto.offset.reset: %q (want earliest or latest)", where, c.AutoOffsetReset)
		}
		if c.MaxPollRecords < 1 || c.MaxPollRecords > 1<<20 {
			return fmt.Errorf("%s.max.poll.records: %d (want 1 to %d)", where, c.MaxPollRecords, 1<<20)
		}
	}
	for k, v := range s.Expect {
		if !slices.Contains(Anomalies, k) {
			return fmt.Errorf("expect.%s: unknown anomaly (want one of %s)", k, strings.Join(Anomalies, ", "))
		}
		if v != "none" && v != "some" && v != "any" {
			return fmt.Errorf("expect.%s: %q (want none, some or any)", k, v)
		}
	}
	if err := s.Nemesis.Validate(s.Duration); err != nil {
		return err
	}
	if err := s.validateFaultTargets(); err != nil {
		return err
	}
	return s.validateFaultsForTarget()
}

// badDuration finds the first duration key whose value does not parse, walking the decoded document beside
// the Scenario type: the YAML decoder reports `time: invalid duration "eight"` without naming the key.
func badDuration(data []byte) error {
	var doc any
	if yaml.Unmarshal(data, &doc) != nil {
		return nil
	}
	return walkDurations(doc, reflect.TypeOf(Scenario{}), "")
}

var durationType = reflect.TypeOf(time.Duration(0))

func walkDurations(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		if str, ok := v.(string); ok {
			if _, err := time.ParseDuration(str); err != nil {
				return fmt.Errorf("%s: %q is not a duration (want a number with a unit, like 20s, 1.5s or 300ms)", path, str)
			}
		}
	case t.Kind() == reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			sub, ok := m[name]
			if name == "" || name == "-" || !ok {
				continue
			}
			key := name
			if path != "" {
				key = path + "." + name
			}
			if err := walkDurations(sub, f.Type, key); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice:
		xs, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, x := range xs {
			if err := walkDurations(x, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}
