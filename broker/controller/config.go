package controller

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
)

// Timing is every clock the controller runs on. YAML keys are the Kafka settings playing the role (the lease
// has no Kafka counterpart and takes hashicorp raft's name).
type Timing struct {
	// RaftHeartbeatTimeout: a follower that hears nothing from the leader this long (randomised up to twice
	// that) starts an election; the leader contacts followers ten times per period.
	// (controller.quorum.fetch.timeout.ms)
	RaftHeartbeatTimeout time.Duration `yaml:"controller.quorum.fetch.timeout.ms"`
	// RaftElectionTimeout: a candidate that does not win within this (randomised up to twice) retries.
	// (controller.quorum.election.timeout.ms)
	RaftElectionTimeout time.Duration `yaml:"controller.quorum.election.timeout.ms"`
	// RaftLeaderLease: a leader that cannot reach a quorum this long steps down. At most RaftHeartbeatTimeout.
	RaftLeaderLease time.Duration `yaml:"raft.leader.lease.timeout"`
	// RaftRPCTimeout bounds one raft RPC and the enqueueing of a proposal. (controller.quorum.request.timeout.ms)
	RaftRPCTimeout time.Duration `yaml:"controller.quorum.request.timeout.ms"`
	// BrokerHeartbeatInterval is how often a broker should call Heartbeat. (broker.heartbeat.interval.ms)
	BrokerHeartbeatInterval time.Duration `yaml:"broker.heartbeat.interval.ms"`
	// SessionTimeout: a broker not heard from this long is fenced. (broker.session.timeout.ms)
	SessionTimeout time.Duration `yaml:"broker.session.timeout.ms"`
}

// TrialTiming detects failures and elects within about a second, so a trial sees many failovers: a dead
// raft leader is noticed after 250-500 ms and replaced after one more 250-500 ms election round; a dead
// broker is fenced 600 ms after its last heartbeat (one liveness check later at most).
//
// Measured on loopback (workloads' BenchmarkLeaderKillGap, `kafkatrial run acksall-safe-leader-kill`), a killed
// partition leader costs acks=all producers 0.6-0.8 s: the fence, the new leader in the next image, one client
// metadata refresh (retry.backoff.ms). When the killed node was also the active controller, add the election
// and the fresh session a newly active controller grants every broker (Kafka does the same): 1.0-1.4 s.
func TrialTiming() Timing {
	return Timing{
		RaftHeartbeatTimeout:    250 * time.Millisecond,
		RaftElectionTimeout:     250 * time.Millisecond,
		RaftLeaderLease:         125 * time.Millisecond,
		RaftRPCTimeout:          time.Second,
		BrokerHeartbeatInterval: 100 * time.Millisecond,
		SessionTimeout:          600 * time.Millisecond,
	}
}

// KafkaDefaults is Kafka's own defaults: broker.session.timeout.ms=9000, broker.heartbeat.interval.ms=2000,
// controller.quorum.fetch.timeout.ms=2000, controller.quorum.election.timeout.ms=1000,
// controller.quorum.request.timeout.ms=2000.
func KafkaDefaults() Timing {
	return Timing{
		RaftHeartbeatTimeout:    2 * time.Second,
		RaftElectionTimeout:     2 * time.Second, // hashicorp raft requires election >= heartbeat timeout
		RaftLeaderLease:         time.Second,
		RaftRPCTimeout:          2 * time.Second,
		BrokerHeartbeatInterval: 2 * time.Second,
		SessionTimeout:          9 * time.Second,
	}
}

// fill applies defaults and validates the whole config, naming the bad field.
func (cfg *Config) fill() error {
	if _, ok := cfg.Voters[cfg.NodeID]; !ok {
		return fmt.Errorf("controller config: Voters %v does not include NodeID %d", cfg.Voters, cfg.NodeID)
	}
	for id, addr := range cfg.Voters {
		if id < 0 {
			return fmt.Errorf("controller config: voter id %d is negative", id)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("controller config: voter %d address %q: %w", id, addr, err)
		}
	}
	if cfg.DataDir == "" {
		return fmt.Errorf("controller config: DataDir is empty")
	}
	for k, v := range cfg.ClusterDefaults {
		if err := meta.ValidateConfig(k, v); err != nil {
			return fmt.Errorf("controller config: ClusterDefaults: %w", err)
		}
	}
	if cfg.Listen == nil {
		cfg.Listen = net.Listen
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(discard{}, nil))
	}
	def := TrialTiming()
	t := &cfg.Timing
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&t.RaftHeartbeatTimeout, def.RaftHeartbeatTimeout}, {&t.RaftElectionTimeout, def.RaftElectionTimeout},
		{&t.RaftLeaderLease, def.RaftLeaderLease}, {&t.RaftRPCTimeout, def.RaftRPCTimeout},
		{&t.BrokerHeartbeatInterval, def.BrokerHeartbeatInterval}, {&t.SessionTimeout, def.SessionTimeout}} {
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	switch {
	case t.RaftHeartbeatTimeout < 5*time.Millisecond:
		return fmt.Errorf("controller timing: RaftHeartbeatTimeout %s below 5ms", t.RaftHeartbeatTimeout)
	case t.RaftElectionTimeout < t.RaftHeartbeatTimeout:
		return fmt.Errorf("controller timing: RaftElectionTimeout %s below RaftHeartbeatTimeout %s", t.RaftElectionTimeout, t.RaftHeartbeatTimeout)
	case t.RaftLeaderLease < 5*time.Millisecond || t.RaftLeaderLease > t.RaftHeartbeatTimeout:
		return fmt.Errorf("controller timing: RaftLeaderLease %s not in [5ms, RaftHeartbeatTimeout]", t.RaftLeaderLease)
	case t.RaftRPCTimeout <= 0:
		return fmt.Errorf("controller timing: RaftRPCTimeout %s not positive", t.RaftRPCTimeout)
	case t.BrokerHeartbeatInterval <= 0 || t.SessionTimeout <= t.BrokerHeartbeatInterval:
		return fmt.Errorf("controller timing: SessionTimeout (broker.session.timeout.ms) %s must exceed BrokerHeartbeatInterval (broker.heartbeat.interval.ms) %s",
			t.SessionTimeout, t.BrokerHeartbeatInterval)
	}
	return nil
}
