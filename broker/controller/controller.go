package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Config configures one controller voter.
type Config struct {
	NodeID int32
	// Voters maps every voter's node id to its raft address (host:port); it must include NodeID. All voters
	// must be given the same map: it bootstraps the quorum on first start.
	Voters  map[int32]string
	DataDir string
	// Listen and Dial carry all controller traffic (raft and forwarded requests), so faults injected there
	// hit the quorum. Nil means the standard library's.
	Listen func(network, addr string) (net.Listener, error)
	Dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	Logger *slog.Logger
	// Timing: zero fields take TrialTiming's values.
	Timing Timing
	// ClusterDefaults seed the image's broker-level defaults for topic configs (topic config names only, e.g.
	// min.insync.replicas, unclean.leader.election.enable; validated with meta.ValidateConfig). Every voter must be
	// given the same map; they are not replicated as commands.
	ClusterDefaults map[string]string
}

// Controller is one voter of the metadata quorum: a raft node whose FSM applies meta commands, plus, while it
// is the active controller (raft leader), the broker liveness tracker.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	raft  *raft.Raft
	fsm   *fsm
	mux   *mux
	logs  *logStore
	trans *raft.NetworkTransport
	pool  *connPool
	live  *liveness
	// frz holds every connection and the liveness tracker while the voter is paused (pause.go).
	frz  freezer
	stop chan struct{}
	// started is closed once raft runs; forwarded requests that arrive earlier wait for it.
	started chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	notify  chan bool
}

var (
	// ErrNoActiveController: no active controller could be reached before the context ended; the command was
	// never handed to a leader.
	ErrNoActiveController = errors.New("no active controller")
	// ErrOutcomeUnknown: the command was handed to a leader but its fate is unknown (leadership lost, connection
	// broken, context ended while committing). It may still appear in the log.
	ErrOutcomeUnknown = errors.New("outcome unknown")
)

// Snapshotting bounds the raft log (and the log store's memory): after snapshotThreshold new entries the FSM
// image is snapshotted and all but trailingLogs entries are dropped. Variables so a test can force a lagging
// voter onto the snapshot-install path.
var (
	snapshotThreshold uint64 = 1024
	trailingLogs      uint64 = 1024
)

// Start opens (or creates) the voter's state in DataDir and joins the quorum. A DataDir with state is
// recovered from disk: raft log, term/vote, snapshots; the image is rebuilt by replaying them.
func Start(cfg Config) (*Controller, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("controller %d: create data dir: %w", cfg.NodeID, err)
	}
	c := &Controller{cfg: cfg, log: cfg.Logger.With("controller", cfg.NodeID), pool: &connPool{}, stop: make(chan struct{}),
		started: make(chan struct{}), notify: make(chan bool, 16)}
	c.frz.dead = c.stop
	c.cfg.Listen, c.cfg.Dial = c.frz.listen(cfg.Listen), c.frz.dial(cfg.Dial)
	initial := meta.Empty()
	for k, v := range cfg.ClusterDefaults {
		initial.ClusterDefaults[k] = v
	}
	c.fsm = newFSM(initial)
	c.live = newLiveness(c)
	if err := c.open(); err != nil {
		return nil, fmt.Errorf("controller %d: %w", cfg.NodeID, err)
	}
	close(c.started)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.live.run()
	}()
	return c, nil
}

