package builtin

import (
	"strings"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker"
	"github.com/kafkatrial/kafkatrial/broker/controller"
)

func TestConfigFor(t *testing.T) {
	tests := []struct {
		name     string
		timing   string
		settings map[string]string
		check    func(nodeConfig) bool
		err      string // substring of the error; "" for success
	}{
		{name: "trial timing by default", check: func(c nodeConfig) bool { return c.Timing == broker.TrialTiming() }},
		{name: "kafka timing", timing: "kafka", check: func(c nodeConfig) bool {
			return c.Timing == broker.KafkaTiming() && c.Timing.Controller == controller.KafkaDefaults()
		}},
		{name: "bad timing", timing: "fast", err: `cluster.timing "fast"`},
		{name: "topic defaults", settings: map[string]string{"min.insync.replicas": "2", "unclean.leader.election.enable": "true",
			"default.replication.factor": "3", "num.partitions": "6", "auto.create.topics.enable": "true"},
			check: func(c nodeConfig) bool {
				d := c.Defaults
				return d.MinInsyncReplicas == 2 && d.UncleanLeaderElectionEnable && d.ReplicationFactor == 3 &&
					d.NumPartitions == 6 && d.AutoCreateTopicsEnable
			}},
		{name: "flush", settings: map[string]string{"log.flush.interval.messages": "1", "log.flush.interval.ms": "250"},
			check: func(c nodeConfig) bool {
				return c.Defaults.LogFlushIntervalMessages == 1 && c.Defaults.LogFlushInterval == 250*time.Millisecond
			}},
		{name: "liveness timing overrides the profile", timing: "kafka",
			settings: map[string]string{"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"},
			check: func(c nodeConfig) bool {
				t := c.Timing.Controller
				return t.SessionTimeout == 3*time.Second && t.BrokerHeartbeatInterval == 500*time.Millisecond &&
					t.RaftHeartbeatTimeout == controller.KafkaDefaults().RaftHeartbeatTimeout
			}},
		{name: "segment bytes by either name", settings: map[string]string{"segment.bytes": "4096"},
			check: func(c nodeConfig) bool { return c.Defaults.LogSegmentBytes == 4096 }},
		{name: "replication and group timing", settings: map[string]string{"replica.lag.time.max.ms": "500",
			"group.initial.rebalance.delay.ms": "20"},
			check: func(c nodeConfig) bool {
				return c.Timing.ReplicaLagTimeMax == 500*time.Millisecond && c.Timing.GroupInitialRebalanceDelay == 20*time.Millisecond
			}},
		{name: "offsets topic", settings: map[string]string{"offsets.topic.num.partitions": "4",
			"offsets.topic.replication.factor": "2", "offsets.commit.timeout.ms": "1500"},
			check: func(c nodeConfig) bool {
				o := c.OffsetsTopic
				return o.NumPartitions == 4 && o.ReplicationFactor == 2 && o.CommitTimeout == 1500*time.Millisecond
			}},
		{name: "no retention", settings: map[string]string{"retention.ms": "1000"}, err: "retention.ms is not supported"},
		{name: "zero rebalance delay not expressible", settings: map[string]string{"group.initial.rebalance.delay.ms": "0"}, err: "group.initial.rebalance.delay.ms"},
		{name: "unknown", settings: map[string]string{"log.retention.bytes": "1"}, err: "unknown broker setting log.retention.bytes"},
		{name: "bad bool", settings: map[string]string{"unclean.leader.election.enable": "yes"}, err: "unclean.leader.election.enable"},
		{name: "below minimum", settings: map[string]string{"min.insync.replicas": "0"}, err: "min.insync.replicas"},
		{name: "zero flush interval", settings: map[string]string{"log.flush.interval.ms": "0"}, err: "log.flush.interval.ms"},
		{name: "not a number", settings: map[string]string{"num.partitions": "three"}, err: "num.partitions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := configFor(tc.timing, tc.settings)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.check != nil && !tc.check(c):
				t.Fatalf("config %+v", c)
			}
		})
	}
}

func TestNodeNames(t *testing.T) {
	tg := &Target{names: []string{"node-1", "node-2", "node-3"}}
	ids, err := tg.ids([]string{"node-3", "node-1"})
	if err != nil || len(ids) != 2 || ids[0] != 3 || ids[1] != 1 {
		t.Fatalf("ids = %v, %v", ids, err)
	}
	for _, bad := range []string{"node-4", "node-0", "client", "node-x", "3"} {
		if _, err := tg.ids([]string{bad}); err == nil {
			t.Errorf("ids(%q) accepted", bad)
		}
	}
	if NodeIP(7) != "127.0.0.17" || NodeName(7) != "node-7" {
		t.Fatalf("node 7 is %s at %s", NodeName(7), NodeIP(7))
	}
	if !tg.Supports("kill") || !tg.Supports("latency") || tg.Supports("rolling-bounce") || tg.Supports("crash-producer") {
		t.Fatal("Supports must accept exactly the basic kinds")
	}
}
