package faultnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Client is the pseudo-node standing for every source address that is not a registered node's IP.
const Client = "client"

// Net is the fault layer of one in-process cluster: the node table, the active fault rules and the live
// accepted connections.
//
// Concurrency: one lock, mu, guards the node table, the rule set, the connection set and the change channel.
// A stalled Read or Write never holds it while waiting: it samples the rules and the current change channel
// under mu, releases it, and waits on that channel (closed on every rule change), its deadline and its
// connection's close. The fault count is mirrored in an atomic so that traffic pays no lock while no fault is
// active.
type Net struct {
	logger *slog.Logger
	active atomic.Int64 // len(faults), readable without mu

	mu      sync.Mutex
	nodes   map[string]netip.Addr
	byIP    map[netip.Addr]string
	faults  []*fault // ordered by id
	nextID  FaultID
	conns   map[*conn]struct{}
	changed chan struct{}
}

// New returns a Net with no nodes and no faults. A nil logger discards.
func New(logger *slog.Logger) *Net {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Net{
		logger:  logger.With("component", "faultnet"),
		nodes:   make(map[string]netip.Addr),
		byIP:    make(map[netip.Addr]string),
		conns:   make(map[*conn]struct{}),
		changed: make(chan struct{}),
	}
}

// AddNode registers node name at loopback IP ip ("node-1" -> "127.0.0.11"). Connections from ip are
// attributed to name; any other source is Client. Registering the same name at the same IP again is a no-op.
// A malformed or non-loopback IP, the name Client, or a name or IP already taken by another registration is a
// wiring bug and panics.
func (n *Net) AddNode(name string, ip string) {
	addr, err := netip.ParseAddr(ip)
	if err != nil || !addr.Is4() || !addr.IsLoopback() {
		panic(fmt.Sprintf("faultnet: node %q needs an IPv4 loopback address, got %q", name, ip))
	}
	if name == "" || name == Client {
		panic(fmt.Sprintf("faultnet: %q is not a valid node name", name))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if old, ok := n.nodes[name]; ok {
		if old == addr {
			return
		}
		panic(fmt.Sprintf("faultnet: node %q already registered at %s, not %s", name, old, addr))
	}
	if other, ok := n.byIP[addr]; ok {
		panic(fmt.Sprintf("faultnet: IP %s already belongs to node %q", addr, other))
	}
	n.nodes[name] = addr
	n.byIP[addr] = name
}

// IP returns the loopback IP of a registered node.
func (n *Net) IP(node string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	addr, ok := n.nodes[node]
	if !ok {
		return "", false
	}
	return addr.String(), true
}

// Nodes lists the registered node names, sorted.
func (n *Net) Nodes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	names := make([]string, 0, len(n.nodes))
	for name := range n.nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// Listen returns a listen hook for node: it binds the node's IP (an empty or unspecified host in addr means the
// node's IP; any other IP is refused) and wraps every accepted connection so faults apply to it.
func (n *Net) Listen(node string) func(network, addr string) (net.Listener, error) {
	return func(network, addr string) (net.Listener, error) {
		switch network {
		case "tcp", "tcp4":
		default:
			return nil, fmt.Errorf("faultnet: listen for %s on %s %s: only tcp is supported", node, network, addr)
		}
		ip, ok := n.nodeAddr(node)
		if !ok {
			return nil, fmt.Errorf("faultnet: listen for %s on %s: unknown node", node, addr)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("faultnet: listen for %s: bad address %q: %w", node, addr, err)
		}
		if host != "" {
			h, err := netip.ParseAddr(host)
			if err != nil || (!h.IsUnspecified() && h != ip) {
				return nil, fmt.Errorf("faultnet: listen for %s on %q: a node listens on its own IP %s only", node, addr, ip)
			}
		}
		raw, err := net.Listen("tcp4", net.JoinHostPort(ip.String(), port))
		if err != nil {
			return nil, fmt.Errorf("faultnet: listen for %s on %s: %w", node, ip, err)
		}
		return &listener{raw: raw, n: n, node: node}, nil
	}
}

// Dial returns a dial hook for node: outgoing connections bind their local address to the node's IP, so the
// accepting side attributes them to node. The dialed side is not wrapped; the listener side enforces faults.
func (n *Net) Dial(node string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ip, ok := n.nodeAddr(node)
		if !ok {
			return nil, fmt.Errorf("faultnet: dial from %s to %s: unknown node", node, addr)
		}
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip.AsSlice()}}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, fmt.Errorf("faultnet: dial from %s to %s: %w", node, addr, err)
		}
		return c, nil
	}
}