func (c *Controller) open() error {
	cfg := c.cfg
	hlog := newHCLogger(c.log)
	logs, err := openLogStore(filepath.Join(cfg.DataDir, "raft-log"))
	if err != nil {
		return err
	}
	stable, err := openStableStore(filepath.Join(cfg.DataDir, "raft-stable.json"))
	if err != nil {
		logs.Close()
		return err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hlog)
	if err != nil {
		logs.Close()
		return fmt.Errorf("open snapshot store: %w", err)
	}
	self := cfg.Voters[cfg.NodeID]
	ln, err := cfg.Listen("tcp", self)
	if err != nil {
		logs.Close()
		return fmt.Errorf("listen on %s: %w", self, err)
	}
	c.mux = newMux(ln, self, cfg.Dial, c.serveForward)
	// MaxRPCsInFlight 1 turns raft's pipelined replication off: a pipeline whose peer stopped answering can
	// deadlock raft.Shutdown (the replicate loop blocks handing a request to a decoder that blocks handing back
	// a response nobody consumes any more), which hung clean stops of a cluster losing its voters. Metadata
	// traffic is small; synchronous replication costs nothing that matters here.
	// Voters are reached at the addresses this start was given, whatever the raft log stored (raft's
	// configuration entries carry addresses; Kafka's quorum state keeps only voter ids and takes addresses from
	// controller.quorum.voters): a data directory restarted on other ports finds its quorum.
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: streamLayer{m: c.mux}, MaxPool: 3, Timeout: cfg.Timing.RaftRPCTimeout, Logger: hlog, MaxRPCsInFlight: 1,
		ServerAddressProvider: voterAddrs(cfg.Voters),
	})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(strconv.Itoa(int(cfg.NodeID)))
	rc.HeartbeatTimeout = cfg.Timing.RaftHeartbeatTimeout
	rc.ElectionTimeout = cfg.Timing.RaftElectionTimeout
	rc.LeaderLeaseTimeout = cfg.Timing.RaftLeaderLease
	// Followers learn the commit index only from the leader's next AppendEntries. proposeLocal sends one right
	// after each commit (see announceCommit), so the idle resend every CommitTimeout (to 2x) stays at raft's
	// default: at 5 ms it cost an idle 3-node cluster a tenth of a core.
	rc.CommitTimeout = 50 * time.Millisecond
	rc.SnapshotThreshold = snapshotThreshold
	rc.TrailingLogs = trailingLogs
	rc.SnapshotInterval = 10 * time.Second
	rc.Logger = hlog
	rc.NotifyCh = c.notify
	has, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		c.abort(trans, logs)
		return fmt.Errorf("inspect raft state: %w", err)
	}
	if !has {
		var servers []raft.Server
		for id, addr := range cfg.Voters {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(strconv.Itoa(int(id))), Address: raft.ServerAddress(addr)})
		}
		if err := raft.BootstrapCluster(rc, logs, stable, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
			c.abort(trans, logs)
			return fmt.Errorf("bootstrap quorum: %w", err)
		}
	}
	r, err := raft.NewRaft(rc, c.fsm, logs, stable, snaps, trans)
	if err != nil {
		c.abort(trans, logs)
		return fmt.Errorf("start raft: %w", err)
	}
	if has {
		if err := c.checkStoredVoters(r); err != nil {
			if serr := r.Shutdown().Error(); serr != nil {
				c.log.Warn("stopping raft after a refused start", "err", serr)
			}
			c.abort(trans, logs)
			return err
		}
	}
	c.raft, c.logs, c.trans = r, logs, trans
	return nil
}

// checkStoredVoters compares the quorum stored in the data directory with the configured voters. Other
// addresses for the same ids are fine (voterAddrs routes to the configured ones; logged); other ids are refused,
// naming both, since no election could ever succeed: a voter would wait for ids nobody runs, or count votes
// of nodes that are not in its quorum.
func (c *Controller) checkStoredVoters(r *raft.Raft) error {
	f := r.GetConfiguration()
	if err := f.Error(); err != nil {
		return fmt.Errorf("reading the stored quorum configuration: %w", err)
	}
	stored := map[int32]string{}
	for _, s := range f.Configuration().Servers {
		id, err := strconv.ParseInt(string(s.ID), 10, 32)
		if err != nil {
			return fmt.Errorf("the stored quorum configuration in %s names voter %q, not a node id", c.cfg.DataDir, s.ID)
		}
		if s.Suffrage == raft.Voter {
			stored[int32(id)] = string(s.Address)
		}
	}
	if !slices.Equal(slices.Sorted(maps.Keys(stored)), slices.Sorted(maps.Keys(c.cfg.Voters))) {
		return fmt.Errorf("data directory %s holds the controller state of a quorum of voters %s, but this start "+
			"names voters %s (controller.quorum.voters): the node ids must be the same (addresses may change); "+
			"start with the same node ids, or use a fresh data directory", c.cfg.DataDir, formatVoters(stored), formatVoters(c.cfg.Voters))
	}
	if !maps.Equal(stored, c.cfg.Voters) {
		c.log.Info("voter addresses differ from the ones stored at the last start; using the configured ones",
			"stored", formatVoters(stored), "configured", formatVoters(c.cfg.Voters))
	}
	return nil
}

// formatVoters renders voters as controller.quorum.voters does: id@host:port,... by id.
func formatVoters(voters map[int32]string) string {
	var b strings.Builder
	for i, id := range slices.Sorted(maps.Keys(voters)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d@%s", id, voters[id])
	}
	return b.String()
}

