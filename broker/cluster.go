package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/kafkatrial/kafkatrial/broker/storage"
)

// ClusterConfig configures an in-process cluster of nodes.
type ClusterConfig struct {
	// Nodes is the number of nodes, ids 1..Nodes; default 3, at most 9 (one loopback IP per node id digit).
	Nodes int
	// Dir is the data root: node id's disk is <Dir>/node-<id> (its broker log <Dir>/node-<id>/broker.log, its
	// data <Dir>/node-<id>/data). One storage.Disk per node outlives restarts, so power loss is exact. The
	// cluster locks Dir (LockDir) until Close; a second cluster on it fails at once.
	Dir string
	// Host returns the loopback IP node id binds (default 127.0.0.1 for every node). Ports are picked once at
	// StartCluster and kept for the cluster's life, so clients keep their bootstrap addresses. A later
	// StartCluster on the same Dir may get other ports: voters find each other by node id at the addresses of
	// the current start (controller.Config.Voters), as Kafka's controller.quorum.voters.
	Host func(id int32) string
	// Net returns the network hooks of node id's broker traffic: clients and replica fetches (nil hooks, or a
	// nil Net: plain net).
	Net func(id int32) (listen func(network, addr string) (net.Listener, error), dial func(ctx context.Context, network, addr string) (net.Conn, error))
	// ControllerHost and ControllerNet give node id's controller (Raft and forwarded proposals) a network
	// identity of its own, so a fault can cut broker traffic and leave the quorum connected. nil: Host and Net.
	ControllerHost func(id int32) string
	ControllerNet  func(id int32) (listen func(network, addr string) (net.Listener, error), dial func(ctx context.Context, network, addr string) (net.Conn, error))
	// Defaults, Timing and OffsetsTopic are every node's (as in Config).
	Defaults     TopicDefaults
	Timing       Timing
	OffsetsTopic OffsetsTopicConfig
	// Logger receives every node's events (nil: discarded); each node also logs to its own broker.log.
	Logger *slog.Logger
	// BasePort, when set, fixes the ports instead of picking free ones: node id's client listener on
	// BasePort+id-1 and its controller on BasePort+Nodes+id-1 (so `kafkatrial broker --nodes 3 --port 9092`
	// serves 9092-9094, and clients of a data directory reused later find it at the same addresses).
	BasePort int
	// StartTimeout bounds StartCluster's wait for every node to be registered and unfenced with an active
	// controller; default 30s.
	StartTimeout time.Duration
}

// Cluster runs N nodes of the built-in broker in this process, each on its own disk and fixed addresses, and
// carries out process faults on them (kill, clean stop, restart, power loss).
//
// Concurrency: every method is safe for concurrent use. Lifecycle operations on one node are serialised by
// that node's op lock (a restart that waits for the quorum delays a kill of the same node, never of another);
// readers load the running incarnation from an atomic pointer and never block on a lifecycle operation.
type Cluster struct {
	cfg    ClusterConfig
	nodes  []*clusterNode // index id-1
	closed atomic.Bool
	// lock holds Dir for the cluster's life, so a second cluster (or `kafkatrial broker`) on it fails at once;
	// each node also locks its own data directory.
	lock *DirLock
}

// clusterNode is one node slot: fixed identity, disk and addresses, and the incarnation running now.
type clusterNode struct {
	id      int32
	cfg     Config // complete node config; restarts reuse it unchanged
	disk    *storage.Disk
	logPath string
	logFile *os.File // broker.log, open for the cluster's life so restarts append

	op  sync.Mutex           // serialises Kill, Stop, Restart, PowerLoss and Close of this node
	cur atomic.Pointer[Node] // the running incarnation; nil while down
}

// Errors of cluster operations.
var (
	ErrNoSuchNode    = errors.New("no such node")
	ErrNodeDown      = errors.New("node is not running")
	ErrClusterClosed = errors.New("cluster is closed")
)

// Defaults of ClusterConfig.
const (
	DefaultClusterNodes        = 3
	MaxClusterNodes            = 9
	DefaultClusterStartTimeout = 30 * time.Second
)

