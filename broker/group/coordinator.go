package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Config configures a Coordinator. Zero values take the documented defaults (Kafka's names in brackets).
type Config struct {
	// Store holds committed offsets durably. Required.
	Store OffsetStore
	// Logger receives rebalance and expiry events; nil discards.
	Logger *slog.Logger
	// InitialRebalanceDelay [group.initial.rebalance.delay.ms] is how long the first rebalance of an empty
	// group waits for more members, extended by the same amount while members keep joining, up to the
	// rebalance timeout. Default 100ms (Kafka: 3s; the trial prefers fast group formation). Negative means 0.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout [group.min.session.timeout.ms], default 6s; MaxSessionTimeout
	// [group.max.session.timeout.ms], default 30m. Joins outside get INVALID_SESSION_TIMEOUT.
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// MaxGroupSize [group.max.size] bounds members (and pending members) of one group. Default 1000.
	MaxGroupSize int
	// MaxMetadataBytes [offset.metadata.max.bytes] bounds a commit's metadata string. Default 4096.
	MaxMetadataBytes int
	// MaxGroups bounds how many groups one coordinator holds (memory bound). Default 10000.
	MaxGroups int
	// TopicIDs returns the id of the topic named topic as the cluster's metadata has it now, false when no
	// such topic exists. With it, commits record the topic's id (a commit to a topic it does not know gets
	// UNKNOWN_TOPIC_OR_PARTITION), and offsets of topics deleted since (gone, or re-created under a new id) are
	// never served and are dropped by RemoveDeletedTopicOffsets. Nil: topics are not tracked.
	TopicIDs func(topic string) ([16]byte, bool)
}

// Coordinator coordinates every group whose offsets live in one store: in the broker, the groups of one
// __consumer_offsets partition while this node leads it (it is closed when the leadership ends).
//
// Locking: c.mu guards only the groups map and the closed flag; each group's state is guarded by that
// group's own mutex (group.mu), and every state change of a group, including timer callbacks, happens under
// it. Lock order is group.mu before c.mu (a group removes itself from the map while locked); c.mu is never
// held while taking a group's lock. Calls that wait for a rebalance round (Join, Sync) wait without locks.
// Timers (rebalance, initial delay, sessions, pending member ids) are time.AfterFunc timers whose callbacks
// take the group's lock and check a token, so a stopped or superseded timer does nothing.
//
// Deliberate difference from Kafka: only committed offsets are durable. Membership and generations live in
// memory, so after a coordinator restart or move every group starts Empty (its old members get UNKNOWN_MEMBER_ID and
// rejoin, and a commit from an old generation is refused) with its committed offsets intact. Offsets never
// expire (Kafka: offsets.retention.minutes).
type Coordinator struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	closed bool
	groups map[string]*group
}

// ErrClosed is returned by NewCoordinator's loader paths and reported (as NOT_COORDINATOR) after Close.
var ErrClosed = errors.New("group coordinator closed")

// NewCoordinator builds a coordinator and loads every committed offset from cfg.Store.
func NewCoordinator(cfg Config) (*Coordinator, error) {
	if cfg.Store == nil {
		return nil, errors.New("group coordinator: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.InitialRebalanceDelay == 0 {
		cfg.InitialRebalanceDelay = 100 * time.Millisecond
	} else if cfg.InitialRebalanceDelay < 0 {
		cfg.InitialRebalanceDelay = 0
	}
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = 6 * time.Second
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = 30 * time.Minute
	}
	if cfg.MinSessionTimeout > cfg.MaxSessionTimeout {
		return nil, fmt.Errorf("group coordinator: group.min.session.timeout.ms %v exceeds group.max.session.timeout.ms %v",
			cfg.MinSessionTimeout, cfg.MaxSessionTimeout)
	}
	if cfg.MaxGroupSize <= 0 {
		cfg.MaxGroupSize = 1000
	}
	if cfg.MaxMetadataBytes <= 0 {
		cfg.MaxMetadataBytes = 4096
	}
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = 10000
	}
	loaded, err := cfg.Store.Load()
	if err != nil {
		return nil, fmt.Errorf("group coordinator: loading committed offsets: %w", err)
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, groups: make(map[string]*group, len(loaded))}
	for id, offs := range loaded {
		if len(offs) == 0 {
			continue
		}
		g := newGroup(c, id)
		g.offsets = offs
		c.groups[id] = g
	}
	return c, nil
}