// voterAddrs is raft's ServerAddressProvider over the configured voters: the transport dials a voter by id at
// its configured address (and advertises this voter's own configured address).
type voterAddrs map[int32]string

func (v voterAddrs) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	n, err := strconv.ParseInt(string(id), 10, 32)
	if err != nil {
		return "", fmt.Errorf("raft server id %q is not a node id", id)
	}
	addr, ok := v[int32(n)]
	if !ok {
		return "", fmt.Errorf("node %d is not a configured voter", n)
	}
	return raft.ServerAddress(addr), nil
}

func (c *Controller) abort(trans *raft.NetworkTransport, logs *logStore) {
	close(c.stop)
	trans.Close()
	c.mux.close()
	logs.Close()
}

// Image returns the latest applied image. It is immutable: do not change it.
func (c *Controller) Image() *meta.Image { return c.fsm.image() }

// Subscribe delivers the current image at once and then every new one; a slow reader finds only the latest
// waiting. cancel stops delivery (the channel is not closed).
func (c *Controller) Subscribe() (<-chan *meta.Image, func()) { return c.fsm.subscribe() }

// ActiveID returns the node id of the active controller as this voter knows it, or -1 when none.
func (c *Controller) ActiveID() int32 {
	_, id := c.raft.LeaderWithID()
	if id == "" {
		return -1
	}
	n, err := strconv.Atoi(string(id))
	if err != nil {
		return -1
	}
	return int32(n)
}

// Timing returns the effective timing (with defaults filled in).
func (c *Controller) Timing() Timing { return c.cfg.Timing }

// Propose commits cmd through the active controller (forwarding when this voter is not it) and returns what
// applying it produced. A rejected command comes back as a Result with a non-zero ErrorCode and a nil error;
// an error wrapping ErrOutcomeUnknown means it may or may not have been committed; any other error (such as
// ErrNoActiveController) means it was not.
func (c *Controller) Propose(ctx context.Context, cmd meta.Command) (meta.Result, error) {
	data, err := json.Marshal(cmd)
	if err != nil {
		return meta.Result{}, fmt.Errorf("encode %s: %w", cmd.Kind(), err)
	}
	var res meta.Result
	err = c.toActive(ctx, cmd.Kind(), func(ctx context.Context) (bool, error) {
		var ok bool
		res, ok, err = c.proposeLocal(ctx, data)
		return ok, err
	}, forwardRequest{Command: &commandRequest{Command: data}}, func(raw json.RawMessage) error {
		return json.Unmarshal(raw, &res)
	})
	return res, err
}

// RegisterBroker registers (or re-registers after a restart) broker id and returns its new epoch.
func (c *Controller) RegisterBroker(ctx context.Context, id int32, host string, port int32) (int64, error) {
	res, err := c.Propose(ctx, meta.Command{RegisterBroker: &meta.RegisterBroker{ID: id, Host: host, Port: port}})
	if err != nil {
		return 0, fmt.Errorf("register broker %d: %w", id, err)
	}
	if res.ErrorCode != 0 {
		return 0, fmt.Errorf("register broker %d: %s: %w", id, res.Message, kerr.ErrorForCode(res.ErrorCode))
	}
	return res.BrokerEpoch, nil
}

// Heartbeat tells the active controller broker id (at epoch) is alive. A broker silent for longer than
// Timing.SessionTimeout is fenced; a fenced broker that heartbeats again is unfenced. An error wrapping
// kerr.StaleBrokerEpoch or kerr.BrokerIDNotRegistered means the broker must register again.
func (c *Controller) Heartbeat(ctx context.Context, id int32, epoch int64) error {
	err := c.toActive(ctx, "Heartbeat", func(context.Context) (bool, error) {
		return c.live.heartbeat(id, epoch)
	}, forwardRequest{Heartbeat: &heartbeatRequest{ID: id, Epoch: epoch}}, nil)
	if err != nil {
		return fmt.Errorf("heartbeat of broker %d epoch %d: %w", id, epoch, err)
	}
	return nil
}

