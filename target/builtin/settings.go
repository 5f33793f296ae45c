package builtin

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kafkatrial/kafkatrial/broker"
)

// brokerSettings maps each broker setting (Kafka name) the built-in broker honours onto its config. Settings
// a scenario may carry but the broker has no field for yet are listed in unsupportedSettings.
var brokerSettings = map[string]func(c *nodeConfig, v string) error{
	"min.insync.replicas": func(c *nodeConfig, v string) error {
		return setInt32(&c.Defaults.MinInsyncReplicas, v, 1)
	},
	"unclean.leader.election.enable": func(c *nodeConfig, v string) error {
		return setBool(&c.Defaults.UncleanLeaderElectionEnable, v)
	},
	"log.flush.interval.messages": func(c *nodeConfig, v string) error {
		n, err := parseInt(v, 1)
		c.Defaults.LogFlushIntervalMessages = n
		return err
	},
	// log.flush.interval.ms must be positive: the broker reads 0 as "never", which is not Kafka's meaning.
	"log.flush.interval.ms": func(c *nodeConfig, v string) error {
		return setMillis(&c.Defaults.LogFlushInterval, v, 1)
	},
	"default.replication.factor": func(c *nodeConfig, v string) error {
		n, err := parseInt(v, 1)
		if err == nil && n > 1<<15-1 {
			err = fmt.Errorf("%q is above %d", v, 1<<15-1)
		}
		c.Defaults.ReplicationFactor = int16(n)
		return err
	},
	"num.partitions": func(c *nodeConfig, v string) error {
		return setInt32(&c.Defaults.NumPartitions, v, 1)
	},
	"auto.create.topics.enable": func(c *nodeConfig, v string) error {
		return setBool(&c.Defaults.AutoCreateTopicsEnable, v)
	},
	"log.segment.bytes": func(c *nodeConfig, v string) error {
		n, err := parseInt(v, 1024)
		c.Defaults.LogSegmentBytes = n
		return err
	},
	// segment.bytes is the topic-level name; as a broker setting it is the default of every topic.
	"segment.bytes": func(c *nodeConfig, v string) error {
		n, err := parseInt(v, 1024)
		c.Defaults.LogSegmentBytes = n
		return err
	},
	"broker.session.timeout.ms": func(c *nodeConfig, v string) error {
		return setMillis(&c.Timing.Controller.SessionTimeout, v, 1)
	},
	"broker.heartbeat.interval.ms": func(c *nodeConfig, v string) error {
		return setMillis(&c.Timing.Controller.BrokerHeartbeatInterval, v, 1)
	},
	"replica.lag.time.max.ms": func(c *nodeConfig, v string) error {
		return setMillis(&c.Timing.ReplicaLagTimeMax, v, 1)
	},
	"replica.fetch.wait.max.ms": func(c *nodeConfig, v string) error {
		return setMillis(&c.Timing.ReplicaFetchWaitMax, v, 1)
	},
	"replica.socket.timeout.ms": func(c *nodeConfig, v string) error {
		return setMillis(&c.Timing.ReplicaSocketTimeout, v, 1)
	},
	"replica.fetch.backoff.ms": func(c *nodeConfig, v string) error {
		return setMillis(&c.Timing.ReplicaFetchBackoff, v, 1)
	},
	"replica.high.watermark.checkpoint.interval.ms": func(c *nodeConfig, v string) error {
		return setMillis(&c.Timing.HWCheckpointInterval, v, 1)
	},
	// 0 (Kafka's "no delay") cannot be expressed yet: a zero broker.Timing field means "take the profile's".
	"group.initial.rebalance.delay.ms": func(c *nodeConfig, v string) error {
		if v == "0" {
			return fmt.Errorf("0 is not supported yet (a zero delay takes the timing profile's default); use 1 for next to none")
		}
		return setMillis(&c.Timing.GroupInitialRebalanceDelay, v, 1)
	},
	"group.min.session.timeout.ms": func(c *nodeConfig, v string) error {
		return setMillis(&c.Timing.GroupMinSessionTimeout, v, 1)
	},
	"group.max.session.timeout.ms": func(c *nodeConfig, v string) error {
		return setMillis(&c.Timing.GroupMaxSessionTimeout, v, 1)
	},
	"connections.max.idle.ms": func(c *nodeConfig, v string) error {
		return setMillis(&c.Timing.ConnectionsMaxIdle, v, 1)
	},
	"offsets.topic.num.partitions": func(c *nodeConfig, v string) error {
		return setInt32(&c.OffsetsTopic.NumPartitions, v, 1)
	},
	"offsets.topic.replication.factor": func(c *nodeConfig, v string) error {
		n, err := parseInt(v, 1)
		if err == nil && n > 1<<15-1 {
			err = fmt.Errorf("%q is above %d", v, 1<<15-1)
		}
		c.OffsetsTopic.ReplicationFactor = int16(n)
		return err
	},
	"offsets.commit.timeout.ms": func(c *nodeConfig, v string) error {
		return setMillis(&c.OffsetsTopic.CommitTimeout, v, 1)
	},
}