// StartCluster starts every node and returns once each is registered and unfenced and a controller is
// active, or fails (every node stopped) when StartTimeout passes first.
func StartCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes == 0 {
		cfg.Nodes = DefaultClusterNodes
	}
	if cfg.Nodes < 1 || cfg.Nodes > MaxClusterNodes {
		return nil, fmt.Errorf("broker cluster: %d nodes (want 1 to %d)", cfg.Nodes, MaxClusterNodes)
	}
	if cfg.Dir == "" {
		return nil, errors.New("broker cluster: Dir is empty")
	}
	if cfg.Host == nil {
		cfg.Host = func(int32) string { return "127.0.0.1" }
	}
	if cfg.ControllerHost == nil {
		cfg.ControllerHost = cfg.Host
	}
	if cfg.ControllerNet == nil {
		cfg.ControllerNet = cfg.Net
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = DefaultClusterStartTimeout
	}
	c := &Cluster{cfg: cfg}
	lock, err := LockDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("broker cluster: %w", err)
	}
	c.lock = lock
	clientAddrs, voters, err := pickAddrs(cfg)
	if err != nil {
		lock.Unlock()
		return nil, err
	}
	for i := range cfg.Nodes {
		id := int32(i + 1)
		cn, err := c.newSlot(id, clientAddrs[id], voters)
		if err != nil {
			c.closeLogs()
			lock.Unlock()
			return nil, err
		}
		c.nodes = append(c.nodes, cn)
	}
	// Every voter must run before any can register (a quorum is needed), so nodes start concurrently.
	if err := c.startAll(c.IDs()); err != nil {
		c.Close()
		return nil, fmt.Errorf("broker cluster: starting nodes: %w", err)
	}
	if err := c.waitReady(cfg.StartTimeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// pickAddrs chooses a free client port on each node's host and a free controller port on its controller host,
// once for the cluster's life.
func pickAddrs(cfg ClusterConfig) (clients, voters map[int32]string, err error) {
	clients, voters = map[int32]string{}, map[int32]string{}
	if cfg.BasePort > 0 {
		if cfg.BasePort+2*cfg.Nodes-1 > 65535 {
			return nil, nil, fmt.Errorf("broker cluster: base port %d leaves no room for %d nodes", cfg.BasePort, cfg.Nodes)
		}
		for i := range cfg.Nodes {
			id := int32(i + 1)
			clients[id] = net.JoinHostPort(cfg.Host(id), strconv.Itoa(cfg.BasePort+i))
			voters[id] = net.JoinHostPort(cfg.ControllerHost(id), strconv.Itoa(cfg.BasePort+cfg.Nodes+i))
		}
		return clients, voters, nil
	}
	// Every listener is held open until all are picked, so no two nodes (nor a node's two listeners on one
	// host) get the same port; a port could in theory be taken by someone else before the node binds it,
	// which then fails Start with a clear error.
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	pick := func(id int32, host string) (string, error) {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", fmt.Errorf("broker cluster: finding free ports for node %d on %s: %w", id, host, err)
		}
		lns = append(lns, ln)
		return ln.Addr().String(), nil
	}
	for i := range cfg.Nodes {
		id := int32(i + 1)
		if clients[id], err = pick(id, cfg.Host(id)); err != nil {
			return nil, nil, err
		}
		if voters[id], err = pick(id, cfg.ControllerHost(id)); err != nil {
			return nil, nil, err
		}
	}
	return clients, voters, nil
}

// newSlot prepares node id's disk, log file and config.
func (c *Cluster) newSlot(id int32, clientAddr string, voters map[int32]string) (*clusterNode, error) {
	root := filepath.Join(c.cfg.Dir, "node-"+strconv.Itoa(int(id)))
	disk, err := storage.NewDisk(root)
	if err != nil {
		return nil, fmt.Errorf("broker cluster: disk of node %d: %w", id, err)
	}
	logPath := filepath.Join(root, "broker.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("broker cluster: opening the broker log of node %d: %w", id, err)
	}
	logger := slog.New(slog.NewMultiHandler(slog.NewTextHandler(lf, nil), c.cfg.Logger.Handler()))
	cfg := Config{NodeID: id, DataDir: "data", ListenAddr: clientAddr, ControllerAddr: voters[id],
		Voters: voters, Logger: logger, Defaults: c.cfg.Defaults, Timing: c.cfg.Timing,
		OffsetsTopic: c.cfg.OffsetsTopic}
	if c.cfg.Net != nil {
		cfg.Listen, cfg.Dial = c.cfg.Net(id)
	}
	if c.cfg.ControllerNet != nil {
		cfg.ControllerListen, cfg.ControllerDial = c.cfg.ControllerNet(id)
	}
	return &clusterNode{id: id, cfg: cfg, disk: disk, logPath: logPath, logFile: lf}, nil
}