// proposeLocal applies data on this voter's raft if it leads; ok=false means it is not the leader (nothing
// was done).
func (c *Controller) proposeLocal(ctx context.Context, data []byte) (meta.Result, bool, error) {
	if c.raft.State() != raft.Leader {
		return meta.Result{}, false, nil
	}
	f := c.raft.Apply(data, c.cfg.Timing.RaftRPCTimeout)
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout) {
			return meta.Result{}, false, nil // never entered the log: safe to retry
		}
		if err != nil {
			return meta.Result{}, true, fmt.Errorf("commit command: %w: %w", ErrOutcomeUnknown, err)
		}
		res, _ := f.Response().(meta.Result)
		c.announceCommit()
		return res, true, nil
	case <-ctx.Done():
		return meta.Result{}, true, fmt.Errorf("commit command: %w: %w", ErrOutcomeUnknown, ctx.Err())
	case <-c.stop:
		return meta.Result{}, true, fmt.Errorf("commit command: %w: controller stopped", ErrOutcomeUnknown)
	}
}

// announceCommit makes the followers learn at once that the command just committed is: raft tells them a commit
// index only with its next AppendEntries, sent when the leader has a new entry or after CommitTimeout. A
// barrier is such an entry (the FSM never sees it), so every voter, and the broker on it, applies the command
// one round trip after the commit instead of up to 2 x CommitTimeout later. Nothing waits for the barrier.
func (c *Controller) announceCommit() {
	c.raft.Barrier(c.cfg.Timing.RaftRPCTimeout)
}

// toActive runs local when this voter is the active controller, else forwards req to it, retrying while no
// active controller is known or the addressed one says it is not active (nothing was done in both cases).
func (c *Controller) toActive(ctx context.Context, what string, local func(context.Context) (bool, error),
	req forwardRequest, decode func(json.RawMessage) error) error {
	backoff := 10 * time.Millisecond
	var lastErr error
	for {
		select {
		case <-c.stop:
			return fmt.Errorf("%s: controller %d stopped", what, c.cfg.NodeID)
		default:
		}
		addr, id := c.raft.LeaderWithID()
		if a, err := voterAddrs(c.cfg.Voters).ServerAddr(id); id != "" && err == nil {
			addr = a // the active controller at its configured address (voterAddrs)
		}
		var retry bool
		switch {
		case id == raft.ServerID(strconv.Itoa(int(c.cfg.NodeID))):
			ok, err := local(ctx)
			if ok {
				return err
			}
			retry, lastErr = true, fmt.Errorf("%s: controller %d lost leadership", what, c.cfg.NodeID)
		case addr == "":
			retry, lastErr = true, ErrNoActiveController
		default:
			var err error
			retry, err = c.forward(ctx, string(addr), req, decode)
			if !retry {
				return err
			}
			lastErr = err
		}
		if retry {
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("%s: %w (last: %v)", what, ErrNoActiveController, lastErr)
			case <-c.stop:
				t.Stop()
				return fmt.Errorf("%s: controller %d stopped", what, c.cfg.NodeID)
			}
			backoff = min(2*backoff, 200*time.Millisecond)
		}
	}
}

// Close stops cleanly: an active controller hands leadership to another voter first (bounded), so the
// quorum does not wait out an election timeout. A paused voter resumes first: a stopped process runs its
// clean shutdown only once it runs again.
func (c *Controller) Close() error {
	c.frz.thaw()
	if c.raft.State() == raft.Leader && len(c.cfg.Voters) > 1 {
		if err := c.raft.LeadershipTransfer().Error(); err != nil {
			c.log.Warn("leadership transfer before close failed", "err", err)
		}
	}
	return c.shutdown()
}

// Kill stops at once, as a crash would: connections are cut and memory dropped; everything acknowledged was
// already fsynced, so Start on the same DataDir recovers it.
func (c *Controller) Kill() {
	if err := c.shutdown(); err != nil {
		c.log.Warn("kill", "err", err)
	}
}

func (c *Controller) shutdown() error {
	var err error
	c.once.Do(func() {
		close(c.stop)
		c.pool.close()
		// Closing the transport first marks it shut down, so raft does not log the cut connections as errors.
		c.trans.Close()
		c.mux.close()
		if e := c.raft.Shutdown().Error(); e != nil {
			err = fmt.Errorf("controller %d: shut down raft: %w", c.cfg.NodeID, e)
		}
		c.wg.Wait()
		if e := c.logs.Close(); e != nil && err == nil {
			err = fmt.Errorf("controller %d: close raft log: %w", c.cfg.NodeID, e)
		}
	})
	return err
}
