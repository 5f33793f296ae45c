package controller

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Every connection to a controller's listener starts with one byte saying what it carries, so raft's stream
// and the forward RPC share one address (and one set of injected network faults).
const (
	streamRaft    byte = 'R'
	streamForward byte = 'F'
	// maxForwardFrame bounds one forward RPC message (a command or its result).
	maxForwardFrame = 4 << 20
	// firstByteTimeout bounds how long an accepted connection may stay silent before saying what it is.
	firstByteTimeout = 10 * time.Second
)

// mux accepts connections on the controller's listener and sorts them by their first byte: raft streams go
// to the stream layer, forward connections to serve.
type mux struct {
	ln      net.Listener
	raft    chan net.Conn
	serve   func(net.Conn)
	closed  chan struct{}
	once    sync.Once
	mu      sync.Mutex
	conns   map[net.Conn]struct{} // every accepted connection, closed on shutdown
	wg      sync.WaitGroup
	advAddr string
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
}

func newMux(ln net.Listener, advAddr string, dial func(ctx context.Context, network, addr string) (net.Conn, error), serve func(net.Conn)) *mux {
	m := &mux{ln: ln, raft: make(chan net.Conn), serve: serve, closed: make(chan struct{}), conns: map[net.Conn]struct{}{},
		advAddr: advAddr, dial: dial}
	m.wg.Add(1)
	go m.acceptLoop()
	return m
}

func (m *mux) acceptLoop() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			return
		}
		if !m.track(c) {
			c.Close()
			return
		}
		m.wg.Add(1)
		go m.route(c)
	}
}

// track remembers c so shutdown can close it; false once the mux is closed.
func (m *mux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-m.closed:
		return false
	default:
	}
	m.conns[c] = struct{}{}
	return true
}

func (m *mux) untrack(c net.Conn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

func (m *mux) route(c net.Conn) {
	defer m.wg.Done()
	var b [1]byte
	c.SetReadDeadline(time.Now().Add(firstByteTimeout))
	if _, err := io.ReadFull(c, b[:]); err != nil {
		m.untrack(c)
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	switch b[0] {
	case streamRaft:
		select {
		case m.raft <- trackedConn{Conn: c, m: m}:
		case <-m.closed:
			c.Close()
		}
	case streamForward:
		m.serve(c)
		m.untrack(c)
		c.Close()
	default:
		m.untrack(c)
		c.Close()
	}
}

// trackedConn forgets itself in the mux when raft closes it.
type trackedConn struct {
	net.Conn
	m *mux
}

func (t trackedConn) Close() error {
	t.m.untrack(t.Conn)
	return t.Conn.Close()
}

// close stops accepting and closes every accepted connection (raft's and forward ones).
func (m *mux) close() {
	m.once.Do(func() {
		m.mu.Lock()
		close(m.closed)
		for c := range m.conns {
			c.Close()
		}
		m.mu.Unlock()
		m.ln.Close()
	})
	m.wg.Wait()
}

// streamLayer is raft's view of the mux: Accept yields raft streams; Dial opens one with cfg.Dial.
type streamLayer struct{ m *mux }

func (s streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.m.raft:
		return c, nil
	case <-s.m.closed:
		return nil, net.ErrClosed
	}
}

func (s streamLayer) Close() error { s.m.close(); return nil }

func (s streamLayer) Addr() net.Addr { return advertised(s.m.advAddr) }

func (s streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return dialKind(ctx, s.m.dial, string(address), streamRaft)
}

// dialKind connects and announces the stream kind.
func dialKind(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), addr string, kind byte) (net.Conn, error) {
	c, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial controller %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetWriteDeadline(dl)
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, fmt.Errorf("announce stream to controller %s: %w", addr, err)
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

// advertised is the configured voter address, which raft gives to its peers.
type advertised string

func (a advertised) Network() string { return "tcp" }
func (a advertised) String() string  { return string(a) }

// forwardRequest is one call from a controller to the active one. Exactly one of Command or Heartbeat is set.
type forwardRequest struct {
	Command   *commandRequest   `json:"command,omitempty"`
	Heartbeat *heartbeatRequest `json:"heartbeat,omitempty"`
	// Timeout is how long the caller will wait; the active controller gives up on its side after it.
	Timeout time.Duration `json:"timeout"`
}

type commandRequest struct {
	Command json.RawMessage `json:"command"`
}

type heartbeatRequest struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// forwardResponse carries the outcome. NotActive means the receiver is not the active controller and did
// nothing, so the caller may safely retry elsewhere; Error is any other failure, whose outcome may be unknown.
type forwardResponse struct {
	Result    json.RawMessage `json:"result,omitempty"`
	NotActive bool            `json:"not_active,omitempty"`
	Error     string          `json:"error,omitempty"`
	ErrorCode int16           `json:"error_code,omitempty"`
	// Unknown marks an Error after which the command may still commit.
	Unknown bool `json:"unknown,omitempty"`
}

var errFrameTooLarge = errors.New("forward frame too large")

// writeFrame sends a u32 length then JSON.
func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode forward frame: %w", err)
	}
	if len(b) > maxForwardFrame {
		return fmt.Errorf("send %d bytes (limit %d): %w", len(b), maxForwardFrame, errFrameTooLarge)
	}
	buf := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	if _, err := w.Write(append(buf, b...)); err != nil {
		return fmt.Errorf("write forward frame: %w", err)
	}
	return nil
}

// readFrame reads one frame into v, refusing frames over the bound before allocating.
func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("read forward frame header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxForwardFrame {
		return fmt.Errorf("receive %d bytes (limit %d): %w", n, maxForwardFrame, errFrameTooLarge)
	}
	// Grow with the bytes that actually arrive: a header alone must not make us allocate the limit.
	b, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err == nil && uint32(len(b)) < n {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return fmt.Errorf("read forward frame body of %d bytes: %w", n, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode forward frame: %w", err)
	}
	return nil
}

// connPool keeps idle forward connections per address; a connection that saw any error is closed, not reused.
type connPool struct {
	mu   sync.Mutex
	idle map[string][]net.Conn
	dead bool
}

const maxIdlePerAddr = 4

func (p *connPool) get(addr string) net.Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := p.idle[addr]
	if len(cs) == 0 {
		return nil
	}
	c := cs[len(cs)-1]
	p.idle[addr] = cs[:len(cs)-1]
	return c
}

func (p *connPool) put(addr string, c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead || len(p.idle[addr]) >= maxIdlePerAddr {
		c.Close()
		return
	}
	if p.idle == nil {
		p.idle = map[string][]net.Conn{}
	}
	p.idle[addr] = append(p.idle[addr], c)
}

func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead = true
	for _, cs := range p.idle {
		for _, c := range cs {
			c.Close()
		}
	}
	p.idle = nil
}