// Close stops every timer and answers every waiting Join and Sync with NOT_COORDINATOR (clients then look
// for the coordinator again). It does not close the Store, which its opener owns. Later calls answer
// NOT_COORDINATOR.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	groups := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		groups = append(groups, g)
	}
	c.groups = map[string]*group{}
	c.mu.Unlock()
	for _, g := range groups {
		g.mu.Lock()
		g.shutdown()
		g.mu.Unlock()
	}
}

// ClientInfo names the connection a request came from, shown by DescribeGroups.
type ClientInfo struct {
	ClientID string
	Host     string
}

type clientInfoKey struct{}

// WithClientInfo attaches the requesting client's identity to ctx for Join.
func WithClientInfo(ctx context.Context, ci ClientInfo) context.Context {
	return context.WithValue(ctx, clientInfoKey{}, ci)
}

func clientInfoFrom(ctx context.Context) ClientInfo {
	ci, _ := ctx.Value(clientInfoKey{}).(ClientInfo)
	return ci
}

// errNotCoordinator is what a closed coordinator answers.
var errNotCoordinator = kerr.NotCoordinator.Code

// lockGroup returns the named group locked, creating it when create is set. It returns nil when the group
// does not exist (and create is false), and errCode != 0 when the coordinator is closed or full.
func (c *Coordinator) lockGroup(id string, create bool) (g *group, errCode int16) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, errNotCoordinator
		}
		g = c.groups[id]
		if g == nil {
			if !create {
				c.mu.Unlock()
				return nil, 0
			}
			if len(c.groups) >= c.cfg.MaxGroups {
				c.mu.Unlock()
				return nil, kerr.CoordinatorNotAvailable.Code
			}
			g = newGroup(c, id)
			c.groups[id] = g
		}
		c.mu.Unlock()
		g.mu.Lock()
		if g.state != stateDead {
			return g, 0
		}
		// The group died between the lookup and the lock (it was removed from the map); look again.
		g.mu.Unlock()
	}
}

// removeGroupLocked drops g from the map; the caller holds g.mu and has set g.state = stateDead.
func (c *Coordinator) removeGroupLocked(g *group) {
	c.mu.Lock()
	if c.groups[g.id] == g {
		delete(c.groups, g.id)
	}
	c.mu.Unlock()
}

// snapshotGroups returns the current groups (unlocked) for listing.
func (c *Coordinator) snapshotGroups() ([]*group, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errNotCoordinator
	}
	out := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	return out, 0
}

// newMemberID returns clientID-<random>, Kafka's member id shape.
func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return clientID + "-" + hex.EncodeToString(b[:])
}

// DescribeGroups describes each requested group (v0..v6).
func (c *Coordinator) DescribeGroups(_ context.Context, req *kmsg.DescribeGroupsRequest) *kmsg.DescribeGroupsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		dg := kmsg.NewDescribeGroupsResponseGroup()
		dg.Group = id
		g, code := c.lockGroup(id, false)
		switch {
		case code != 0:
			dg.ErrorCode = code
		case g == nil:
			dg.State = stateDead.String()
			if req.Version >= 6 {
				dg.ErrorCode = kerr.GroupIDNotFound.Code
				msg := fmt.Sprintf("group %s not found", id)
				dg.ErrorMessage = &msg
			}
		default:
			g.describe(&dg)
			g.mu.Unlock()
		}
		resp.Groups = append(resp.Groups, dg)
	}
	return resp
}

// ListGroups lists the groups this coordinator holds, filtered by state (v4+) and type (v5+; every group
// here is "classic").
func (c *Coordinator) ListGroups(_ context.Context, req *kmsg.ListGroupsRequest) *kmsg.ListGroupsResponse {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	groups, code := c.snapshotGroups()
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	if len(req.TypesFilter) > 0 && !containsFold(req.TypesFilter, "classic") {
		return resp
	}
	for _, g := range groups {
		g.mu.Lock()
		if g.state == stateDead {
			g.mu.Unlock()
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group = g.id
		lg.ProtocolType = g.protocolType
		lg.GroupState = g.state.String()
		lg.GroupType = "classic"
		g.mu.Unlock()
		if len(req.StatesFilter) > 0 && !containsFold(req.StatesFilter, lg.GroupState) {
			continue
		}
		resp.Groups = append(resp.Groups, lg)
	}
	return resp
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if equalFoldASCII(x, s) {
			return true
		}
	}
	return false
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
