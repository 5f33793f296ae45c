package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/controller"
	"github.com/kafkatrial/kafkatrial/broker/meta"
)

// Config configures one node. Zero values take the documented defaults (Kafka's setting names in brackets);
// validate rejects bad values with a message naming the key.
type Config struct {
	// NodeID [node.id] identifies the node in the cluster; at least 0.
	NodeID int32 `yaml:"node.id"`
	// DataDir is the node's directory inside its Disk (relative to Disk.Root, or absolute under it); "" means
	// the Disk's root. Partition logs, checkpoints and the controller's state live below it.
	DataDir string `yaml:"log.dirs"`
	// ListenAddr [listeners] is the client listener, default "127.0.0.1:0" (an ephemeral loopback port).
	ListenAddr string `yaml:"listeners"`
	// AdvertisedHost and AdvertisedPort [advertised.listeners] are what Metadata tells clients; default the
	// listener's actual address.
	AdvertisedHost string `yaml:"advertised.host"`
	AdvertisedPort int32  `yaml:"advertised.port"`
	// ControllerAddr [controller.listener] is this node's controller (Raft) listener, default
	// Voters[NodeID], else "127.0.0.1:0". Port 0 is allowed only for a single-voter quorum (empty Voters): Start
	// then picks a free loopback port, since a voter's address must be fixed.
	ControllerAddr string `yaml:"controller.listener"`
	// Voters [controller.quorum.voters] maps node id to controller address. Empty means a single-voter
	// quorum of this node alone.
	Voters map[int32]string `yaml:"controller.quorum.voters"`
	// Listen and Dial are the network hooks every connection goes through (the nemesis's faultnet); nil means
	// plain net.Listen / net.Dialer.
	Listen func(network, addr string) (net.Listener, error)                  `yaml:"-"`
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error) `yaml:"-"`
	// ControllerListen and ControllerDial carry the controller quorum's traffic (Raft and forwarded
	// proposals) when set; nil means Listen and Dial. Separate hooks let a fault cut broker traffic (client
	// requests, replica fetches) while the quorum stays connected, or the other way round.
	ControllerListen func(network, addr string) (net.Listener, error)                  `yaml:"-"`
	ControllerDial   func(ctx context.Context, network, addr string) (net.Conn, error) `yaml:"-"`
	// Logger receives the node's events; nil discards.
	Logger *slog.Logger `yaml:"-"`
	// MaxFrameBytes [socket.request.max.bytes] bounds one request frame; default 100 MiB, at least 1 KiB.
	MaxFrameBytes int32 `yaml:"socket.request.max.bytes"`
	// Defaults are the broker-level defaults of topic configs.
	Defaults TopicDefaults `yaml:"defaults"`
	// Timing holds the node's periodic work.
	Timing Timing `yaml:"timing"`
	// OffsetsTopic configures __consumer_offsets, where committed offsets are replicated (offsets_topic.go).
	OffsetsTopic OffsetsTopicConfig `yaml:"offsets"`
}

// TopicDefaults are the broker-level defaults a topic takes when it does not set its own config.
type TopicDefaults struct {
	// NumPartitions [num.partitions] for CreateTopics with -1 partitions and auto-created topics; default 1.
	NumPartitions int32 `yaml:"num.partitions"`
	// ReplicationFactor [default.replication.factor]; default 1.
	ReplicationFactor int16 `yaml:"default.replication.factor"`
	// MinInsyncReplicas [min.insync.replicas]; default 1.
	MinInsyncReplicas int32 `yaml:"min.insync.replicas"`
	// UncleanLeaderElectionEnable [unclean.leader.election.enable]; default false.
	UncleanLeaderElectionEnable bool `yaml:"unclean.leader.election.enable"`
	// LogFlushIntervalMessages [log.flush.interval.messages]: fsync after this many messages; default
	// never (Kafka's Long.MAX_VALUE: flushing is left to the page cache).
	LogFlushIntervalMessages int64 `yaml:"log.flush.interval.messages"`
	// LogFlushInterval [log.flush.interval.ms]: fsync when the oldest unflushed message is this old; 0
	// (default) means never.
	LogFlushInterval time.Duration `yaml:"log.flush.interval.ms"`
	// LogSegmentBytes [log.segment.bytes]; default 1 GiB.
	LogSegmentBytes int64 `yaml:"log.segment.bytes"`
	// AutoCreateTopicsEnable [auto.create.topics.enable]. Default false, a deliberate difference from Kafka
	// (true): a trial creates its topics explicitly, and a typo must be an error, not a new topic.
	AutoCreateTopicsEnable bool `yaml:"auto.create.topics.enable"`
}

