package faultnet

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestAttribution(t *testing.T) {
	n := newTestNet(t)
	for _, from := range []string{"node-2", "node-3", Client} {
		_, accepted := pair(t, n, "node-1", from)
		c := accepted.(*conn)
		if c.local != "node-1" || c.remote != from {
			t.Errorf("dial from %s: accepted side sees local=%s remote=%s", from, c.local, c.remote)
		}
	}
	ln := listen(t, n, "node-2")
	if got := ln.Addr().(*net.TCPAddr).IP.String(); got != "127.0.0.12" {
		t.Errorf("node-2 listens on %s, want 127.0.0.12", got)
	}
	if _, err := n.Listen("node-1")("tcp", "127.0.0.12:0"); err == nil {
		t.Error("node-1 may listen on node-2's IP")
	}
	if _, err := n.Listen("node-9")("tcp", ":0"); err == nil {
		t.Error("an unknown node may listen")
	}
	if ip, ok := n.IP("node-3"); !ok || ip != "127.0.0.13" {
		t.Errorf("IP(node-3) = %q, %v", ip, ok)
	}
}

func TestDropPartitionStallsBothWaysThenResumesIntact(t *testing.T) {
	n := newTestNet(t)
	dialed, accepted := pair(t, n, "node-1", "node-2")

	// A Read already parked in the kernel when the partition starts must hold what arrives afterwards too.
	parked := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 1)
		if _, err := io.ReadFull(accepted, buf); err != nil {
			parked <- nil
			return
		}
		parked <- buf
	}()
	time.Sleep(50 * time.Millisecond) // let the reader park; if it has not yet, it stalls in the layer instead
	id := mustFault(t)(n.Partition(Cut([]string{"node-1"}, []string{"node-2"}), Drop))
	if !n.Blocked("node-1", "node-2") || !n.Blocked("node-2", "node-1") || n.Blocked("node-1", "node-3") {
		t.Fatalf("Blocked disagrees with the partition: %v", n.Active())
	}

	const size = 8 << 20 // more than the kernel buffers hold, so the dialer's write blocks as in life
	in := pattern(1, size)
	out := pattern(2, size)
	inDone := asyncWrite(dialed, in)
	outDone := asyncWrite(accepted, out)
	select {
	case b := <-parked:
		t.Fatalf("a read parked before the partition returned %v during it", b)
	case <-time.After(quietSpell):
	}
	expectSilence(t, dialed, "node-2 reading node-1 during the partition")
	expectPending(t, outDone, "node-1 writing to node-2 during the partition")
	expectPending(t, inDone, "node-2 writing 8 MiB to node-1 during the partition")

	if err := n.Heal(id); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-parked:
		if len(b) != 1 || b[0] != in[0] {
			t.Fatalf("parked read got %v, want the first byte %d", b, in[0])
		}
	case <-time.After(patience):
		t.Fatal("parked read never resumed after heal")
	}
	readExactly(t, accepted, in[1:], "node-1 reading after heal")
	readExactly(t, dialed, out, "node-2 reading after heal")
	awaitWrite(t, inDone, size, "node-2's write")
	awaitWrite(t, outDone, size, "node-1's write")
	if err := n.Heal(id); !errors.Is(err, ErrUnknownFault) {
		t.Errorf("healing twice: %v, want ErrUnknownFault", err)
	}
}

func TestNewConnectionAcrossDropPartitionStalls(t *testing.T) {
	n := newTestNet(t)
	id := mustFault(t)(n.Partition(n.Isolate("node-1"), Drop))
	dialed, accepted := pair(t, n, "node-1", Client)
	msg := []byte("hello")
	done := asyncWrite(accepted, msg)
	expectPending(t, done, "node-1 answering a client while isolated")
	if _, err := dialed.Write(msg); err != nil {
		t.Fatal(err)
	}
	expectSilence(t, accepted, "node-1 hearing a client while isolated")
	n.Heal(id)
	readExactly(t, accepted, msg, "node-1 after heal")
	readExactly(t, dialed, msg, "client after heal")
	awaitWrite(t, done, len(msg), "node-1's write")
}

