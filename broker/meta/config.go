package meta

import (
	"fmt"
	"strconv"
)

// Topic config keys the built-in broker understands (Kafka's names).
const (
	ConfigMinInsyncReplicas     = "min.insync.replicas"
	ConfigUncleanLeaderElection = "unclean.leader.election.enable"
	ConfigFlushMessages         = "log.flush.interval.messages"
	ConfigFlushMs               = "log.flush.interval.ms"
	ConfigRetentionMs           = "retention.ms"
	ConfigCleanupPolicy         = "cleanup.policy"
	ConfigSegmentBytes          = "segment.bytes"
	ConfigMaxMessageBytes       = "max.message.bytes"
)

// configRules validates each known key's value; the bounds are Kafka's.
var configRules = map[string]func(string) error{
	ConfigMinInsyncReplicas:     intAtLeast(1, 32),
	ConfigUncleanLeaderElection: oneOf("true", "false"),
	ConfigFlushMessages:         intAtLeast(1, 64),
	ConfigFlushMs:               intAtLeast(0, 64),
	ConfigRetentionMs:           intAtLeast(-1, 64),
	ConfigCleanupPolicy:         cleanupPolicy,
	ConfigSegmentBytes:          intAtLeast(14, 32),
	ConfigMaxMessageBytes:       intAtLeast(0, 32),
}

// ValidateConfig checks one topic config; the error names the key and the accepted values.
func ValidateConfig(key, value string) error {
	rule, ok := configRules[key]
	if !ok {
		return fmt.Errorf("unknown config %q", key)
	}
	if err := rule(value); err != nil {
		return fmt.Errorf("config %s=%q: %w", key, value, err)
	}
	return nil
}

// cleanupPolicy accepts delete only: the built-in broker does not compact logs, and a compact topic that kept
// every record would mislead whoever relies on compaction.
func cleanupPolicy(v string) error {
	switch v {
	case "delete":
		return nil
	case "compact", "delete,compact", "compact,delete":
		return fmt.Errorf("log compaction is not implemented by the built-in broker (only \"delete\")")
	}
	return fmt.Errorf("must be one of %q", []string{"delete", "compact", "delete,compact", "compact,delete"})
}

func intAtLeast(lo int64, bits int) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			return fmt.Errorf("not an integer of %d bits", bits)
		}
		if n < lo {
			return fmt.Errorf("must be at least %d", lo)
		}
		return nil
	}
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("must be one of %q", allowed)
	}
}