// startAll starts the given nodes concurrently and joins their errors.
func (c *Cluster) startAll(ids []int32) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { errs[i] = c.start(id, "start") })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitReady polls until every node is registered and unfenced in the freshest image and a controller is active.
func (c *Cluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := c.readiness()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker cluster: not ready within %v: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readiness says why the cluster is not ready yet, or nil.
func (c *Cluster) readiness() error {
	im := c.Image()
	if im == nil {
		return errors.New("no node is running")
	}
	for _, id := range c.IDs() {
		b, ok := im.Brokers[id]
		switch {
		case !ok:
			return fmt.Errorf("node %d is not registered", id)
		case b.Fenced:
			return fmt.Errorf("node %d is fenced", id)
		}
	}
	if c.ActiveController() < 0 {
		return errors.New("no active controller")
	}
	return nil
}

// IDs lists every node id, running or not, ascending.
func (c *Cluster) IDs() []int32 {
	ids := make([]int32, len(c.nodes))
	for i, cn := range c.nodes {
		ids[i] = cn.id
	}
	return ids
}

// Bootstrap lists every node's client address (fixed for the cluster's life, whether the node runs or not).
func (c *Cluster) Bootstrap() []string {
	out := make([]string, len(c.nodes))
	for i, cn := range c.nodes {
		out[i] = cn.cfg.ListenAddr
	}
	return out
}

// Node returns node id's running incarnation, nil while it is down.
func (c *Cluster) Node(id int32) *Node {
	cn, err := c.slot(id)
	if err != nil {
		return nil
	}
	return cn.cur.Load()
}

// Running reports whether node id runs.
func (c *Cluster) Running(id int32) bool { return c.Node(id) != nil }

// LogPath is node id's broker.log.
func (c *Cluster) LogPath(id int32) (string, error) {
	cn, err := c.slot(id)
	if err != nil {
		return "", err
	}
	return cn.logPath, nil
}

// Kill hard-kills node id (memory gone, written files stay); a node already down is left alone.
func (c *Cluster) Kill(id int32) error {
	return c.stopNode(id, "kill", func(n *Node) error { n.Kill(); return nil })
}

// Stop stops node id cleanly (controlled shutdown, flush, checkpoint); a node already down is left alone.
func (c *Cluster) Stop(id int32) error {
	return c.stopNode(id, "stop", (*Node).Close)
}

// PowerLoss kills node id and cuts every file of its disk back to what was fsynced. A node already down
// still loses what it wrote without fsync before it went down, as its page cache would.
func (c *Cluster) PowerLoss(id int32) error {
	cn, err := c.slot(id)
	if err != nil {
		return err
	}
	cn.op.Lock()
	defer cn.op.Unlock()
	if n := cn.cur.Swap(nil); n != nil {
		if err := n.LoseUnsynced(); err != nil {
			return fmt.Errorf("broker cluster: power loss on node %d: %w", id, err)
		}
		return nil
	}
	if err := cn.disk.LoseUnsynced(); err != nil {
		return fmt.Errorf("broker cluster: power loss on stopped node %d: %w", id, err)
	}
	return nil
}

func (c *Cluster) stopNode(id int32, what string, stop func(*Node) error) error {
	cn, err := c.slot(id)
	if err != nil {
		return err
	}
	cn.op.Lock()
	defer cn.op.Unlock()
	// The incarnation is unpublished first, so readers stop using it while it goes down.
	n := cn.cur.Swap(nil)
	if n == nil {
		return nil
	}
	if err := stop(n); err != nil {
		return fmt.Errorf("broker cluster: %s node %d: %w", what, id, err)
	}
	return nil
}

// Restart starts node id again on the same disk, data directory and addresses (it rebuilds only from disk);
// a running node is left alone. It returns once the node is registered with the controller, which needs a
// quorum of voters running: restart several nodes concurrently when most are down.
func (c *Cluster) Restart(id int32) error { return c.start(id, "restart") }

// start is Restart; what names it in errors ("start" for the cluster's first start).
func (c *Cluster) start(id int32, what string) error {
	cn, err := c.slot(id)
	if err != nil {
		return err
	}
	cn.op.Lock()
	defer cn.op.Unlock()
	if c.closed.Load() {
		return fmt.Errorf("broker cluster: %s node %d: %w", what, id, ErrClusterClosed)
	}
	if cn.cur.Load() != nil {
		return nil
	}
	n, err := NewNode(cn.cfg, cn.disk)
	if err != nil {
		return fmt.Errorf("broker cluster: %s node %d: %w", what, id, err)
	}
	if err := n.Start(); err != nil {
		// Kill releases whatever the failed start opened (group store, listener, controller).
		n.Kill()
		return fmt.Errorf("broker cluster: %s node %d: %w", what, id, err)
	}
	cn.cur.Store(n)
	return nil
}

// Pause freezes node id's work (Node.Pause: no request handled, no fetch, no heartbeat) until Resume; a node
// that is down is left alone. Its connections are not touched: a network layer stalls them if wanted.
func (c *Cluster) Pause(id int32) error {
	n, err := c.running(id)
	if errors.Is(err, ErrNodeDown) {
		return nil
	}
	if err != nil {
		return err
	}
	n.Pause()
	return nil
}

// Resume undoes Pause of node id's running incarnation (a restarted node starts unpaused).
func (c *Cluster) Resume(id int32) error {
	n, err := c.running(id)
	if errors.Is(err, ErrNodeDown) {
		return nil
	}
	if err != nil {
		return err
	}
	n.Resume()
	return nil
}

// Image returns the freshest metadata image among running nodes (the highest offset), nil when none runs.
func (c *Cluster) Image() *meta.Image {
	var best *meta.Image
	for _, cn := range c.nodes {
		n := cn.cur.Load()
		if n == nil {
			continue
		}
		if im := n.image(); im != nil && (best == nil || im.Offset > best.Offset) {
			best = im
		}
	}
	return best
}

// ActiveController returns the node id most running voters name as the active controller, or -1 when none
// is known or the one named is not running (followers keep naming a dead leader until they notice).
func (c *Cluster) ActiveController() int32 {
	votes := map[int32]int{}
	for _, cn := range c.nodes {
		n := cn.cur.Load()
		if n == nil || n.meta.ctrl == nil {
			continue
		}
		if id := n.meta.ctrl.ActiveID(); id >= 0 {
			votes[id]++
		}
	}
	best, most := int32(-1), 0
	for id, v := range votes {
		if v > most || (v == most && id < best) {
			best, most = id, v
		}
	}
	if best < 0 || !c.Running(best) {
		return -1
	}
	return best
}

// Replica returns node id's replica of topic/partition as the node holds it now; ErrNodeDown when the node is
// down, an error when it does not host the partition.
func (c *Cluster) Replica(id int32, topic string, partition int32) (PartitionStatus, error) {
	n, err := c.running(id)
	if err != nil {
		return PartitionStatus{}, err
	}
	st, ok := n.PartitionState(topic, partition)
	if !ok {
		return PartitionStatus{}, fmt.Errorf("node %d hosts no open replica of %s-%d", id, topic, partition)
	}
	return st, nil
}

// ReadReplica calls fn with each raw batch of node id's replica of topic/partition, in order, from its log
// start to the log end it had when the call began. It is for dumps and checks, off the hot path.
func (c *Cluster) ReadReplica(id int32, topic string, partition int32, fn func(batch []byte, h storage.BatchHeader) error) error {
	p, err := c.hosted(id, topic, partition)
	if err != nil {
		return err
	}
	v, ok := p.view()
	if !ok {
		return fmt.Errorf("node %d replica of %s-%d: %w", id, topic, partition, storage.ErrClosed)
	}
	const chunk = 1 << 20
	for off := v.logStart; off < v.leo; {
		b, err := v.log.Read(off, chunk, v.leo)
		if err != nil {
			return fmt.Errorf("reading node %d replica of %s-%d at %d: %w", id, topic, partition, off, err)
		}
		if len(b) == 0 {
			break
		}
		next := off
		err = storage.SplitBatches(b, func(batch []byte, h storage.BatchHeader) error {
			next = h.NextOffset()
			return fn(batch, h)
		})
		if err != nil {
			return err
		}
		if next <= off {
			return fmt.Errorf("reading node %d replica of %s-%d: no progress at offset %d", id, topic, partition, off)
		}
		off = next
	}
	return nil
}

// running returns node id's running incarnation, or why there is none.
func (c *Cluster) running(id int32) (*Node, error) {
	cn, err := c.slot(id)
	if err != nil {
		return nil, err
	}
	n := cn.cur.Load()
	if n == nil {
		return nil, fmt.Errorf("node %d: %w", id, ErrNodeDown)
	}
	return n, nil
}

func (c *Cluster) hosted(id int32, topic string, partition int32) (*partition, error) {
	n, err := c.running(id)
	if err != nil {
		return nil, err
	}
	p := n.partition(topic, partition)
	if p == nil {
		return nil, fmt.Errorf("node %d hosts no replica of %s-%d", id, topic, partition)
	}
	return p, nil
}

// Close stops every node cleanly (concurrently), closes the broker logs and unlocks Dir. Later restarts fail.
func (c *Cluster) Close() error {
	c.closed.Store(true)
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, cn := range c.nodes {
		wg.Go(func() { errs[i] = c.Stop(cn.id) })
	}
	wg.Wait()
	return errors.Join(append(errs, c.closeLogs(), c.lock.Unlock())...)
}

func (c *Cluster) closeLogs() error {
	var errs []error
	for _, cn := range c.nodes {
		if err := cn.logFile.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("closing %s: %w", cn.logPath, err))
		}
	}
	return errors.Join(errs...)
}

func (c *Cluster) slot(id int32) (*clusterNode, error) {
	if id < 1 || int(id) > len(c.nodes) {
		return nil, fmt.Errorf("broker cluster: node %d: %w (ids 1..%d)", id, ErrNoSuchNode, len(c.nodes))
	}
	return c.nodes[id-1], nil
}
