package faultnet

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// Latency needs bytes to travel while nobody reads or writes (a delayed response must arrive on time even if
// the writer moved on, and pipelined requests must overlap their delays rather than add them up). So once a
// latency fault first touches a direction of a connection, a pump carries that direction: the read pump pulls
// bytes off the socket as they arrive and stamps their delivery time; the write pump sends queued bytes when
// they are due. Both queues are bounded (queueChunks), and both pumps still honour partitions and pauses.

// startReadPump switches the inbound direction to the pump. Called with readMu held.
func (c *conn) startReadPump() {
	c.readPumped.Store(true)
	// From now on deadlines are the layer's alone; the pump must never see one on the socket.
	_ = c.raw.SetReadDeadline(time.Time{})
	c.readQ = make(chan chunk, queueChunks)
	go c.readPump(c.readQ)
}

func (c *conn) readPump(q chan<- chunk) {
	buf := make([]byte, chunkSize)
	for {
		// Stop pulling while the direction is blocked, so the sender feels it through TCP flow control.
		if err := c.n.waitOpen(c.remote, c.local, time.Time{}, nil, c.closed); err != nil {
			if errors.Is(err, errResetByFault) {
				c.shutdown(errResetByFault)
			}
			return
		}
		k, err := c.raw.Read(buf)
		if k == 0 && errors.Is(err, os.ErrDeadlineExceeded) {
			// A deadline the owner set on the socket just before the pump took over.
			_ = c.raw.SetReadDeadline(time.Time{})
			continue
		}
		if k == 0 && err == nil {
			continue
		}
		at, st := c.n.arrival(c.remote, c.local, &c.readLast)
		if st.reset {
			c.shutdown(errResetByFault)
			return
		}
		select {
		case q <- chunk{data: append([]byte(nil), buf[:k]...), err: err, at: at}:
		case <-c.closed:
			return
		}
		if err != nil {
			return
		}
	}
}

// startWritePump switches the outbound direction to the pump. Called with writeMu held.
func (c *conn) startWritePump() {
	c.writePumped.Store(true)
	_ = c.raw.SetWriteDeadline(time.Time{})
	c.writeQ = make(chan chunk, queueChunks)
	go c.writePump(c.writeQ)
}

func (c *conn) writePump(q <-chan chunk) {
	for {
		select {
		case ch := <-q:
			err := c.n.waitOpen(c.local, c.remote, ch.at, nil, c.closed)
			if errors.Is(err, net.ErrClosed) {
				c.linger(q, &ch)
				return
			}
			if err == nil {
				err = c.send(ch.data)
			}
			if err != nil {
				c.pumpFailed(err)
				return
			}
		case <-c.closed:
			c.linger(q, nil)
			return
		}
	}
}

// send writes all of data to the socket.
func (c *conn) send(data []byte) error {
	for len(data) > 0 {
		k, err := c.raw.Write(data)
		data = data[k:]
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// A deadline the owner set on the socket just before the pump took over.
				_ = c.raw.SetWriteDeadline(time.Time{})
				continue
			}
			return err
		}
	}
	return nil
}

// pumpFailed records why the outbound direction broke, so Writes report it, and closes the socket once the
// owner closes the connection.
func (c *conn) pumpFailed(err error) {
	if errors.Is(err, errResetByFault) {
		c.shutdown(errResetByFault)
	}
	c.pumpErr = fmt.Errorf("%w: %w", syscall.EPIPE, errors.Join(errNotDelivered, err))
	close(c.pumpDead)
	<-c.closed
	_ = c.raw.Close()
}

// linger sends what is still queued after Close, within lingerLimit, then closes the socket. A reset sends
// nothing more.
func (c *conn) linger(q <-chan chunk, next *chunk) {
	defer c.raw.Close()
	if c.closeErr != nil {
		return
	}
	// Wait for a Write in progress to give up (it sees closed), so nothing is queued behind our back.
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	limit := newDeadline()
	limit.set(time.Now().Add(lingerLimit))
	defer limit.stop()
	for {
		if next == nil {
			select {
			case ch := <-q:
				next = &ch
			default:
				return
			}
		}
		if c.n.waitOpen(c.local, c.remote, next.at, limit, nil) != nil {
			return
		}
		if c.send(next.data) != nil {
			return
		}
		next = nil
	}
}