func (n *Net) nodeAddr(node string) (netip.Addr, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	addr, ok := n.nodes[node]
	return addr, ok
}

// nameOf attributes a remote address to a node, or to Client.
func (n *Net) nameOf(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return Client
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return Client
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if name, ok := n.byIP[ip.Unmap()]; ok {
		return name
	}
	return Client
}

// listener wraps a node's TCP listener; connections refused by a reset partition are reset right after accept
// and never handed to the node.
type listener struct {
	raw  net.Listener
	n    *Net
	node string
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		rc, err := l.raw.Accept()
		if err != nil {
			return nil, err
		}
		tc, ok := rc.(*net.TCPConn)
		if !ok {
			rc.Close()
			return nil, fmt.Errorf("faultnet: accept on %s: unexpected connection type %T", l.node, rc)
		}
		c := newConn(l.n, tc, l.node, l.n.nameOf(tc.RemoteAddr()))
		if l.n.admit(c) {
			return c, nil
		}
		l.n.logger.Debug("connection reset at accept", "local", c.local, "remote", c.remote)
		resetTCP(tc)
	}
}

func (l *listener) Close() error   { return l.raw.Close() }
func (l *listener) Addr() net.Addr { return l.raw.Addr() }

// resetTCP closes with SO_LINGER 0, so the peer sees a reset, as when a middlebox or a crash breaks a
// connection, rather than an orderly end of stream.
func resetTCP(tc *net.TCPConn) {
	// SetLinger fails only on an already closed socket, which Close then reports as well; both are moot here.
	_ = tc.SetLinger(0)
	_ = tc.Close()
}

// admit registers a freshly accepted connection unless a reset partition covers either of its directions.
func (n *Net) admit(c *conn) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stateLocked(c.remote, c.local).reset || n.stateLocked(c.local, c.remote).reset {
		return false
	}
	n.conns[c] = struct{}{}
	return true
}

func (n *Net) forget(c *conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.conns, c)
}

// quiet reports that no fault is active, so traffic may skip the rules entirely.
func (n *Net) quiet() bool { return n.active.Load() == 0 }

// dirState is what the rules say about bytes travelling from one node to another.
type dirState struct {
	blocked bool   // a drop partition or a pause stalls the direction
	reset   bool   // a reset partition covers the direction
	latency *fault // the newest latency fault on the direction, if any
	lose    bool   // a lose-responses fault discards what this node writes to clients
}

func (n *Net) stateLocked(from, to string) dirState {
	var st dirState
	for _, f := range n.faults {
		switch f.kind {
		case KindPartition:
			if f.links[Link{From: from, To: to}] {
				if f.mode == Reset {
					st.reset = true
				}
				st.blocked = true
			}
		case KindPause:
			if from == f.node || to == f.node {
				st.blocked = true
			}
		case KindLatency:
			if f.links[Link{From: from, To: to}] {
				st.latency = f
			}
		case KindLoseResponses:
			if from == f.node && to == Client {
				st.lose = true
			}
		}
	}
	return st
}

// errResetByFault is returned by waits when a reset partition now covers the connection.
var errResetByFault = errors.New("faultnet: connection reset by a partition")

// waitOpen blocks until bytes may travel from -> to: no drop partition or pause blocks the direction, and the
// delivery time at (zero: now) has come. It returns os.ErrDeadlineExceeded when dl passes, net.ErrClosed when
// abort is closed, and errResetByFault when a reset partition covers the direction.
func (n *Net) waitOpen(from, to string, at time.Time, dl *deadline, abort <-chan struct{}) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-abort:
			return net.ErrClosed
		default:
		}
		var st dirState
		var changed <-chan struct{}
		if !n.quiet() || !at.IsZero() {
			n.mu.Lock()
			st = n.stateLocked(from, to)
			changed = n.changed
			n.mu.Unlock()
		}
		if st.reset {
			return errResetByFault
		}
		var due <-chan time.Time
		if !st.blocked {
			wait := time.Until(at)
			if at.IsZero() || wait <= 0 {
				return nil
			}
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			due = timer.C
		}
		var expired <-chan struct{}
		if dl != nil {
			expired = dl.done()
		}
		select {
		case <-changed:
		case <-due:
		case <-expired:
			return deadlineErr
		case <-abort:
			return net.ErrClosed
		}
	}
}

// signalLocked wakes every stalled goroutine so it re-reads the rules.
func (n *Net) signalLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
	n.active.Store(int64(len(n.faults)))
}
