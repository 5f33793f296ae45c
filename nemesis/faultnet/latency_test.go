package faultnet

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func TestLatencyDelaysAtLeastMeanMinusJitter(t *testing.T) {
	const mean, jitter = 150 * time.Millisecond, 50 * time.Millisecond
	for _, tc := range []struct {
		name     string
		from, to string // the delayed link
		accepted bool   // whether the accepted (wrapped) side is the sender
	}{
		{name: "inbound", from: "node-2", to: "node-1", accepted: false},
		{name: "outbound", from: "node-1", to: "node-2", accepted: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newTestNet(t)
			dialed, accepted := pair(t, n, "node-1", "node-2")
			sender, receiver := dialed, accepted
			if tc.accepted {
				sender, receiver = accepted, dialed
			}
			mustFault(t)(n.Latency(tc.from, tc.to, mean, jitter, newRand(7)))
			const count = 20
			sent := make([]time.Time, count)
			var mu sync.Mutex
			go func() {
				for i := range count {
					mu.Lock()
					sent[i] = time.Now()
					mu.Unlock()
					var msg [8]byte
					binary.BigEndian.PutUint64(msg[:], uint64(i))
					if _, err := sender.Write(msg[:]); err != nil {
						return
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
			receiver.SetReadDeadline(time.Now().Add(patience))
			for i := range count {
				var msg [8]byte
				if _, err := io.ReadFull(receiver, msg[:]); err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				got := time.Now()
				if seq := binary.BigEndian.Uint64(msg[:]); seq != uint64(i) {
					t.Fatalf("message %d arrived as %d: latency reordered the stream", i, seq)
				}
				mu.Lock()
				delay := got.Sub(sent[i])
				mu.Unlock()
				if delay < mean-jitter {
					t.Fatalf("message %d delivered after %s, want at least %s", i, delay, mean-jitter)
				}
			}
		})
	}
}

func TestLatencyKeepsOrderUnderJitterAndFlips(t *testing.T) {
	n := newTestNet(t)
	dialed, accepted := pair(t, n, "node-1", "node-2")
	const size = 4 << 20
	in, out := pattern(3, size), pattern(4, size)
	rng := newRand(11)
	mustFault(t)(n.Latency("node-2", "node-1", 3*time.Millisecond, 3*time.Millisecond, rng))
	mustFault(t)(n.Latency("node-1", "node-2", 3*time.Millisecond, 3*time.Millisecond, newRand(12)))
	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		// Flip latency on and off while the streams flow; each flip must keep both streams intact.
		defer close(flipped)
		on := true
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if on {
				n.HealAll()
			} else {
				n.Latency("node-2", "node-1", 2*time.Millisecond, 2*time.Millisecond, newRand(uint64(100+i)))
				n.Latency("node-1", "node-2", 2*time.Millisecond, 2*time.Millisecond, newRand(uint64(200+i)))
			}
			on = !on
		}
	}()
	inDone := asyncWrite(dialed, in)
	outDone := asyncWrite(accepted, out)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		readExactly(t, dialed, out, "node-2 reading under flipping latency")
	}()
	readExactly(t, accepted, in, "node-1 reading under flipping latency")
	wg.Wait()
	awaitWrite(t, inDone, size, "node-2's write")
	awaitWrite(t, outDone, size, "node-1's write")
	close(stop)
	<-flipped
}

func TestCloseSendsBytesQueuedByLatency(t *testing.T) {
	n := newTestNet(t)
	dialed, accepted := pair(t, n, "node-1", "node-2")
	mustFault(t)(n.Latency("node-1", "node-2", 200*time.Millisecond, 0, newRand(1)))
	if _, err := accepted.Write([]byte("goodbye")); err != nil {
		t.Fatal(err)
	}
	if err := accepted.Close(); err != nil {
		t.Fatal(err)
	}
	readExactly(t, dialed, []byte("goodbye"), "bytes written just before Close")
	dialed.SetReadDeadline(time.Now().Add(patience))
	if _, err := dialed.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the lingering bytes: %v, want EOF", err)
	}
}

func TestLatencyThenPartitionStallsQueuedBytes(t *testing.T) {
	n := newTestNet(t)
	dialed, accepted := pair(t, n, "node-1", "node-2")
	mustFault(t)(n.Latency("node-2", "node-1", 100*time.Millisecond, 0, newRand(1)))
	// Switch the inbound direction to the pump, then cut the link while bytes are in flight.
	go accepted.Read(make([]byte, 0))
	time.Sleep(20 * time.Millisecond)
	if _, err := dialed.Write([]byte("in flight")); err != nil {
		t.Fatal(err)
	}
	id := mustFault(t)(n.Partition(OneWay("node-2", "node-1"), Drop))
	expectSilence(t, accepted, "bytes in flight when a partition began")
	n.Heal(id)
	readExactly(t, accepted, []byte("in flight"), "bytes in flight after heal")
}
