package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/api/types/container"
	mnet "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/nemesis"
	"github.com/kafkatrial/kafkatrial/scenarios"
	"github.com/kafkatrial/kafkatrial/workloads"
)

func init() {
	scenarios.RegisterTarget("docker", func(ctx context.Context, cfg scenarios.TargetConfig) (scenarios.Target, error) {
		t, err := Start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return t, nil
	})
	scenarios.RegisterFaultCheck("docker", func(c scenarios.Cluster, k nemesis.Kind, shape nemesis.Shape) error {
		return Expressible(c.Image, k, shape)
	})
	scenarios.RegisterBrokerDefaults("docker", func(c scenarios.Cluster) map[string]string {
		// Our image keeps Kafka's defaults, as Apache Kafka does; Redpanda has no such settings.
		if kind, _, err := ParseImage(c.Image); err == nil && (kind == KindKafkatrial || kind == KindKafka) {
			return scenarios.KafkaDurabilityDefaults()
		}
		return nil
	})
}

// Target is a cluster of containers under trial, one node per container on a user-defined Docker network. It
// implements scenarios.Target (and so nemesis.Cluster). Every method is safe for concurrent use; lifecycle
// operations on one node are serialised by that node's op lock.
type Target struct {
	kind    Kind
	nodes   []*node // index id-1
	names   []string
	network *testcontainers.DockerNetwork
	cli     *testcontainers.DockerClient
	logger  *slog.Logger
	// hostAddrs maps each advertised address (node-N:9092) to its loopback port on this host. Ports are fixed
	// at Start and survive restarts and reconnects, so the map never changes.
	hostAddrs map[string]string

	netMu   sync.Mutex       // guards cuts and nextCut
	cuts    map[int][]string // active partitions by id: the nodes each disconnected
	nextCut int

	closeMu  sync.Mutex // guards closed and closeErr
	closed   bool
	closeErr error
}

// node is one node's container and the state the target last put it in.
type node struct {
	spec     nodeSpec
	c        testcontainers.Container
	hostPort int
	admin    *kgo.Client // a client whose only seed is this node, for metadata questions asked of it
	ip       string      // its address on the network when a partition disconnected it; guarded by Target.netMu
	op       sync.Mutex  // serialises Kill, Stop, Restart, PowerLoss, Pause and Resume of this node
	state    atomic.Int32
}

// Node states as the target last set them (Healthy checks the engine's view as well).
const (
	stateUp int32 = iota
	stateDown
	statePaused
)

// Timeouts of the target's operations. Every wait is bounded and its error names the node and the step.
const (
	// DefaultStartTimeout bounds Start (image build excluded: BuildImage has its own bound) when ctx has no
	// earlier deadline.
	DefaultStartTimeout = 3 * time.Minute
	// readyTimeout bounds one node's wait for its ready line after a (re)start.
	readyTimeout = 90 * time.Second
	// opTimeout bounds one engine call (kill, pause, network connect, ...).
	opTimeout = 30 * time.Second
	// registerTimeout bounds the wait, after every container is up, for every broker to be in the metadata.
	registerTimeout = 60 * time.Second
)

// Start starts a cluster of cfg.Nodes nodes (default 3) as containers of cfg.Image (default: kafkatrial's own
// broker, built from this module) and returns once every node logged its ready line and every broker appears
// in the metadata. On any failure everything started so far is removed.
func Start(ctx context.Context, cfg scenarios.TargetConfig) (*Target, error) {
	// The reaper container (Ryuk) cannot run with this engine; the target removes what it starts itself.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	if cfg.Nodes == 0 {
		cfg.Nodes = 3
	}
	kind, image, err := ParseImage(cfg.Image)
	if err != nil {
		return nil, err
	}
	sp, err := specs(kind, image, cfg.Nodes, cfg.Timing, cfg.Broker, cfg.Seed)
	if err != nil {
		return nil, err
	}
	return startSpecs(ctx, cfg, kind, sp)
}