// Timing holds the intervals of a node's periodic work and its failure detection. Zero fields take the
// trial profile (TrialTiming): a dead broker is fenced and its partitions re-elected within about a second, and
// a stuck follower leaves the ISR after one second, so a trial sees many failovers. KafkaTiming is Kafka's own
// defaults, one assignment away (Config.Timing = KafkaTiming()).
type Timing struct {
	// HWCheckpointInterval [replica.high.watermark.checkpoint.interval.ms]; default 5s (Kafka's).
	HWCheckpointInterval time.Duration `yaml:"replica.high.watermark.checkpoint.interval.ms"`
	// Controller is the metadata quorum's timing (Raft timeouts, broker.heartbeat.interval.ms,
	// broker.session.timeout.ms); zero fields take controller.TrialTiming's values.
	Controller controller.Timing `yaml:"controller"`
	// RequestTimeout bounds a metadata proposal made on a client's behalf (CreateTopics and the like) when
	// the request carries no timeout of its own, and an AlterPartition; default 30s.
	RequestTimeout time.Duration `yaml:"request.timeout.ms"`
	// ReplicaLagTimeMax [replica.lag.time.max.ms]: a follower not caught up for this long leaves the ISR.
	// Trial 1s, Kafka 30s.
	ReplicaLagTimeMax time.Duration `yaml:"replica.lag.time.max.ms"`
	// ReplicaFetchWaitMax [replica.fetch.wait.max.ms]: a follower's fetch long-polls this long at most. Must be
	// below ReplicaLagTimeMax (an idle follower must fetch often enough to stay in sync). Trial 250ms, Kafka 500ms.
	ReplicaFetchWaitMax time.Duration `yaml:"replica.fetch.wait.max.ms"`
	// ReplicaSocketTimeout [replica.socket.timeout.ms] bounds a follower's fetch round trip beyond its wait
	// (a leader behind a stalled network is given up on and dialled again). Trial 2s, Kafka 30s.
	ReplicaSocketTimeout time.Duration `yaml:"replica.socket.timeout.ms"`
	// ReplicaFetchBackoff [replica.fetch.backoff.ms]: a follower's pause after a failed fetch. Trial 100ms,
	// Kafka 1s.
	ReplicaFetchBackoff time.Duration `yaml:"replica.fetch.backoff.ms"`
	// GroupInitialRebalanceDelay [group.initial.rebalance.delay.ms]; trial 100ms, Kafka 3s.
	GroupInitialRebalanceDelay time.Duration `yaml:"group.initial.rebalance.delay.ms"`
	// GroupMinSessionTimeout [group.min.session.timeout.ms]; trial 500ms (trials use 2s sessions), Kafka 6s.
	GroupMinSessionTimeout time.Duration `yaml:"group.min.session.timeout.ms"`
	// GroupMaxSessionTimeout [group.max.session.timeout.ms]; 30m in both profiles (Kafka's).
	GroupMaxSessionTimeout time.Duration `yaml:"group.max.session.timeout.ms"`
	// ConnectionsMaxIdle [connections.max.idle.ms]: a client connection that sends nothing for this long (or
	// stalls this long inside a request frame) is closed; 10m in both profiles (Kafka's).
	ConnectionsMaxIdle time.Duration `yaml:"connections.max.idle.ms"`
}

// TrialTiming is the profile zero Timing fields take: failure detected and a new leader elected within about
// a second (controller.TrialTiming fences a silent broker after 600ms; Raft re-elects a dead controller in
// 0.5-1s), followers out of the ISR one second after they stop keeping up.
func TrialTiming() Timing {
	return Timing{
		HWCheckpointInterval:       DefaultHWCheckpointInterval,
		Controller:                 controller.TrialTiming(),
		RequestTimeout:             DefaultRequestTimeout,
		ReplicaLagTimeMax:          time.Second,
		ReplicaFetchWaitMax:        250 * time.Millisecond,
		ReplicaSocketTimeout:       2 * time.Second,
		ReplicaFetchBackoff:        100 * time.Millisecond,
		GroupInitialRebalanceDelay: 100 * time.Millisecond,
		GroupMinSessionTimeout:     500 * time.Millisecond,
		GroupMaxSessionTimeout:     30 * time.Minute,
		ConnectionsMaxIdle:         DefaultConnectionsMaxIdle,
	}
}

