package faultnet

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer echoes every accepted connection through the layer and closes them all on stop.
type echoServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startEcho(ln net.Listener) *echoServer {
	s := &echoServer{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return s
}

func (s *echoServer) stop() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// streamByte is byte i of connection seed's stream: any loss, duplication or reordering changes what is read.
func streamByte(seed uint64, i int) byte { return byte(uint64(i)*31 + seed*17 + uint64(i>>8)) }

// TestStressRandomFaults runs many echo connections between every pair of nodes and clients while faults of
// every kind are started and healed at random. Each connection checks that every byte it gets back is the
// byte it sent at that position; connections may break or time out, never corrupt. After HealAll every
// worker must complete a round trip, and once everything is closed no goroutine may be left behind.
func TestStressRandomFaults(t *testing.T) {
	n := newTestNet(t)
	before := runtime.NumGoroutine()

	nodes := []string{"node-1", "node-2", "node-3"}
	addrs := map[string]string{}
	var servers []*echoServer
	for _, node := range nodes {
		ln, err := n.Listen(node)("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[node] = ln.Addr().String()
		servers = append(servers, startEcho(ln))
	}

	var stopping atomic.Bool
	var verified, broken atomic.Int64
	var workers sync.WaitGroup
	finalOK := make(chan int, 64)
	const workerCount = 24
	for w := range workerCount {
		workers.Add(1)
		go func() {
			defer workers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			sources := append([]string{Client}, nodes...)
			from := sources[w%len(sources)]
			to := nodes[(w/len(sources)+1)%len(nodes)]
			if to == from {
				to = nodes[(w+1)%len(nodes)]
			}
			for round := 0; ; round++ {
				final := stopping.Load()
				ok := stressConn(t, n, from, addrs[to], uint64(w*100000+round), rng, final, &verified)
				if final {
					if ok {
						finalOK <- w
					} else {
						t.Errorf("worker %d (%s->%s): no clean round trip after HealAll", w, from, to)
					}
					return
				}
				if !ok {
					broken.Add(1)
				}
			}
		}()
	}

	nemesisRng := rand.New(rand.NewPCG(2026, 4))
	end := time.Now().Add(2 * time.Second)
	var ids []FaultID
	for time.Now().Before(end) {
		time.Sleep(time.Duration(10+nemesisRng.IntN(40)) * time.Millisecond)
		a, b := nodes[nemesisRng.IntN(3)], nodes[nemesisRng.IntN(3)]
		var id FaultID
		var err error
		switch nemesisRng.IntN(9) {
		case 0:
			id, err = n.Partition(n.Isolate(a), Drop)
		case 1:
			if a != b {
				id, err = n.Partition(OneWay(a, b), Drop)
			}
		case 2:
			if a != b {
				id, err = n.Partition(Cut([]string{a}, []string{b, Client}), Reset)
			}
		case 3:
			id, err = n.Pause(a)
		case 4:
			id, err = n.LatencyLinks(n.Isolate(a), 5*time.Millisecond, 5*time.Millisecond,
				rand.New(rand.NewPCG(nemesisRng.Uint64(), 1)))
		case 5:
			id, err = n.LoseResponses(a, time.Duration(nemesisRng.IntN(100))*time.Millisecond)
		case 6:
			n.ResetConns(a)
		case 7, 8:
			if len(ids) > 0 {
				k := nemesisRng.IntN(len(ids))
				n.Heal(ids[k]) // may already have expired
				ids = append(ids[:k], ids[k+1:]...)
			}
		}
		if err != nil {
			t.Fatalf("starting a random fault: %v", err)
		}
		if id != 0 {
			ids = append(ids, id)
		}
	}
	n.HealAll() // before the final rounds start, so that each of them runs on a healed network
	stopping.Store(true)
	workers.Wait()
	close(finalOK)
	if got := len(finalOK); got != workerCount {
		t.Errorf("%d of %d workers completed a round trip after HealAll", got, workerCount)
	}
	if verified.Load() == 0 {
		t.Fatal("no byte was verified: the stress test exercised nothing")
	}
	t.Logf("verified %d echoed bytes; %d connections broke or timed out under faults", verified.Load(), broken.Load())

	for _, s := range servers {
		s.stop()
	}
	deadline := time.Now().Add(30 * time.Second) // the linger of latency queues is bounded by lingerLimit
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(),
				buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.mu.Lock()
	live := len(n.conns)
	n.mu.Unlock()
	if live != 0 {
		t.Errorf("%d connections still registered after every one closed", live)
	}
}

// stressConn runs one connection's worth of echo round trips. It reports false when the connection broke or
// timed out (expected under faults); a corrupted echo is a test error.
func stressConn(t *testing.T, n *Net, from, addr string, seed uint64, rng *rand.Rand, final bool, verified *atomic.Int64) bool {
	opTimeout := 300 * time.Millisecond
	trips := 1 + rng.IntN(20)
	if final {
		opTimeout, trips = patience, 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
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
		return false
	}
	defer c.Close()
	sent, got := 0, 0
	buf := make([]byte, 16<<10)
	for range trips {
		size := 1 + rng.IntN(len(buf))
		for i := range size {
			buf[i] = streamByte(seed, sent+i)
		}
		c.SetDeadline(time.Now().Add(opTimeout))
		k, err := c.Write(buf[:size])
		sent += k
		if err != nil {
			return false
		}
		for got < sent {
			k, err := c.Read(buf[:min(len(buf), sent-got)])
			for i := range k {
				if buf[i] != streamByte(seed, got+i) {
					t.Errorf("%s->%s: echoed byte %d is %d, sent %d: the stream was corrupted", from, addr, got+i,
						buf[i], streamByte(seed, got+i))
					return false
				}
			}
			got += k
			verified.Add(int64(k))
			if err != nil {
				return false
			}
		}
	}
	return true
}

func ExampleNet() {
	n := New(nil)
	n.AddNode("node-1", "127.0.0.11")
	n.AddNode("node-2", "127.0.0.12")
	id, _ := n.Partition(OneWay("node-1", "node-2"), Drop)
	fmt.Println(n.Blocked("node-1", "node-2"), n.Blocked("node-2", "node-1"))
	n.Heal(id)
	fmt.Println(n.Blocked("node-1", "node-2"))
	// Output:
	// true false
	// false
}
