package external

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/nemesis"
	"github.com/kafkatrial/kafkatrial/scenarios"
	"github.com/kafkatrial/kafkatrial/workloads"
)

func init() { scenarios.RegisterTarget("external", start) }

// Target is a Kafka cluster kafkatrial did not start, reached through bootstrap seeds. Its topology comes
// from the cluster's own metadata; its faults run through the user's commands, one per node.
type Target struct {
	cfg     *Config
	tmpl    map[string]*template
	seeds   []string
	logger  *slog.Logger
	cmds    *commandRunner
	logPath string
	cl      *kgo.Client
	// ids is the expected set of brokers: those in Metadata at start plus those named in Config.Hosts.
	ids []int32
	// addrs holds each expected broker's host (for {host} and {peers}) and its advertised port (0 if never
	// seen), learnt at start: a broker that is down later keeps its address.
	addrs map[int32]brokerAddr

	mu sync.Mutex // guards the sets below, which record what we changed so that heal undoes exactly that
	// down are brokers kill, stop or power-loss took down (restart brings them back); paused, brokers pause
	// froze; netFaulted, brokers with a network fault (isolate, latency, lose-responses) not yet healed.
	down, paused, netFaulted map[int32]bool
}

type brokerAddr struct {
	host string
	port int32
}

// Options configure New.
type Options struct {
	// Bootstrap lists host:port seeds of the cluster; required.
	Bootstrap []string
	// Config holds the fault commands; nil means none (every fault is refused).
	Config *Config
	// Dir receives the command log (commands.log) until Collect copies it; required.
	Dir string
	// ExpectNodes, when positive, is the number of brokers the scenario expects; a different count in the
	// cluster is logged as a warning (the scenario's replication factor may not fit).
	ExpectNodes int
	// BrokerSettings are the broker-level settings the scenario asks for. The cluster is not ours to
	// configure, so New checks each broker reports these values and refuses to start otherwise.
	BrokerSettings map[string]string
	Logger         *slog.Logger
}

