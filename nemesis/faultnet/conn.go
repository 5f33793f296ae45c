package faultnet

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Bounds of the layer's own buffering.
const (
	// chunkSize bounds one stalled or delayed unit of bytes, so a partition starting in the middle of a large
	// Write stalls its remainder.
	chunkSize = 32 << 10
	// queueChunks bounds each direction's latency queue (queueChunks*chunkSize bytes in flight); beyond it the
	// writer blocks, as a full TCP window does.
	queueChunks = 64
	// lingerLimit bounds how long a Close keeps sending bytes still queued by latency, as a kernel lingers.
	lingerLimit = 5 * time.Second
)

// Reasons the layer breaks a connection; the endpoints see ECONNRESET wrapping them.
var (
	errLostResponse = errors.New("faultnet: response lost with its connection")
	errNotDelivered = errors.New("faultnet: delayed bytes could not be delivered")
)

// conn is the accepted side of a connection. Its Read carries bytes remote -> local, its Write bytes
// local -> remote, and it alone enforces faults for both directions (the dialing side is a plain socket).
//
// Concurrency: readMu serializes Reads and guards the read-side fields, writeMu serializes Writes and guards
// the write-side fields. Once latency first touches a direction, a pump goroutine carries that direction's bytes
// through a bounded queue for the rest of the connection's life; the pumps end when the connection closes.
type conn struct {
	n      *Net
	raw    *net.TCPConn
	local  string // the listening node
	remote string // the calling node, or Client

	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error // why the layer reset the connection (nil: closed by its owner); set before closed closes

	rdl, wdl *deadline

	readMu     sync.Mutex
	pending    chunk      // bytes received but not yet delivered, with their delivery time
	readQ      chan chunk // non-nil once the read pump runs
	readLast   time.Time  // latest inbound delivery time handed out, so jitter never reorders
	readPumped atomic.Bool
	scan       frameScan // follows a client's request frames, for corrupt faults

	writeMu     sync.Mutex
	writeQ      chan chunk // non-nil once the write pump runs
	writeLast   time.Time
	writePumped atomic.Bool
	pumpDead    chan struct{} // closed when the write pump failed; pumpErr says why
	pumpErr     error
}

// chunk is a run of bytes (or the end of the stream) in flight, due for delivery at at.
type chunk struct {
	data []byte
	err  error
	at   time.Time
}

func (ch chunk) empty() bool { return len(ch.data) == 0 && ch.err == nil }

func newConn(n *Net, raw *net.TCPConn, local, remote string) *conn {
	return &conn{
		n: n, raw: raw, local: local, remote: remote,
		closed:   make(chan struct{}),
		rdl:      newDeadline(),
		wdl:      newDeadline(),
		pumpDead: make(chan struct{}),
	}
}

// Read delivers bytes from remote to local once no fault holds them back.
func (c *conn) Read(p []byte) (int, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for {
		if !c.pending.empty() {
			if err := c.n.waitOpen(c.remote, c.local, c.pending.at, c.rdl, c.closed); err != nil {
				return 0, c.fail("read", err)
			}
			if len(c.pending.data) == 0 {
				return 0, c.fail("read", c.pending.err) // the end of the stream stays the end
			}
			k := copy(p, c.pending.data)
			c.pending.data = c.pending.data[k:]
			c.delivered(p[:k])
			return k, nil
		}
		if !c.readPumped.Load() && !c.n.quiet() && c.n.rules(c.remote, c.local).latency != nil {
			c.startReadPump()
		}
		if c.readQ != nil {
			select {
			case c.pending = <-c.readQ:
				continue
			case <-c.rdl.done():
				return 0, c.fail("read", deadlineErr)
			case <-c.closed:
				return 0, c.fail("read", net.ErrClosed)
			}
		}
		// Leave the bytes in the kernel while the direction is blocked: its flow control then pushes back on
		// the sender exactly as a stalled network does.
		if err := c.n.waitOpen(c.remote, c.local, time.Time{}, c.rdl, c.closed); err != nil {
			return 0, c.fail("read", err)
		}
		k, err := c.raw.Read(p)
		if k > 0 && !c.n.quiet() {
			// The rules may have changed while the read was parked in the kernel: bytes that arrived after a
			// partition began wait for its heal, and a new latency applies to them.
			at, st := c.n.arrival(c.remote, c.local, &c.readLast)
			if st.reset {
				return 0, c.fail("read", errResetByFault)
			}
			if st.blocked || at.After(time.Now()) {
				c.pending = chunk{data: append([]byte(nil), p[:k]...), err: err, at: at}
				continue
			}
		}
		c.delivered(p[:k])
		return k, c.fail("read", err)
	}
}