// startSpecs starts containers as sp describes (building kafkatrial's image where sp names none).
func startSpecs(ctx context.Context, cfg scenarios.TargetConfig, kind Kind, sp []nodeSpec) (*Target, error) {
	if err := Available(ctx); err != nil {
		return nil, fmt.Errorf("docker target: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStartTimeout)
		defer cancel()
	}
	tcLogger := slogPrintf{logger}
	// testcontainers prints its banner and network progress through its global logger; route them to ours.
	tclog.SetDefault(tcLogger)
	if kind == KindKafkatrial && sp[0].Image == "" {
		provider, err := testcontainers.NewDockerProvider(testcontainers.WithLogger(tcLogger))
		if err != nil {
			return nil, fmt.Errorf("docker target: connecting to the engine: %w", err)
		}
		image, err := BuildImage(ctx, provider)
		provider.Close()
		if err != nil {
			return nil, err
		}
		for i := range sp {
			sp[i].Image = image
		}
		logger.Info("docker target: kafkatrial broker image ready", "image", image)
	}
	t := &Target{kind: kind, logger: logger, hostAddrs: map[string]string{}, cuts: map[int][]string{}}
	if err := t.start(ctx, sp, tcLogger); err != nil {
		// Clean up on a fresh context: ctx may be what ended (Ctrl-C, deadline).
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return nil, errors.Join(err, t.Close(cctx))
	}
	return t, nil
}

// start creates the network and every container, and waits until the cluster answers.
func (t *Target) start(ctx context.Context, sp []nodeSpec, tcLogger tclog.Logger) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("docker target: connecting to the engine: %w", err)
	}
	t.cli = cli
	nw, err := network.New(ctx, network.WithLabels(map[string]string{networkLabel: "true"}))
	if err != nil {
		return fmt.Errorf("docker target: creating the cluster network: %w", err)
	}
	t.network = nw
	ports, err := freePorts(len(sp))
	if err != nil {
		return err
	}
	for i, s := range sp {
		n := &node{spec: s, hostPort: ports[i]}
		t.nodes = append(t.nodes, n)
		t.names = append(t.names, s.Name)
		t.hostAddrs[net.JoinHostPort(s.Name, strconv.Itoa(ClientPort))] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i]))
	}
	prefix := "kafkatrial-" + shortID(nw.Name)
	// Every voter must run before any node can register (a quorum is needed), so containers start at once.
	// The first node to fail stops the others' waits: without it they would wait out readyTimeout for a
	// quorum that cannot form.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex // guards errs and each n.c while starts run
	for _, n := range t.nodes {
		wg.Go(func() {
			c, err := testcontainers.GenericContainer(sctx, testcontainers.GenericContainerRequest{
				ContainerRequest: t.request(n, prefix), Started: true, Logger: tcLogger,
			})
			mu.Lock()
			defer mu.Unlock()
			n.c = c
			if err != nil && (sctx.Err() == nil || len(errs) == 0) {
				stop()
				errs = append(errs, fmt.Errorf("docker target: starting %s (container %s-%s, image %s): %w%s", n.spec.Name, prefix,
					n.spec.Name, n.spec.Image, err, t.logTail(n)))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, n := range t.nodes {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.spec.Name+":"+strconv.Itoa(ClientPort)), kgo.Dialer(t.Dial()),
			kgo.DialTimeout(3*time.Second), kgo.RequestRetries(0))
		if err != nil {
			return fmt.Errorf("docker target: a metadata client for %s: %w", n.spec.Name, err)
		}
		n.admin = cl
	}
	return t.waitRegistered(ctx)
}

// request is the container request of node n.
func (t *Target) request(n *node, prefix string) testcontainers.ContainerRequest {
	port := fmt.Sprintf("%d/tcp", ClientPort)
	hostPort := strconv.Itoa(n.hostPort)
	return testcontainers.ContainerRequest{
		Image:          n.spec.Image,
		Name:           prefix + "-" + n.spec.Name,
		Cmd:            n.spec.Cmd,
		Env:            n.spec.Env,
		ExposedPorts:   []string{port},
		Networks:       []string{t.network.Name},
		NetworkAliases: map[string][]string{t.network.Name: {n.spec.Name}},
		Labels:         map[string]string{nodeLabel: n.spec.Name},
		ConfigModifier: func(c *container.Config) {
			c.Hostname = n.spec.Name
			secs := int(n.spec.StopTimeout / time.Second)
			c.StopTimeout = &secs
		},
		HostConfigModifier: func(hc *container.HostConfig) {
			// A fixed loopback port: Docker would pick a new ephemeral port on every restart, and clients keep
			// the addresses they bootstrapped with.
			hc.PortBindings = mnet.PortMap{mnet.MustParsePort(port): {{HostIP: loopback, HostPort: hostPort}}}
		},
		WaitingFor: wait.ForLog(n.spec.ReadyLog).WithStartupTimeout(readyTimeout).WithPollInterval(100 * time.Millisecond),
	}
}

// waitRegistered waits until some node's metadata lists every broker.
func (t *Target) waitRegistered(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	var last error
	for {
		md, err := t.anyMetadata(ctx, nil)
		if err == nil {
			if missing := t.missingBrokers(md); len(missing) == 0 {
				return nil
			} else {
				err = fmt.Errorf("brokers %s are not in the metadata", strings.Join(missing, ", "))
			}
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("docker target: the cluster did not register every broker within %v: %w", registerTimeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Nodes lists every node's name (node-1..node-N), running or not.
func (t *Target) Nodes() []string { return append([]string(nil), t.names...) }

// Kind is the broker software the containers run.
func (t *Target) Kind() Kind { return t.kind }

// Bootstrap lists every node's advertised address (node-N:9092); Dial maps them to this host's ports.
func (t *Target) Bootstrap() []string {
	out := make([]string, len(t.names))
	for i, n := range t.names {
		out[i] = net.JoinHostPort(n, strconv.Itoa(ClientPort))
	}
	return out
}

// Dial returns a dialer that reaches node-N:9092 at its mapped loopback port (127.0.0.1, never the engine's
// Host(), which may name an address that refuses connections) and dials any other address as given.
func (t *Target) Dial() workloads.DialFunc {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if hp, ok := t.hostAddrs[addr]; ok {
			addr = hp
		}
		return d.DialContext(ctx, network, addr)
	}
}

// HostAddr is the loopback address (127.0.0.1:port) clients on this host reach node name at.
func (t *Target) HostAddr(name string) (string, error) {
	n, err := t.node(name)
	if err != nil {
		return "", err
	}
	return t.hostAddrs[net.JoinHostPort(n.spec.Name, strconv.Itoa(ClientPort))], nil
}

// ContainerID is the Docker id of node name's container (for tests and tools that act on it directly).
func (t *Target) ContainerID(name string) (string, error) {
	n, err := t.node(name)
	if err != nil {
		return "", err
	}
	return n.c.GetContainerID(), nil
}

// NetworkName is the cluster's Docker network.
func (t *Target) NetworkName() string { return t.network.Name }

// Close removes every container and the network, whatever state they are in (running, paused, stopped,
// disconnected, or never fully started). Calling it again returns the first call's result.
func (t *Target) Close(ctx context.Context) error {
	t.closeMu.Lock()
	defer t.closeMu.Unlock()
	if t.closed {
		return t.closeErr
	}
	t.closed = true
	var errs []error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range t.nodes {
		if n.admin != nil {
			n.admin.Close()
		}
		if n.c == nil {
			continue
		}
		wg.Go(func() {
			// A paused process cannot be stopped; thaw it first (harmless if it is not paused).
			if t.cli != nil {
				_, _ = t.cli.ContainerUnpause(ctx, n.c.GetContainerID(), unpauseOptions)
			}
			if err := n.c.Terminate(ctx, testcontainers.StopTimeout(0)); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("docker target: removing %s (container %s): %w", n.spec.Name, shortID(n.c.GetContainerID()), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.network != nil {
		if err := t.network.Remove(ctx); err != nil {
			errs = append(errs, fmt.Errorf("docker target: removing network %s: %w", t.network.Name, err))
		}
	}
	if t.cli != nil {
		t.cli.Close()
	}
	t.closeErr = errors.Join(errs...)
	return t.closeErr
}

// node finds a node by name.
func (t *Target) node(name string) (*node, error) {
	s, ok := strings.CutPrefix(name, "node-")
	id, err := strconv.Atoi(s)
	if !ok || err != nil || id < 1 || id > len(t.nodes) {
		return nil, fmt.Errorf("docker target: no node %q (nodes: %s)", name, strings.Join(t.names, ", "))
	}
	return t.nodes[id-1], nil
}

// Labels on everything the target creates, so leftovers can be found (docker ps --filter label=...).
const (
	nodeLabel    = "org.kafkatrial.node"
	networkLabel = "org.kafkatrial.network"
)

// loopback is where mapped ports are bound and dialled.
var loopback = netip.MustParseAddr("127.0.0.1")

// freePorts picks n distinct free TCP ports on 127.0.0.1. The listeners are held together so the ports
// differ; another process could take one before Docker binds it, which fails the start with a clear error.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	out := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("docker target: finding a free loopback port: %w", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func shortID(s string) string {
	s = strings.ReplaceAll(s, "-", "")
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// slogPrintf sends testcontainers' progress lines to the target's logger at debug level.
type slogPrintf struct{ l *slog.Logger }

func (s slogPrintf) Printf(format string, v ...any) {
	s.l.Debug("testcontainers: " + fmt.Sprintf(format, v...))
}

var _ scenarios.Target = (*Target)(nil)
var _ nemesis.Cluster = (*Target)(nil)
