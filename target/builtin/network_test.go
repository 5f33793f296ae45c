package builtin

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/nemesis"
)

// TestNetworkFaults runs every network fault against node-2 of one cluster, healing in between; node-1 is
// the control that must keep answering.
func TestNetworkFaults(t *testing.T) {
	tg := startTarget(t, nil)
	ctx := testCtx(t)
	createTopic(t, tg, "net", 3, 1, nil)
	p2 := partitionLedBy(t, tg, "net", 2)
	clientNode2 := []nemesis.Link{{From: nemesis.Client, To: "node-2"}, {From: "node-2", To: nemesis.Client}}

	healAfter := func(t *testing.T) { t.Cleanup(func() { tg.HealNetwork(ctx) }) }

	t.Run("drop stalls until heal", func(t *testing.T) {
		healAfter(t)
		c2, c1 := dialNode(t, tg, 2), dialNode(t, tg, 1)
		heal, err := tg.Partition(ctx, clientNode2, nemesis.Drop)
		if err != nil {
			t.Fatal(err)
		}
		if err := c2.roundTrip(300 * time.Millisecond); !isTimeout(err) {
			t.Fatalf("request to node-2 across a drop partition: %v, want a timeout", err)
		}
		if err := c1.roundTrip(10 * time.Second); err != nil {
			t.Fatalf("node-1 must still answer: %v", err)
		}
		if err := heal(); err != nil {
			t.Fatal(err)
		}
		// Drop only stalls: the request that was held back is delivered and answered on the same connection.
		if err := c2.recv(10 * time.Second); err != nil {
			t.Fatalf("the stalled request should be answered after heal: %v", err)
		}
		if err := dialNode(t, tg, 2).roundTrip(10 * time.Second); err != nil {
			t.Fatalf("new connection after heal: %v", err)
		}
	})

	t.Run("reset fails at once", func(t *testing.T) {
		healAfter(t)
		c2 := dialNode(t, tg, 2)
		if err := c2.roundTrip(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		heal, err := tg.Partition(ctx, clientNode2, nemesis.Reset)
		if err != nil {
			t.Fatal(err)
		}
		if err := c2.roundTrip(10 * time.Second); err == nil || isTimeout(err) {
			t.Fatalf("existing connection across a reset partition: %v, want a connection error", err)
		}
		if err := tryRoundTrip(tg, 2); err == nil || isTimeout(err) {
			t.Fatalf("new connection across a reset partition: %v, want a connection error", err)
		}
		if err := heal(); err != nil {
			t.Fatal(err)
		}
		if err := dialNode(t, tg, 2).roundTrip(10 * time.Second); err != nil {
			t.Fatalf("after heal: %v", err)
		}
	})

	t.Run("one-way is one-way", func(t *testing.T) {
		healAfter(t)
		// Responses cut (node-2 -> client): the request arrives and is applied, the client never hears.
		cl := client(t, tg, manual(), kgo.DisableIdempotentWrite())
		produce(t, cl, "net", p2, "warm-a") // opens the produce connection before the cut
		before := logEnd(t, tg, 2, "net", p2)
		heal, err := tg.Partition(ctx, []nemesis.Link{{From: "node-2", To: nemesis.Client}}, nemesis.Drop)
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		err = cl.ProduceSync(pctx, &kgo.Record{Topic: "net", Partition: p2, Value: []byte("oneway-out")}).FirstErr()
		cancel()
		if err == nil {
			t.Fatal("produce succeeded although node-2's responses are cut")
		}
		waitFor(t, 10*time.Second, "the request applied on node-2", func() error {
			if got := logEnd(t, tg, 2, "net", p2); got <= before {
				return fmt.Errorf("log end %d, was %d", got, before)
			}
			return nil
		})
		if err := heal(); err != nil {
			t.Fatal(err)
		}

		// Requests cut (client -> node-2): nothing arrives, nothing is applied while cut.
		cl = client(t, tg, manual(), kgo.DisableIdempotentWrite())
		produce(t, cl, "net", p2, "warm-b")
		before = logEnd(t, tg, 2, "net", p2)
		heal, err = tg.Partition(ctx, []nemesis.Link{{From: nemesis.Client, To: "node-2"}}, nemesis.Drop)
		if err != nil {
			t.Fatal(err)
		}
		pctx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
		err = cl.ProduceSync(pctx, &kgo.Record{Topic: "net", Partition: p2, Value: []byte("oneway-in")}).FirstErr()
		cancel()
		if err == nil {
			t.Fatal("produce succeeded although requests to node-2 are cut")
		}
		if got := logEnd(t, tg, 2, "net", p2); got != before {
			t.Fatalf("node-2 applied a request it cannot have received: log end %d, was %d", got, before)
		}
		if err := heal(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("lost responses make franz-go retry", func(t *testing.T) {
		healAfter(t)
		for _, tc := range []struct {
			name       string
			idempotent bool
		}{{"idempotent", true}, {"plain", false}} {
			t.Run(tc.name, func(t *testing.T) {
				var disconnects atomic.Int64
				opts := []kgo.Opt{manual(), kgo.WithHooks(disconnectHook{&disconnects})}
				if !tc.idempotent {
					opts = append(opts, kgo.DisableIdempotentWrite())
				}
				cl := client(t, tg, opts...)
				produce(t, cl, "net", p2, "warm-"+tc.name)
				heal, err := tg.LoseResponses(ctx, []string{"node-2"})
				if err != nil {
					t.Fatal(err)
				}
				value := "lost-" + tc.name
				done := make(chan error, 1)
				before := disconnects.Load()
				go func() {
					done <- cl.ProduceSync(ctx, &kgo.Record{Topic: "net", Partition: p2, Value: []byte(value)}).FirstErr()
				}()
				// Heal only once the broker stored the record and the client lost the connection carrying its
				// response, so the client cannot know the first attempt worked.
				waitFor(t, 20*time.Second, "record stored and its response lost", func() error {
					vals, err := replicaValues(tg, 2, "net", p2)
					if err != nil {
						return err
					}
					if !slices.Contains(vals, value) {
						return fmt.Errorf("%s not stored yet", value)
					}
					if disconnects.Load() == before {
						return fmt.Errorf("the client has not lost its connection yet")
					}
					return nil
				})
				select {
				case err := <-done:
					t.Fatalf("produce finished while every response is lost: %v", err)
				default:
				}
				if err := heal(); err != nil {
					t.Fatal(err)
				}
				if err := <-done; err != nil {
					t.Fatalf("produce after heal: %v", err)
				}
				vals, err := replicaValues(tg, 2, "net", p2)
				if err != nil {
					t.Fatal(err)
				}
				n := count(vals, value)
				t.Logf("%s stored %d time(s)", value, n)
				if tc.idempotent && n != 1 {
					t.Fatalf("idempotent retry stored %s %d times, want once", value, n)
				}
				if !tc.idempotent && n < 2 {
					t.Fatalf("a plain retry of an applied request stored %s %d times, want a duplicate", value, n)
				}
			})
		}
	})

	t.Run("pause stalls the node's clients", func(t *testing.T) {
		healAfter(t)
		c2, c1 := dialNode(t, tg, 2), dialNode(t, tg, 1)
		if err := tg.Pause(ctx, []string{"node-2"}); err != nil {
			t.Fatal(err)
		}
		if err := c2.roundTrip(300 * time.Millisecond); !isTimeout(err) {
			t.Fatalf("request to a paused node: %v, want a timeout", err)
		}
		if err := c1.roundTrip(10 * time.Second); err != nil {
			t.Fatalf("node-1 must still answer: %v", err)
		}
		if err := tg.Resume(ctx, tg.Nodes()); err != nil {
			t.Fatal(err)
		}
		if err := c2.recv(10 * time.Second); err != nil {
			t.Fatalf("the stalled request should be answered after resume: %v", err)
		}
	})

	t.Run("reset connections once", func(t *testing.T) {
		healAfter(t)
		c2 := dialNode(t, tg, 2)
		if err := c2.roundTrip(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := tg.ResetConnections(ctx, []string{"node-2"}); err != nil {
			t.Fatal(err)
		}
		if err := c2.roundTrip(10 * time.Second); err == nil || isTimeout(err) {
			t.Fatalf("reset connection: %v, want a connection error", err)
		}
		if err := dialNode(t, tg, 2).roundTrip(10 * time.Second); err != nil {
			t.Fatalf("a new connection must work: %v", err)
		}
	})

	t.Run("latency delays every link of the node", func(t *testing.T) {
		healAfter(t)
		heal, err := tg.Latency(ctx, []string{"node-2"}, 150*time.Millisecond, 0)
		if err != nil {
			t.Fatal(err)
		}
		c2 := dialNode(t, tg, 2)
		start := time.Now()
		if err := c2.roundTrip(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		// A lower bound only: the delay is injected, so no machine can answer faster.
		if rtt := time.Since(start); rtt < 150*time.Millisecond {
			t.Fatalf("round trip %v under a 150ms latency fault", rtt)
		}
		if err := heal(); err != nil {
			t.Fatal(err)
		}
		if err := tg.HealNetwork(ctx); err != nil {
			t.Fatal(err)
		}
		if len(tg.Net().Active()) != 0 {
			t.Fatalf("faults left after HealNetwork: %v", tg.Net().Active())
		}
	})

	t.Run("a data-plane cut leaves the quorum connected", func(t *testing.T) {
		healAfter(t)
		createTopic(t, tg, "rep", 1, 3, nil)
		l, err := tg.Leader(ctx, "rep", 0)
		if err != nil || l == "" {
			t.Fatalf("leader of rep/0: %q, %v", l, err)
		}
		var others []string
		for _, n := range tg.Nodes() {
			if n != l {
				others = append(others, n)
			}
		}
		cut := func(plane string) []nemesis.Link {
			var links []nemesis.Link
			for _, o := range others {
				links = append(links, nemesis.Link{From: l, To: o, Plane: plane}, nemesis.Link{From: o, To: l, Plane: plane})
			}
			return links
		}
		// Followers cannot fetch, so the write below leaves them behind; the leader still reaches the
		// controller, so it shrinks the ISR to itself and keeps leading.
		heal, err := tg.Partition(ctx, cut(nemesis.PlaneData), nemesis.Drop)
		if err != nil {
			t.Fatal(err)
		}
		produce(t, client(t, tg, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()), "rep", 0, "behind")
		waitFor(t, 20*time.Second, "ISR shrunk to the leader", func() error {
			isr, err := tg.ISR(ctx, "rep", 0)
			now, _ := tg.Leader(ctx, "rep", 0)
			if err != nil || now != l || !slices.Equal(isr, []string{l}) {
				return fmt.Errorf("leader %s, ISR %v (%v)", now, isr, err)
			}
			return nil
		})
		if err := heal(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "rep healthy after the data-plane cut", func() error { return tg.Healthy(ctx, []string{"rep"}) })

		// A full cut isolates the leader's controller too: it is fenced and leadership moves.
		heal, err = tg.Partition(ctx, cut(""), nemesis.Drop)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "leadership moved off the isolated node", func() error {
			if now, err := tg.Leader(ctx, "rep", 0); err != nil || now == l || now == "" {
				return fmt.Errorf("leader %q (%v)", now, err)
			}
			return nil
		})
		if err := heal(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "rep healthy after the full cut", func() error { return tg.Healthy(ctx, []string{"rep"}) })
	})

	if err := tg.Healthy(ctx, []string{"net"}); err != nil {
		t.Fatalf("cluster not healthy after the network faults: %v", err)
	}
}

// disconnectHook counts the client's broken broker connections.
type disconnectHook struct{ n *atomic.Int64 }

func (h disconnectHook) OnBrokerDisconnect(kgo.BrokerMetadata, net.Conn) { h.n.Add(1) }

func count(xs []string, x string) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// tryRoundTrip dials node id and makes one request; the dial's own error counts (a reset partition may
// reset the connection before the handshake completes).
func tryRoundTrip(tg *Target, id int32) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tg.Dial()(ctx, "tcp", tg.Bootstrap()[id-1])
	if err != nil {
		return err
	}
	defer c.Close()
	return (&rawConn{Conn: c}).roundTrip(10 * time.Second)
}
