package controller

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidation(t *testing.T) {
	base := func() Config {
		return Config{NodeID: 1, Voters: map[int32]string{1: "127.0.0.1:1"}, DataDir: t.TempDir()}
	}
	cases := []struct {
		name    string
		mutate  func(*Config)
		mention string
	}{
		{"ok trial defaults", func(*Config) {}, ""},
		{"ok kafka defaults", func(c *Config) { c.Timing = KafkaDefaults() }, ""},
		{"self not a voter", func(c *Config) { c.NodeID = 2 }, "NodeID"},
		{"bad voter address", func(c *Config) { c.Voters[1] = "nohostport" }, "address"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "DataDir"},
		{"session not above heartbeat", func(c *Config) {
			c.Timing = TrialTiming()
			c.Timing.SessionTimeout = c.Timing.BrokerHeartbeatInterval
		}, "broker.session.timeout.ms"},
		{"lease above raft heartbeat timeout", func(c *Config) { c.Timing.RaftLeaderLease = time.Hour }, "RaftLeaderLease"},
		{"election below heartbeat timeout", func(c *Config) {
			c.Timing.RaftHeartbeatTimeout = time.Second
			c.Timing.RaftElectionTimeout = 10 * time.Millisecond
		}, "RaftElectionTimeout"},
		{"bad cluster default", func(c *Config) {
			c.ClusterDefaults = map[string]string{"min.insync.replicas": "0"}
		}, "min.insync.replicas"},
		{"unknown cluster default", func(c *Config) {
			c.ClusterDefaults = map[string]string{"num.partitionz": "1"}
		}, "num.partitionz"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.mutate(&cfg)
			err := cfg.fill()
			if tc.mention == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Timing.SessionTimeout == 0 || cfg.Listen == nil || cfg.Dial == nil || cfg.Logger == nil {
					t.Fatalf("defaults not filled: %+v", cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %v does not mention %q", err, tc.mention)
			}
		})
	}
}

func TestStartFailsCleanlyWhenAddressInUse(t *testing.T) {
	addr := freeAddrs(t, 1)[0]
	voters := map[int32]string{1: addr}
	c := startVoter(t, 1, voters, t.TempDir())
	defer c.Close()
	_, err := Start(Config{NodeID: 1, Voters: voters, DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "listen on "+addr) {
		t.Fatalf("second voter on %s: err = %v, want a listen error naming the address", addr, err)
	}
}
