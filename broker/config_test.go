package broker

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidateNamesTheKey(t *testing.T) {
	cases := []struct {
		key    string
		mutate func(*Config)
	}{
		{"node.id", func(c *Config) { c.NodeID = -1 }},
		{"listeners", func(c *Config) { c.ListenAddr = "nonsense" }},
		{"socket.request.max.bytes", func(c *Config) { c.MaxFrameBytes = 10 }},
		{"num.partitions", func(c *Config) { c.Defaults.NumPartitions = -3 }},
		{"min.insync.replicas", func(c *Config) { c.Defaults.MinInsyncReplicas = -1 }},
		{"log.flush.interval.ms", func(c *Config) { c.Defaults.LogFlushInterval = -1 }},
		{"controller.quorum.voters", func(c *Config) { c.Voters = map[int32]string{2: "127.0.0.1:1"} }},
		{"controller.quorum.voters", func(c *Config) { c.Voters = map[int32]string{1: "127.0.0.1:0"} }},
		{"replica.fetch.wait.max.ms", func(c *Config) { c.Timing.ReplicaFetchWaitMax = 2 * time.Second }},
		{"replica.lag.time.max.ms", func(c *Config) { c.Timing.ReplicaLagTimeMax = -time.Second }},
		{"group.min.session.timeout.ms", func(c *Config) { c.Timing.GroupMinSessionTimeout = time.Hour }},
	}
	for _, c := range cases {
		cfg := Config{NodeID: 1}
		c.mutate(&cfg)
		err := cfg.withDefaults().validate()
		if err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: error %v does not name the key", c.key, err)
		}
	}
	if err := (Config{NodeID: 1}).withDefaults().validate(); err != nil {
		t.Fatalf("defaults must be valid: %v", err)
	}
	if err := (Config{NodeID: 1, Timing: KafkaTiming()}).withDefaults().validate(); err != nil {
		t.Fatalf("Kafka's timing must be valid: %v", err)
	}
}