func TestResetPartition(t *testing.T) {
	n := newTestNet(t)
	ln := listen(t, n, "node-1")
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	old := dial(t, n, "node-2", ln.Addr().String())
	oldAccepted := <-accepted
	defer oldAccepted.Close()
	bystander := dial(t, n, "node-3", ln.Addr().String())
	bystanderAccepted := <-accepted
	defer bystanderAccepted.Close()

	id := mustFault(t)(n.Partition(OneWay("node-2", "node-1"), Reset))

	// Existing connections across the link break at once on both ends, even though only one direction is cut:
	// TCP needs both.
	buf := make([]byte, 1)
	oldAccepted.SetReadDeadline(time.Now().Add(patience))
	if _, err := oldAccepted.Read(buf); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("node-1's side of the reset connection read: %v, want ECONNRESET", err)
	}
	old.SetReadDeadline(time.Now().Add(patience))
	if _, err := old.Read(buf); !isBroken(err) {
		t.Fatalf("node-2's side of the reset connection read: %v, want a broken connection", err)
	}

	// New connections are reset right after accept and never reach the node: the dial itself may already see
	// the reset, or the first read does.
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	fresh, err := n.Dial("node-2")(ctx, "tcp", ln.Addr().String())
	if err == nil {
		defer fresh.Close()
		fresh.SetReadDeadline(time.Now().Add(patience))
		_, err = fresh.Read(buf)
	}
	if !isBroken(err) {
		t.Fatalf("a new connection across a reset partition: %v, want a broken connection", err)
	}

	// Others are untouched.
	if _, err := bystander.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	readExactly(t, bystanderAccepted, []byte("x"), "node-3's connection during node-2's reset partition")

	n.Heal(id)
	after := dial(t, n, "node-2", ln.Addr().String())
	if _, err := after.Write([]byte("y")); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		defer c.Close()
		readExactly(t, c, []byte("y"), "a connection made after heal")
	case <-time.After(patience):
		t.Fatal("no connection accepted after heal")
	}
	select {
	case c := <-accepted:
		t.Fatalf("a connection from %s reached the node during the reset partition", c.RemoteAddr())
	default:
	}
}

func TestOneWay(t *testing.T) {
	// The link node-2 -> node-1 is cut; node-1 -> node-2 flows, whichever side dialed.
	for _, tc := range []struct{ listener, dialer string }{
		{listener: "node-1", dialer: "node-2"},
		{listener: "node-2", dialer: "node-1"},
	} {
		t.Run(tc.dialer+"-dials-"+tc.listener, func(t *testing.T) {
			n := newTestNet(t)
			dialed, accepted := pair(t, n, tc.listener, tc.dialer)
			var fromTwo, fromOne net.Conn // the sockets node-2 and node-1 write on
			var toOne, toTwo net.Conn     // the sockets node-1 and node-2 read on
			if tc.dialer == "node-2" {
				fromTwo, toTwo, fromOne, toOne = dialed, dialed, accepted, accepted
			} else {
				fromTwo, toTwo, fromOne, toOne = accepted, accepted, dialed, dialed
			}
			id := mustFault(t)(n.Partition(OneWay("node-2", "node-1"), Drop))
			if !n.Blocked("node-2", "node-1") || n.Blocked("node-1", "node-2") {
				t.Fatalf("Blocked disagrees with a one-way partition")
			}
			stalled := asyncWrite(fromTwo, []byte("two->one"))
			if _, err := fromOne.Write([]byte("one->two")); err != nil {
				t.Fatal(err)
			}
			readExactly(t, toTwo, []byte("one->two"), "node-2 hearing node-1 across a one-way cut")
			expectSilence(t, toOne, "node-1 hearing node-2 across a one-way cut")
			n.Heal(id)
			awaitWrite(t, stalled, len("two->one"), "node-2's write")
			readExactly(t, toOne, []byte("two->one"), "node-1 after heal")
		})
	}
}

func TestDeadlinesAndCloseWhileStalled(t *testing.T) {
	n := newTestNet(t)
	_, accepted := pair(t, n, "node-1", "node-2")
	mustFault(t)(n.Partition(n.Isolate("node-1"), Drop))

	// A read deadline set before the stall fires during it.
	expectSilence(t, accepted, "read stalled by a partition")

	// A deadline moved while the read is stalled is seen by the stalled read.
	accepted.SetReadDeadline(time.Now().Add(time.Hour))
	readErr := make(chan error, 1)
	go func() {
		_, err := accepted.Read(make([]byte, 1))
		readErr <- err
	}()
	time.Sleep(50 * time.Millisecond)
	accepted.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	select {
	case err := <-readErr:
		if !isTimeout(err) {
			t.Fatalf("stalled read after shortening its deadline: %v, want a timeout", err)
		}
	case <-time.After(patience):
		t.Fatal("shortening the deadline did not release a stalled read")
	}

	// Write deadline.
	accepted.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	k, err := accepted.Write([]byte("stuck"))
	if k != 0 || !isTimeout(err) {
		t.Fatalf("stalled write: n=%d err=%v, want 0 and a timeout", k, err)
	}
	accepted.SetDeadline(time.Time{})

	// Close releases a stalled Read and a stalled Write.
	pendingRead := make(chan error, 1)
	go func() {
		_, err := accepted.Read(make([]byte, 1))
		pendingRead <- err
	}()
	pendingWrite := asyncWrite(accepted, []byte("stuck"))
	time.Sleep(50 * time.Millisecond)
	if err := accepted.Close(); err != nil {
		t.Fatal(err)
	}
	for _, got := range []func() error{
		func() error { return <-pendingRead },
		func() error { return (<-pendingWrite).err },
	} {
		done := make(chan error, 1)
		go func() { done <- got() }()
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("stalled call after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(patience):
			t.Fatal("Close did not release a stalled call")
		}
	}
	if err := accepted.Close(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Close: %v, want net.ErrClosed", err)
	}
}