// unsupportedSettings are scenario broker settings the built-in broker has no field for yet. Each is an
// error when set: running a trial with a setting silently ignored would judge the wrong broker.
var unsupportedSettings = map[string]string{
	"retention.ms":      "the broker does not delete old segments (no retention)",
	"max.message.bytes": "broker.TopicDefaults has no max.message.bytes field",
}

// nodeConfig is the part of broker.ClusterConfig that settings change.
type nodeConfig struct {
	Defaults     broker.TopicDefaults
	Timing       broker.Timing
	OffsetsTopic broker.OffsetsTopicConfig
}

// configFor builds the cluster's defaults and timing from a timing profile ("trial", the default, or
// "kafka") and broker settings by Kafka name. Unknown and unsupported settings are errors naming them.
func configFor(timing string, settings map[string]string) (nodeConfig, error) {
	var c nodeConfig
	switch timing {
	case "", "trial":
		c.Timing = broker.TrialTiming()
	case "kafka":
		c.Timing = broker.KafkaTiming()
	default:
		return c, fmt.Errorf("builtin target: cluster.timing %q (want trial or kafka)", timing)
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		set, ok := brokerSettings[k]
		if !ok {
			if why, ok := unsupportedSettings[k]; ok {
				return c, fmt.Errorf("builtin target: broker setting %s is not supported: %s", k, why)
			}
			return c, fmt.Errorf("builtin target: unknown broker setting %s (supported: %s)", k, strings.Join(SupportedSettings(), ", "))
		}
		if err := set(&c, settings[k]); err != nil {
			return c, fmt.Errorf("builtin target: broker setting %s: %w", k, err)
		}
	}
	return c, nil
}

// BrokerConfig maps a timing profile ("trial", the default, or "kafka") and broker settings by Kafka name onto a
// node's topic defaults, timing and __consumer_offsets config, as the built-in target does for its own nodes; `kafkatrial broker node`
// (one node per process or container) takes its --timing and --set flags through it. Unknown and unsupported
// settings are errors naming them.
func BrokerConfig(timing string, settings map[string]string) (broker.TopicDefaults, broker.Timing, broker.OffsetsTopicConfig, error) {
	c, err := configFor(timing, settings)
	return c.Defaults, c.Timing, c.OffsetsTopic, err
}

// SupportedSettings lists the broker settings (Kafka names) the built-in target honours, sorted.
func SupportedSettings() []string {
	out := make([]string, 0, len(brokerSettings))
	for k := range brokerSettings {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func parseInt(v string, min int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not an integer", v)
	}
	if n < min {
		return 0, fmt.Errorf("%q is below %d", v, min)
	}
	return n, nil
}

func setInt32(dst *int32, v string, min int64) error {
	n, err := parseInt(v, min)
	if err == nil && n > 1<<31-1 {
		err = fmt.Errorf("%q is above %d", v, int64(1<<31-1))
	}
	if err == nil {
		*dst = int32(n)
	}
	return err
}

func setBool(dst *bool, v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil || (v != "true" && v != "false") {
		return fmt.Errorf("%q (want true or false)", v)
	}
	*dst = b
	return nil
}

// setMillis reads a Kafka *.ms setting into a time.Duration.
func setMillis(dst *time.Duration, v string, min int64) error {
	n, err := parseInt(v, min)
	if err == nil && n > int64(time.Duration(1<<63-1)/time.Millisecond) {
		err = fmt.Errorf("%q ms is too large", v)
	}
	if err == nil {
		*dst = time.Duration(n) * time.Millisecond
	}
	return err
}
