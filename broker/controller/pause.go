package controller

import (
	"context"
	"net"
	"sync"
)

// Pause freezes the voter as a stopped process (SIGSTOP) would: its connections stay open, but nothing is
// read from or written to them, no connection is dialled, and the liveness tracker does nothing, until Resume.
// Raft's own timers keep running underneath, which only matters at Resume: a voter that led finds the others
// elected a new leader while it was silent (its lease ran out without contact, so it stepped down) and
// rejoins as a follower; a follower's stale election attempt is refused by pre-vote. Either way the quorum
// goes on without it while it is frozen, as it would without a stopped process.
func (c *Controller) Pause() { c.frz.freeze() }

// Resume undoes Pause.
func (c *Controller) Resume() { c.frz.thaw() }

// freezer holds the controller's traffic and work while the voter is paused. dead is closed at shutdown:
// every waiter then gives up, so a paused voter can still be killed.
type freezer struct {
	mu     sync.Mutex
	thawed chan struct{} // nil while running; open while frozen, closed on thaw
	dead   <-chan struct{}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.thawed == nil {
		f.thawed = make(chan struct{})
	}
}

func (f *freezer) thaw() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.thawed != nil {
		close(f.thawed)
		f.thawed = nil
	}
}

// frozen reports whether the voter is paused now.
func (f *freezer) frozen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.thawed != nil
}

// wait returns nil at once while running, else once thawed; net.ErrClosed when the voter shuts down or
// closed is closed first, ctx's error when ctx ends first.
func (f *freezer) wait(ctx context.Context, closed <-chan struct{}) error {
	f.mu.Lock()
	ch := f.thawed
	f.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-f.dead:
		return net.ErrClosed
	case <-closed:
		return net.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// listen and dial wrap the controller's network hooks so every connection goes through the freezer.
func (f *freezer) listen(listen func(network, addr string) (net.Listener, error)) func(network, addr string) (net.Listener, error) {
	return func(network, addr string) (net.Listener, error) {
		ln, err := listen(network, addr)
		if err != nil {
			return nil, err
		}
		return frozenListener{Listener: ln, f: f}, nil
	}
}

func (f *freezer) dial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := f.wait(ctx, nil); err != nil {
			return nil, err
		}
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newFrozenConn(c, f), nil
	}
}

// frozenListener hands out frozen connections. Accepting itself goes on while paused, as the kernel of a
// stopped process completes handshakes into the backlog; the accepted connection is silent until thawed.
type frozenListener struct {
	net.Listener
	f *freezer
}

func (l frozenListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newFrozenConn(c, l.f), nil
}

// frozenConn reads and writes only while the voter runs. Bytes a read returns while the voter is paused (the
// kernel buffers them for a stopped process too) are held back until it resumes.
type frozenConn struct {
	net.Conn
	f      *freezer
	once   sync.Once
	closed chan struct{}
}

func newFrozenConn(c net.Conn, f *freezer) *frozenConn {
	return &frozenConn{Conn: c, f: f, closed: make(chan struct{})}
}

func (c *frozenConn) Read(p []byte) (int, error) {
	if err := c.f.wait(context.Background(), c.closed); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if werr := c.f.wait(context.Background(), c.closed); werr != nil {
		return 0, werr
	}
	return n, err
}

func (c *frozenConn) Write(p []byte) (int, error) {
	if err := c.f.wait(context.Background(), c.closed); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *frozenConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