// start is the scenarios.TargetStarter of "external".
func start(ctx context.Context, tc scenarios.TargetConfig) (scenarios.Target, error) {
	cfg, path, err := configFor(tc.ExternalConfig)
	if err != nil {
		return nil, err
	}
	logger := tc.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if path == "" {
		logger.Warn("the external target has no command config: every fault is refused", "env", ConfigEnv, "scenario key", "cluster.external_config")
	}
	settings := map[string]string{}
	for k, v := range tc.Broker {
		if !strings.HasPrefix(k, "external.") {
			settings[k] = v
		}
	}
	t, err := New(ctx, Options{Bootstrap: tc.Bootstrap, Config: cfg, Dir: tc.Dir, ExpectNodes: tc.Nodes,
		BrokerSettings: settings, Logger: logger})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// configFor loads the config named by the scenario's cluster.external_config (--external-config), else by
// $KAFKATRIAL_EXTERNAL_CONFIG; with neither it returns an empty config and path "".
func configFor(path string) (*Config, string, error) {
	if path == "" {
		path = os.Getenv(ConfigEnv)
	}
	if path == "" {
		return &Config{Timeout: DefaultTimeout}, "", nil
	}
	cfg, err := LoadConfig(path)
	return cfg, path, err
}

// New connects to the cluster, learns its brokers from Metadata and checks the scenario's broker settings.
func New(ctx context.Context, o Options) (*Target, error) {
	if len(o.Bootstrap) == 0 {
		return nil, errors.New("the external target needs bootstrap addresses (cluster.bootstrap or --bootstrap)")
	}
	if o.Dir == "" {
		return nil, errors.New("the external target needs a directory for its command log")
	}
	if o.Config == nil {
		o.Config = &Config{}
	}
	if o.Config.Timeout <= 0 {
		o.Config.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	tmpl, err := o.Config.templates()
	if err != nil {
		return nil, fmt.Errorf("external target config: %w", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(o.Bootstrap...), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RetryTimeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connecting to the external cluster %v: %w", o.Bootstrap, err)
	}
	t := &Target{cfg: o.Config, tmpl: tmpl, seeds: slices.Clone(o.Bootstrap), logger: o.Logger.With("target", "external"),
		cl: cl, addrs: map[int32]brokerAddr{}, down: map[int32]bool{}, paused: map[int32]bool{}, netFaulted: map[int32]bool{}}
	if err := t.learnBrokers(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	if o.ExpectNodes > 0 && o.ExpectNodes != len(t.ids) {
		t.logger.Warn("the scenario expects a different number of brokers than the external cluster has",
			"expected", o.ExpectNodes, "cluster", len(t.ids))
	}
	if err := t.checkBrokerSettings(ctx, o.BrokerSettings); err != nil {
		cl.Close()
		return nil, err
	}
	t.logPath = filepath.Join(o.Dir, "external-commands.log")
	if t.cmds, err = newCommandRunner(t.logPath, o.Config.Timeout, t.logger); err != nil {
		cl.Close()
		return nil, err
	}
	return t, nil
}

// learnBrokers fills the expected set and the address table from Metadata (retrying until ctx or 30s ends)
// and Config.Hosts.
func (t *Target) learnBrokers(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	for {
		md, err := t.metadata(ctx, []string{})
		if err == nil {
			for _, b := range md.Brokers {
				t.addrs[b.NodeID] = brokerAddr{host: b.Host, port: b.Port}
			}
			break
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("reading the external cluster's metadata from %v: %w", t.seeds, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
	for id, h := range t.cfg.Hosts {
		a := t.addrs[id]
		a.host = h
		t.addrs[id] = a
	}
	for id, a := range t.addrs {
		if err := checkHost(a.host); err != nil {
			return fmt.Errorf("broker %d advertises an unusable host (set hosts.%d in the config): %w", id, id, err)
		}
		t.ids = append(t.ids, id)
	}
	slices.Sort(t.ids)
	if len(t.ids) == 0 {
		return fmt.Errorf("the external cluster at %v lists no brokers", t.seeds)
	}
	t.logger.Info("external cluster", "brokers", t.Nodes())
	return nil
}

// Nodes lists "node-<broker id>" for every expected broker.
func (t *Target) Nodes() []string {
	out := make([]string, len(t.ids))
	for i, id := range t.ids {
		out[i] = nodeName(id)
	}
	return out
}

// Supports reports whether the config has the commands a basic fault kind needs (its act and its undo).
func (t *Target) Supports(k nemesis.Kind) bool {
	need := map[nemesis.Kind][]string{
		nemesis.Kill:          {"kill", "restart"},
		nemesis.Stop:          {"stop", "restart"},
		nemesis.PowerLoss:     {"power-loss", "restart"},
		nemesis.Pause:         {"pause", "resume"},
		nemesis.Partition:     {"isolate", "heal"},
		nemesis.Latency:       {"latency", "heal"},
		nemesis.LoseResponses: {"lose-responses", "heal"},
		nemesis.Corrupt:       {"corrupt", "heal"},
		nemesis.ResetConns:    {"reset-connections"},
	}[k]
	if len(need) == 0 {
		return false
	}
	for _, key := range need {
		if t.tmpl[key] == nil {
			return false
		}
	}
	return true
}

// Bootstrap returns the seeds the target was given.
func (t *Target) Bootstrap() []string { return slices.Clone(t.seeds) }

// Dial is nil: clients reach the external cluster with a plain dialer.
func (t *Target) Dial() workloads.DialFunc { return nil }

// Collect copies the command log to dir/commands.log. Broker logs stay on the cluster's hosts.
func (t *Target) Collect(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	src, err := os.Open(t.logPath)
	if err != nil {
		return fmt.Errorf("opening the command log: %w", err)
	}
	defer src.Close()
	dst, err := os.Create(filepath.Join(dir, "commands.log"))
	if err != nil {
		return fmt.Errorf("creating commands.log: %w", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copying the command log: %w", err)
	}
	return dst.Close()
}

// Close undoes what the target changed (heals network faults, resumes paused brokers, restarts brokers it
// took down) and disconnects. It never stops the cluster: the cluster is not ours.
func (t *Target) Close(ctx context.Context) error {
	var errs []error
	if err := t.HealNetwork(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := t.Resume(ctx, t.Nodes()); err != nil {
		errs = append(errs, err)
	}
	if err := t.Restart(ctx, t.Nodes()); err != nil {
		errs = append(errs, err)
	}
	if t.cl != nil {
		t.cl.Close()
	}
	if err := t.cmds.close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the command log: %w", err))
	}
	return errors.Join(errs...)
}

// Kill runs the kill command on each node; Restart brings them back.
func (t *Target) Kill(ctx context.Context, nodes []string) error {
	return t.takeDown(ctx, "kill", nodes)
}

// Stop runs the stop command on each node; Restart brings them back.
func (t *Target) Stop(ctx context.Context, nodes []string) error {
	return t.takeDown(ctx, "stop", nodes)
}

// PowerLoss runs the power-loss command on each node; Restart brings them back.
func (t *Target) PowerLoss(ctx context.Context, nodes []string) error {
	return t.takeDown(ctx, "power-loss", nodes)
}

// Restart runs the restart command on each of nodes this target took down; other nodes are left alone, so
// it is safe on every node.
func (t *Target) Restart(ctx context.Context, nodes []string) error {
	return t.undo(ctx, "restart", nodes, t.down)
}

// Pause runs the pause command on each node.
func (t *Target) Pause(ctx context.Context, nodes []string) error {
	return t.forEach(ctx, "pause", nodes, func(id int32) { t.paused[id] = true }, nil)
}

// Resume runs the resume command on each of nodes this target paused; other nodes are left alone.
func (t *Target) Resume(ctx context.Context, nodes []string) error {
	return t.undo(ctx, "resume", nodes, t.paused)
}

// takeDown marks each node down before its command runs: a command that failed may still have stopped the
// broker, and a restart of a running broker is expected to be harmless.
func (t *Target) takeDown(ctx context.Context, key string, nodes []string) error {
	return t.forEach(ctx, key, nodes, func(id int32) { t.down[id] = true }, nil)
}

// undo runs key on the nodes that are in set, clearing each on success.
func (t *Target) undo(ctx context.Context, key string, nodes []string, set map[int32]bool) error {
	var todo []string
	t.mu.Lock()
	for _, n := range nodes {
		if id, err := t.nodeID(n); err == nil && set[id] {
			todo = append(todo, n)
		}
	}
	t.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	return t.forEach(ctx, key, todo, nil, func(id int32) { delete(set, id) })
}

// forEach runs the key command once per node, in order, with before and after (if any) applied to the
// target's state under its lock around each run. It goes on after a failure and returns every error.
func (t *Target) forEach(ctx context.Context, key string, nodes []string, before, after func(id int32)) error {
	return t.forEachVars(ctx, key, nodes, nil, before, after)
}

func (t *Target) forEachVars(ctx context.Context, key string, nodes []string, extra map[string]string, before, after func(id int32)) error {
	tp := t.tmpl[key]
	if tp == nil {
		return fmt.Errorf("no %s command is configured: %w", key, nemesis.ErrUnsupported)
	}
	var errs []error
	for _, n := range nodes {
		id, err := t.nodeID(n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vars := t.vars(id)
		for k, v := range extra {
			vars[k] = v
		}
		command, err := tp.expand(vars)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
			continue
		}
		if before != nil {
			t.mu.Lock()
			before(id)
			t.mu.Unlock()
		}
		if err := t.cmds.run(ctx, key, n, command); err != nil {
			errs = append(errs, err)
			continue
		}
		if after != nil {
			t.mu.Lock()
			after(id)
			t.mu.Unlock()
		}
	}
	return errors.Join(errs...)
}

// vars returns the placeholder values of broker id.
func (t *Target) vars(id int32) map[string]string {
	var peers []string
	for _, o := range t.ids {
		if o != id {
			peers = append(peers, t.addrs[o].host)
		}
	}
	a := t.addrs[id]
	return commonVars(id, a.host, a.port, peers)
}

// nodeID parses "node-<id>" and checks the broker is in the expected set.
func (t *Target) nodeID(name string) (int32, error) {
	s, ok := strings.CutPrefix(name, "node-")
	id, err := strconv.ParseInt(s, 10, 32)
	if !ok || err != nil || !slices.Contains(t.ids, int32(id)) {
		return 0, fmt.Errorf("no node %q in the external cluster (have %s)", name, strings.Join(t.Nodes(), ", "))
	}
	return int32(id), nil
}

func nodeName(id int32) string { return "node-" + strconv.Itoa(int(id)) }
