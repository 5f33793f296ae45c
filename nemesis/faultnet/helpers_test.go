package faultnet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// patience bounds every wait for something that must happen; it only matters when the layer is broken.
const patience = 20 * time.Second

// quietSpell is how long a test watches for something that must NOT happen (bytes crossing a blocked link).
// Load can only make such an assertion pass more easily, never fail spuriously.
const quietSpell = 300 * time.Millisecond

// newTestNet registers node-1..node-3 at 127.0.0.11..13, skipping the test where those addresses are not usable.
func newTestNet(t testing.TB) *Net {
	t.Helper()
	for _, ip := range []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"} {
		ln, err := net.Listen("tcp4", ip+":0")
		if err != nil {
			t.Skipf("loopback alias %s is not bindable here (Linux routes all of 127.0.0.0/8 to lo; other systems need aliases): %v", ip, err)
		}
		ln.Close()
	}
	n := New(nil)
	n.AddNode("node-1", "127.0.0.11")
	n.AddNode("node-2", "127.0.0.12")
	n.AddNode("node-3", "127.0.0.13")
	return n
}

// listen opens a listener for node on an ephemeral port of its IP, closed at cleanup.
func listen(t testing.TB, n *Net, node string) net.Listener {
	t.Helper()
	ln, err := n.Listen(node)("tcp", ":0")
	if err != nil {
		t.Fatalf("listen for %s: %v", node, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dial connects from node (or Client, from 127.0.0.1) to addr.
func dial(t testing.TB, n *Net, from, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	var c net.Conn
	var err error
	if from == Client {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
		c, err = d.DialContext(ctx, "tcp", addr)
	} else {
		c, err = n.Dial(from)(ctx, "tcp", addr)
	}
	if err != nil {
		t.Fatalf("dial from %s to %s: %v", from, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// pair returns a connection from dialer to listener's node: the dialer's plain socket and the accepted,
// wrapped side.
func pair(t testing.TB, n *Net, listener, dialer string) (dialed, accepted net.Conn) {
	t.Helper()
	ln := listen(t, n, listener)
	type res struct {
		c   net.Conn
		err error
	}
	got := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		got <- res{c, err}
	}()
	dialed = dial(t, n, dialer, ln.Addr().String())
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("accept on %s: %v", listener, r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return dialed, r.c
	case <-time.After(patience):
		t.Fatalf("accept on %s: nothing accepted", listener)
	}
	return nil, nil
}

// pattern returns size deterministic bytes, different for each seed, so reordering or loss shows.
func pattern(seed, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte((i*7 + seed*13 + i/251) % 256)
	}
	return b
}

// asyncWrite writes b to c in the background; the channel yields the result.
type writeResult struct {
	n   int
	err error
}

func asyncWrite(c net.Conn, b []byte) <-chan writeResult {
	ch := make(chan writeResult, 1)
	go func() {
		n, err := c.Write(b)
		ch <- writeResult{n, err}
	}()
	return ch
}

// readExactly reads len(want) bytes within patience and checks they equal want.
func readExactly(t testing.TB, c net.Conn, want []byte, what string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(patience)); err != nil {
		t.Fatalf("%s: set deadline: %v", what, err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("%s: read %d bytes: %v", what, len(want), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: stream corrupted or reordered (first difference at byte %d)", what, firstDiff(got, want))
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatalf("%s: clear deadline: %v", what, err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// expectSilence checks that nothing can be read from c during quietSpell: the read must end in a timeout.
func expectSilence(t testing.TB, c net.Conn, what string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(quietSpell)); err != nil {
		t.Fatalf("%s: set deadline: %v", what, err)
	}
	buf := make([]byte, 1)
	n, err := c.Read(buf)
	if n > 0 || !isTimeout(err) {
		t.Fatalf("%s: want a stalled read ending in a timeout, got n=%d err=%v", what, n, err)
	}
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatalf("%s: clear deadline: %v", what, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

// isBroken reports a connection that ended: reset, EOF or closed.
func isBroken(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed)
}

// waitUntil polls cond until it holds, failing after patience.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// expectBlocked checks that a background write has not finished during quietSpell.
func expectPending(t testing.TB, ch <-chan writeResult, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s: want the write stalled, it returned n=%d err=%v", what, r.n, r.err)
	case <-time.After(quietSpell):
	}
}

func awaitWrite(t testing.TB, ch <-chan writeResult, want int, what string) {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil || r.n != want {
			t.Fatalf("%s: write returned n=%d err=%v, want n=%d", what, r.n, r.err, want)
		}
	case <-time.After(patience):
		t.Fatalf("%s: write never finished", what)
	}
}

// mustFault wraps a fault start: mustFault(t)(n.Pause("node-1")).
func mustFault(t testing.TB) func(FaultID, error) FaultID {
	return func(id FaultID, err error) FaultID {
		t.Helper()
		if err != nil {
			t.Fatalf("start fault: %v", err)
		}
		return id
	}
}
