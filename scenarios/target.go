package scenarios

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/kafkatrial/kafkatrial/nemesis"
	"github.com/kafkatrial/kafkatrial/workloads"
)

// Target is a running cluster under trial, as the runner sees it: the nemesis's view of it plus what clients
// need to reach it.
type Target interface {
	nemesis.Cluster
	// Bootstrap lists seed addresses for clients.
	Bootstrap() []string
	// Dial opens client connections (nil: a plain dialer). The built-in target gives clients a loopback
	// address of their own so network faults can tell them from brokers.
	Dial() workloads.DialFunc
	// Collect writes broker logs and a dump of each replica's final log under dir (the run's nodes/).
	Collect(ctx context.Context, dir string) error
	// Close stops every node and frees everything the target started.
	Close(ctx context.Context) error
}

// TargetConfig is what a target needs to start: plain data drawn from the scenario.
type TargetConfig struct {
	Nodes int
	// Timing is "trial" or "kafka".
	Timing string
	// Broker holds broker-level settings by Kafka name.
	Broker    map[string]string
	Image     string
	Bootstrap []string
	// ExternalConfig names the external target's fault-command file.
	ExternalConfig string
	// Dir is a scratch directory for the target's data (node data directories live under it).
	Dir    string
	Seed   int64
	Logger *slog.Logger
}

// TargetStarter starts a target.
type TargetStarter func(ctx context.Context, cfg TargetConfig) (Target, error)

var (
	targetsMu sync.Mutex
	targets   = map[string]TargetStarter{}
)

// RegisterTarget makes a target available by name (builtin, docker, external). Target packages call it from
// init; the kafkatrial command imports them all.
func RegisterTarget(name string, start TargetStarter) {
	targetsMu.Lock()
	defer targetsMu.Unlock()
	targets[name] = start
}

func startTarget(ctx context.Context, name string, cfg TargetConfig) (Target, error) {
	targetsMu.Lock()
	start, ok := targets[name]
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	targetsMu.Unlock()
	if !ok {
		sort.Strings(names)
		return nil, fmt.Errorf("target %q is not available in this build (have: %s)", name, strings.Join(names, ", "))
	}
	return start(ctx, cfg)
}