// KafkaTiming is Kafka's default timing: replica.lag.time.max.ms=30000, replica.fetch.wait.max.ms=500,
// replica.socket.timeout.ms=30000, replica.fetch.backoff.ms=1000, group.initial.rebalance.delay.ms=3000,
// group.min.session.timeout.ms=6000, group.max.session.timeout.ms=1800000 and the controller's KafkaDefaults.
func KafkaTiming() Timing {
	return Timing{
		HWCheckpointInterval:       DefaultHWCheckpointInterval,
		Controller:                 controller.KafkaDefaults(),
		RequestTimeout:             DefaultRequestTimeout,
		ReplicaLagTimeMax:          30 * time.Second,
		ReplicaFetchWaitMax:        500 * time.Millisecond,
		ReplicaSocketTimeout:       30 * time.Second,
		ReplicaFetchBackoff:        time.Second,
		GroupInitialRebalanceDelay: 3 * time.Second,
		GroupMinSessionTimeout:     6 * time.Second,
		GroupMaxSessionTimeout:     30 * time.Minute,
		ConnectionsMaxIdle:         DefaultConnectionsMaxIdle,
	}
}

// Defaults (Kafka's, unless noted on the field).
const (
	DefaultMaxFrameBytes        = 100 << 20
	DefaultSegmentBytes         = 1 << 30
	DefaultHWCheckpointInterval = 5 * time.Second
	DefaultRequestTimeout       = 30 * time.Second
	DefaultConnectionsMaxIdle   = 10 * time.Minute
	minFrameBytesLimit          = 1 << 10
)