func TestPauseResume(t *testing.T) {
	n := newTestNet(t)
	fromTwo, atOne := pair(t, n, "node-1", "node-2")
	fromClient, atOneForClient := pair(t, n, "node-1", Client)
	fromThree, atTwo := pair(t, n, "node-2", "node-3")
	mustFault(t)(n.Pause("node-1"))

	stalledAnswer := asyncWrite(atOneForClient, []byte("answer"))
	fromTwo.Write([]byte("to-one"))
	fromClient.Write([]byte("request"))
	fromThree.Write([]byte("bystander"))
	readExactly(t, atTwo, []byte("bystander"), "node-2 hearing node-3 while node-1 is paused")
	expectSilence(t, atOne, "node-1 hearing node-2 while paused")
	expectSilence(t, fromClient, "a client hearing node-1 while paused")
	expectPending(t, stalledAnswer, "node-1 answering while paused")

	if got := n.Resume("node-1"); got != 1 {
		t.Fatalf("Resume healed %d pauses, want 1", got)
	}
	readExactly(t, atOne, []byte("to-one"), "node-1 after resume")
	readExactly(t, atOneForClient, []byte("request"), "node-1's client connection after resume")
	readExactly(t, fromClient, []byte("answer"), "client after resume")
	awaitWrite(t, stalledAnswer, len("answer"), "node-1's answer")
}

func TestHealAllAndActive(t *testing.T) {
	n := newTestNet(t)
	fromTwo, atOne := pair(t, n, "node-1", "node-2")
	rng := newRand(1)
	mustFault(t)(n.Partition(Cut([]string{"node-1"}, []string{"node-2", "node-3"}), Drop))
	mustFault(t)(n.Partition(OneWay(Client, "node-3"), Reset))
	mustFault(t)(n.Pause("node-2"))
	mustFault(t)(n.Latency("node-3", "node-1", 10*time.Millisecond, time.Millisecond, rng))
	mustFault(t)(n.LoseResponses("node-2", 0))

	active := n.Active()
	if len(active) != 5 {
		t.Fatalf("Active lists %d faults, want 5: %v", len(active), active)
	}
	var lines []string
	for _, f := range active {
		lines = append(lines, f.String())
	}
	joined := strings.Join(lines, "\n")
	for _, want := range []string{"partition(drop) node-1->node-2", "partition(reset) client->node-3", "pause node-2",
		"latency(10ms±1ms) node-3->node-1", "lose-responses node-2"} {
		if !strings.Contains(joined, want) {
			t.Errorf("Active() lacks %q:\n%s", want, joined)
		}
	}
	if active[0].Targets[0] != "node-1" || active[0].Mode != Drop {
		t.Errorf("first fault described as %+v", active[0])
	}

	fromTwo.Write([]byte("x"))
	expectSilence(t, atOne, "node-1 hearing node-2 under several faults")
	if got := n.HealAll(); got != 5 {
		t.Fatalf("HealAll healed %d, want 5", got)
	}
	if len(n.Active()) != 0 || n.Blocked("node-1", "node-2") || n.Blocked("node-2", "node-1") {
		t.Fatalf("faults remain after HealAll: %v", n.Active())
	}
	readExactly(t, atOne, []byte("x"), "node-1 after HealAll")
}

func TestFaultValidation(t *testing.T) {
	n := newTestNet(t)
	rng := newRand(1)
	for _, tc := range []struct {
		name string
		err  func() error
	}{
		{"unknown node", func() error { _, err := n.Partition(OneWay("node-1", "node-9"), Drop); return err }},
		{"self link", func() error { _, err := n.Partition(OneWay("node-1", "node-1"), Drop); return err }},
		{"no links", func() error { _, err := n.Partition(nil, Drop); return err }},
		{"bad mode", func() error { _, err := n.Partition(OneWay("node-1", "node-2"), "explode"); return err }},
		{"nil rng", func() error { _, err := n.Latency("node-1", "node-2", time.Millisecond, 0, nil); return err }},
		{"negative latency", func() error { _, err := n.Latency("node-1", "node-2", -time.Millisecond, 0, rng); return err }},
		{"pause a client", func() error { _, err := n.Pause(Client); return err }},
		{"lose on unknown", func() error { _, err := n.LoseResponses("node-9", 0); return err }},
		{"negative duration", func() error { _, err := n.LoseResponses("node-1", -time.Second); return err }},
	} {
		if tc.err() == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if len(n.Active()) != 0 {
		t.Errorf("rejected faults became active: %v", n.Active())
	}
}

func TestResetConns(t *testing.T) {
	n := newTestNet(t)
	d1, a1 := pair(t, n, "node-1", "node-2")
	_, a2 := pair(t, n, "node-3", Client)
	if got := n.ResetConns("node-2"); got != 1 {
		t.Fatalf("ResetConns(node-2) broke %d connections, want 1", got)
	}
	d1.SetReadDeadline(time.Now().Add(patience))
	if _, err := d1.Read(make([]byte, 1)); !isBroken(err) {
		t.Fatalf("reset connection read: %v", err)
	}
	if _, err := a1.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("write on reset connection: %v, want ECONNRESET", err)
	}
	a2.SetWriteDeadline(time.Now().Add(patience))
	if _, err := a2.Write([]byte("x")); err != nil {
		t.Fatalf("unrelated connection broken: %v", err)
	}
}
