package builtin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kafkatrial/kafkatrial/broker"
	"github.com/kafkatrial/kafkatrial/nemesis"
	"github.com/kafkatrial/kafkatrial/nemesis/faultnet"
	"github.com/kafkatrial/kafkatrial/scenarios"
	"github.com/kafkatrial/kafkatrial/workloads"
)

func init() {
	scenarios.RegisterTarget("builtin", func(ctx context.Context, cfg scenarios.TargetConfig) (scenarios.Target, error) {
		t, err := Start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return t, nil
	})
}

// Target is a running built-in cluster under trial. It implements scenarios.Target (and so nemesis.Cluster).
// Every method is safe for concurrent use.
type Target struct {
	cluster *broker.Cluster
	net     *faultnet.Net
	names   []string // node-1..node-N
	seed    int64
	logger  *slog.Logger

	mu    sync.Mutex // guards draws
	draws uint64     // latency faults started, so each draws from its own seeded stream

	closeMu  sync.Mutex // guards closed and closeErr
	closed   bool
	closeErr error
}

// ClientIP is the loopback address clients dial from: any address that is not a node's is faultnet's
// "client" pseudo-node, and binding it explicitly keeps attribution exact.
const ClientIP = "127.0.0.1"

// NodeName is the faultnet and nemesis name of node id.
func NodeName(id int32) string { return "node-" + strconv.Itoa(int(id)) }

// NodeIP is the loopback IP node id's broker binds (node 1: 127.0.0.11).
func NodeIP(id int32) string { return "127.0.0.1" + strconv.Itoa(int(id)) }

// ControllerName is the faultnet name of node id's controller ("ctrl-1"): the controller quorum's traffic has
// a network identity of its own, so a data-plane partition can leave it connected.
func ControllerName(id int32) string { return "ctrl-" + strconv.Itoa(int(id)) }

// ControllerIP is the loopback IP node id's controller binds (node 1: 127.0.0.21).
func ControllerIP(id int32) string { return "127.0.0.2" + strconv.Itoa(int(id)) }

// CheckLoopback reports whether this machine lets a process bind the client IP and every node IP of a
// cluster of n nodes (Linux routes all of 127.0.0.0/8 to loopback; some systems only 127.0.0.1).
func CheckLoopback(n int) error {
	ips := []string{ClientIP}
	for id := int32(1); id <= int32(n); id++ {
		ips = append(ips, NodeIP(id), ControllerIP(id))
	}
	for _, ip := range ips {
		ln, err := net.Listen("tcp4", net.JoinHostPort(ip, "0"))
		if err != nil {
			return fmt.Errorf("builtin target: cannot bind loopback IP %s: %w", ip, err)
		}
		ln.Close()
	}
	return nil
}

// Start starts a built-in cluster of cfg.Nodes nodes (default 3) with data under cfg.Dir. It returns once
// every node is registered and unfenced and a controller is active.
func Start(ctx context.Context, cfg scenarios.TargetConfig) (*Target, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = broker.DefaultClusterNodes
	}
	if cfg.Nodes < 1 || cfg.Nodes > broker.MaxClusterNodes {
		return nil, fmt.Errorf("builtin target: %d nodes (want 1 to %d)", cfg.Nodes, broker.MaxClusterNodes)
	}
	if cfg.Dir == "" {
		return nil, errors.New("builtin target: no data directory (TargetConfig.Dir)")
	}
	nc, err := configFor(cfg.Timing, cfg.Broker)
	if err != nil {
		return nil, err
	}
	if err := CheckLoopback(cfg.Nodes); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := &Target{net: faultnet.New(logger), seed: cfg.Seed, logger: logger}
	for id := int32(1); id <= int32(cfg.Nodes); id++ {
		t.names = append(t.names, NodeName(id))
		t.net.AddNode(NodeName(id), NodeIP(id))
		t.net.AddNode(ControllerName(id), ControllerIP(id))
	}
	timeout := broker.DefaultClusterStartTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(d), time.Second))
	}
	t.cluster, err = broker.StartCluster(broker.ClusterConfig{
		Nodes: cfg.Nodes, Dir: cfg.Dir,
		Host: NodeIP,
		Net: func(id int32) (func(string, string) (net.Listener, error), func(context.Context, string, string) (net.Conn, error)) {
			return t.net.Listen(NodeName(id)), t.net.Dial(NodeName(id))
		},
		ControllerHost: ControllerIP,
		ControllerNet: func(id int32) (func(string, string) (net.Listener, error), func(context.Context, string, string) (net.Conn, error)) {
			return t.net.Listen(ControllerName(id)), t.net.Dial(ControllerName(id))
		},
		Defaults: nc.Defaults, Timing: nc.Timing, OffsetsTopic: nc.OffsetsTopic, Logger: logger, StartTimeout: timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("builtin target: %w", err)
	}
	return t, nil
}

// Cluster is the underlying broker cluster (for tests and tools that need a node directly).
func (t *Target) Cluster() *broker.Cluster { return t.cluster }

// Net is the fault layer every connection passes through.
func (t *Target) Net() *faultnet.Net { return t.net }

// Bootstrap lists every node's client address.
func (t *Target) Bootstrap() []string { return t.cluster.Bootstrap() }

// Dial returns a dialer bound to ClientIP, so faultnet attributes every client connection to "client".
func (t *Target) Dial() workloads.DialFunc {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ClientIP)}}
	return d.DialContext
}

// Close heals the network and resumes paused nodes (so clean shutdowns are not stalled by a fault) and stops
// every node cleanly. Calling it again returns the first call's result.
func (t *Target) Close(ctx context.Context) error {
	t.closeMu.Lock()
	defer t.closeMu.Unlock()
	if t.closed {
		return t.closeErr
	}
	t.closed = true
	t.net.HealAll()
	for _, id := range t.cluster.IDs() {
		// Resume fails only for an id outside the cluster, which IDs never returns.
		_ = t.cluster.Resume(id)
	}
	t.closeErr = t.cluster.Close()
	return t.closeErr
}

// ids turns node names into ids, refusing unknown names.
func (t *Target) ids(nodes []string) ([]int32, error) {
	out := make([]int32, 0, len(nodes))
	for _, name := range nodes {
		id, err := t.id(name)
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

func (t *Target) id(name string) (int32, error) {
	s, ok := strings.CutPrefix(name, "node-")
	n, err := strconv.Atoi(s)
	if !ok || err != nil || n < 1 || n > len(t.names) {
		return 0, fmt.Errorf("builtin target: no node %q (nodes: %s)", name, strings.Join(t.names, ", "))
	}
	return int32(n), nil
}

// names of ids, in order.
func names(ids []int32) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = NodeName(id)
	}
	return out
}

var _ scenarios.Target = (*Target)(nil)
var _ nemesis.Cluster = (*Target)(nil)