// withDefaults returns c with every zero value replaced by its default.
func (c Config) withDefaults() Config {
	if c.ListenAddr == "" {
		c.ListenAddr = "127.0.0.1:0"
	}
	if c.ControllerAddr == "" {
		if a, ok := c.Voters[c.NodeID]; ok {
			c.ControllerAddr = a
		} else {
			c.ControllerAddr = "127.0.0.1:0"
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxFrameBytes == 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	d := &c.Defaults
	if d.NumPartitions == 0 {
		d.NumPartitions = 1
	}
	if d.ReplicationFactor == 0 {
		d.ReplicationFactor = 1
	}
	if d.MinInsyncReplicas == 0 {
		d.MinInsyncReplicas = 1
	}
	if d.LogFlushIntervalMessages == 0 {
		d.LogFlushIntervalMessages = math.MaxInt64
	}
	if d.LogSegmentBytes == 0 {
		d.LogSegmentBytes = DefaultSegmentBytes
	}
	c.OffsetsTopic = c.OffsetsTopic.withDefaults()
	t, def := &c.Timing, TrialTiming()
	for _, f := range []struct{ v, def *time.Duration }{
		{&t.HWCheckpointInterval, &def.HWCheckpointInterval}, {&t.RequestTimeout, &def.RequestTimeout},
		{&t.ReplicaLagTimeMax, &def.ReplicaLagTimeMax}, {&t.ReplicaFetchWaitMax, &def.ReplicaFetchWaitMax},
		{&t.ReplicaSocketTimeout, &def.ReplicaSocketTimeout}, {&t.ReplicaFetchBackoff, &def.ReplicaFetchBackoff},
		{&t.GroupInitialRebalanceDelay, &def.GroupInitialRebalanceDelay},
		{&t.GroupMinSessionTimeout, &def.GroupMinSessionTimeout}, {&t.GroupMaxSessionTimeout, &def.GroupMaxSessionTimeout},
		{&t.ConnectionsMaxIdle, &def.ConnectionsMaxIdle},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	return c
}

// validate checks a defaulted config; each error names the offending key.
func (c Config) validate() error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("broker config %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.NodeID < 0 {
		bad("node.id", "%d is negative", c.NodeID)
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		bad("listeners", "%q is not host:port: %v", c.ListenAddr, err)
	}
	if _, _, err := net.SplitHostPort(c.ControllerAddr); err != nil {
		bad("controller.listener", "%q is not host:port: %v", c.ControllerAddr, err)
	}
	if c.AdvertisedPort < 0 || c.AdvertisedPort > 65535 {
		bad("advertised.port", "%d is not a port", c.AdvertisedPort)
	}
	if len(c.Voters) > 0 {
		a, ok := c.Voters[c.NodeID]
		if !ok {
			bad("controller.quorum.voters", "does not name this node %d", c.NodeID)
		} else if _, port, _ := net.SplitHostPort(a); port == "0" {
			bad("controller.quorum.voters", "voter %d address %q: a voter's port must be fixed, not 0", c.NodeID, a)
		} else if a != c.ControllerAddr {
			bad("controller.listener", "%q differs from this node's voter address %q", c.ControllerAddr, a)
		}
	}
	if c.MaxFrameBytes < minFrameBytesLimit {
		bad("socket.request.max.bytes", "%d is below %d", c.MaxFrameBytes, minFrameBytesLimit)
	}
	d := c.Defaults
	if d.NumPartitions < 1 {
		bad("num.partitions", "%d is below 1", d.NumPartitions)
	}
	if d.ReplicationFactor < 1 {
		bad("default.replication.factor", "%d is below 1", d.ReplicationFactor)
	}
	if d.MinInsyncReplicas < 1 {
		bad("min.insync.replicas", "%d is below 1", d.MinInsyncReplicas)
	}
	if d.LogFlushIntervalMessages < 1 {
		bad("log.flush.interval.messages", "%d is below 1", d.LogFlushIntervalMessages)
	}
	if d.LogFlushInterval < 0 {
		bad("log.flush.interval.ms", "%v is negative", d.LogFlushInterval)
	}
	if d.LogSegmentBytes < 1<<10 {
		bad("log.segment.bytes", "%d is below 1024", d.LogSegmentBytes)
	}
	t := c.Timing
	if t.HWCheckpointInterval < 0 {
		bad("replica.high.watermark.checkpoint.interval.ms", "%v is negative", t.HWCheckpointInterval)
	}
	if t.RequestTimeout <= 0 {
		bad("request.timeout.ms", "%v is not positive", t.RequestTimeout)
	}
	if t.ReplicaLagTimeMax <= 0 {
		bad("replica.lag.time.max.ms", "%v is not positive", t.ReplicaLagTimeMax)
	}
	if t.ReplicaFetchWaitMax <= 0 || t.ReplicaFetchWaitMax >= t.ReplicaLagTimeMax {
		bad("replica.fetch.wait.max.ms", "%v must be positive and below replica.lag.time.max.ms %v",
			t.ReplicaFetchWaitMax, t.ReplicaLagTimeMax)
	}
	if t.ReplicaSocketTimeout < t.ReplicaFetchWaitMax {
		bad("replica.socket.timeout.ms", "%v is below replica.fetch.wait.max.ms %v", t.ReplicaSocketTimeout, t.ReplicaFetchWaitMax)
	}
	if t.ReplicaFetchBackoff < 0 {
		bad("replica.fetch.backoff.ms", "%v is negative", t.ReplicaFetchBackoff)
	}
	if t.GroupInitialRebalanceDelay < 0 {
		bad("group.initial.rebalance.delay.ms", "%v is negative", t.GroupInitialRebalanceDelay)
	}
	if t.ConnectionsMaxIdle < 0 {
		bad("connections.max.idle.ms", "%v is negative", t.ConnectionsMaxIdle)
	}
	if t.GroupMinSessionTimeout <= 0 || t.GroupMaxSessionTimeout < t.GroupMinSessionTimeout {
		bad("group.min.session.timeout.ms", "%v must be positive and at most group.max.session.timeout.ms %v",
			t.GroupMinSessionTimeout, t.GroupMaxSessionTimeout)
	}
	if err := c.OffsetsTopic.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// clusterDefaults renders the topic defaults as the controller's cluster-level config map (Kafka names),
// so DescribeConfigs and partition settings read one effective value per key from the metadata image.
func (d TopicDefaults) clusterDefaults() map[string]string {
	m := map[string]string{
		meta.ConfigMinInsyncReplicas:     strconv.FormatInt(int64(d.MinInsyncReplicas), 10),
		meta.ConfigUncleanLeaderElection: strconv.FormatBool(d.UncleanLeaderElectionEnable),
		meta.ConfigFlushMessages:         strconv.FormatInt(d.LogFlushIntervalMessages, 10),
		meta.ConfigSegmentBytes:          strconv.FormatInt(d.LogSegmentBytes, 10),
	}
	if d.LogFlushInterval > 0 {
		m[meta.ConfigFlushMs] = strconv.FormatInt(d.LogFlushInterval.Milliseconds(), 10)
	} else {
		m[meta.ConfigFlushMs] = strconv.FormatInt(math.MaxInt64, 10)
	}
	return m
}

// ParseVoters parses controller.quorum.voters in Kafka's form "1@host:port,2@host:port"; "" gives nil (a
// single-voter quorum).
func ParseVoters(s string) (map[int32]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[int32]string{}
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "@")
		n, err := strconv.ParseInt(id, 10, 32)
		if !ok || err != nil || n < 0 {
			return nil, fmt.Errorf("controller.quorum.voters entry %q is not id@host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("controller.quorum.voters entry %q: %w", part, err)
		}
		if _, dup := out[int32(n)]; dup {
			return nil, fmt.Errorf("controller.quorum.voters names node %d twice", n)
		}
		out[int32(n)] = addr
	}
	return out, nil
}