// Write sends bytes from local to remote, stalling while a fault blocks the direction.
func (c *conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	select {
	case <-c.closed:
		return 0, c.fail("write", net.ErrClosed)
	default:
	}
	if c.n.quiet() && !c.writePumped.Load() {
		k, err := c.raw.Write(p)
		return k, c.fail("write", err)
	}
	select {
	case <-c.wdl.done():
		return 0, c.fail("write", deadlineErr)
	default:
	}
	st := c.n.rules(c.local, c.remote)
	if st.lose {
		// The node believes the response went out; the network loses it and the connection with it.
		c.n.logger.Debug("response lost", "node", c.local, "bytes", len(p))
		c.shutdown(errLostResponse)
		return len(p), nil
	}
	if st.latency != nil && !c.writePumped.Load() {
		c.startWritePump()
	}
	written := 0
	for written < len(p) {
		end := min(len(p), written+chunkSize)
		if c.writeQ != nil {
			at, st := c.n.arrival(c.local, c.remote, &c.writeLast)
			if st.reset {
				return written, c.fail("write", errResetByFault)
			}
			select {
			case c.writeQ <- chunk{data: append([]byte(nil), p[written:end]...), at: at}:
				written = end
				continue
			case <-c.pumpDead:
				return written, c.fail("write", c.pumpErr)
			case <-c.wdl.done():
				return written, c.fail("write", deadlineErr)
			case <-c.closed:
				return written, c.fail("write", net.ErrClosed)
			}
		}
		if err := c.n.waitOpen(c.local, c.remote, time.Time{}, c.wdl, c.closed); err != nil {
			return written, c.fail("write", err)
		}
		k, err := c.raw.Write(p[written:end])
		written += k
		if err != nil {
			return written, c.fail("write", err)
		}
	}
	return written, nil
}

// Close closes the connection. Bytes still queued by latency are sent first, within lingerLimit.
func (c *conn) Close() error {
	if err := c.shutdown(nil); err != nil {
		return c.opErr("close", err)
	}
	return nil
}

func (c *conn) LocalAddr() net.Addr  { return c.raw.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr { return c.raw.RemoteAddr() }

func (c *conn) SetDeadline(t time.Time) error {
	return errors.Join(c.SetReadDeadline(t), c.SetWriteDeadline(t))
}

// SetReadDeadline applies to Reads parked in the kernel and to Reads stalled by a fault alike.
func (c *conn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	if !c.readPumped.Load() {
		return c.raw.SetReadDeadline(t)
	}
	return nil
}

// SetWriteDeadline applies to Writes parked in the kernel and to Writes stalled by a fault alike.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.wdl.set(t)
	if !c.writePumped.Load() {
		return c.raw.SetWriteDeadline(t)
	}
	return nil
}

// shutdown closes the connection once: reason nil is the owner's Close, anything else a reset by the layer.
// It returns net.ErrClosed if the connection was already closed.
func (c *conn) shutdown(reason error) error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.closeErr = reason
		close(c.closed)
	})
	if !first {
		return net.ErrClosed
	}
	c.n.forget(c)
	c.rdl.stop()
	c.wdl.stop()
	if reason != nil {
		c.n.logger.Debug("connection reset", "local", c.local, "remote", c.remote, "reason", reason)
		resetTCP(c.raw)
		return nil
	}
	if c.writePumped.Load() {
		// The write pump sends what is still queued and then closes the socket; stop reading now so that
		// readers are released at once.
		return c.raw.CloseRead()
	}
	return c.raw.Close()
}

// fail turns an error met while reading or writing into what a net.Conn reports: io.EOF as is, everything
// else a *net.OpError; a connection broken by a fault reports ECONNRESET.
func (c *conn) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, errResetByFault) {
		c.shutdown(errResetByFault)
	}
	select {
	case <-c.closed:
		if c.closeErr != nil {
			return c.opErr(op, fmt.Errorf("%w (%w)", syscall.ECONNRESET, c.closeErr))
		}
		return c.opErr(op, net.ErrClosed)
	default:
	}
	switch {
	case err == io.EOF:
		return io.EOF
	case errors.Is(err, os.ErrDeadlineExceeded):
		return c.opErr(op, os.ErrDeadlineExceeded)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return err
	}
	return c.opErr(op, err)
}

func (c *conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.raw.LocalAddr(), Addr: c.raw.RemoteAddr(), Err: err}
}

// rules reads what the rules say about from -> to now.
func (n *Net) rules(from, to string) dirState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stateLocked(from, to)
}

// arrival stamps bytes entering the network from -> to now with their delivery time: now plus a latency draw,
// but never before the previous stamp of the same direction (*last), so that jitter never reorders a stream.
func (n *Net) arrival(from, to string, last *time.Time) (time.Time, dirState) {
	n.mu.Lock()
	st := n.stateLocked(from, to)
	var delay time.Duration
	if st.latency != nil {
		delay = st.latency.sampleDelayLocked()
	}
	n.mu.Unlock()
	at := time.Now().Add(delay)
	if at.Before(*last) {
		at = *last
	}
	*last = at
	return at, st
}
