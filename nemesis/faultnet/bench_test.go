package faultnet

import (
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkThroughput streams 64 KiB writes over one loopback connection, node-2 -> node-1, and compares a
// plain socket pair with the same pair through the layer: "in" has the wrapped side reading (Read path),
// "out" has it writing (Write path). "unrelated-fault" keeps a fault on other nodes active, so every call
// takes the rules lock instead of the fault-free fast path. Compare MB/s within one run:
//
//	go test -run '^$' -bench Throughput -benchtime 2s ./nemesis/faultnet/
func BenchmarkThroughput(b *testing.B) {
	for _, dir := range []string{"in", "out"} {
		for _, setup := range []string{"plain", "faultnet", "faultnet-unrelated-fault"} {
			b.Run(dir+"/"+setup, func(b *testing.B) {
				n := newTestNet(b)
				var ln net.Listener
				var err error
				if setup == "plain" {
					ln, err = net.Listen("tcp4", "127.0.0.11:0")
				} else {
					ln, err = n.Listen("node-1")("tcp", ":0")
				}
				if err != nil {
					b.Fatal(err)
				}
				defer ln.Close()
				if setup == "faultnet-unrelated-fault" {
					if _, err := n.Partition(OneWay("node-3", Client), Drop); err != nil {
						b.Fatal(err)
					}
				}
				accepted := make(chan net.Conn, 1)
				go func() {
					c, err := ln.Accept()
					if err != nil {
						close(accepted)
						return
					}
					accepted <- c
				}()
				dialed := dial(b, n, "node-2", ln.Addr().String())
				server, ok := <-accepted
				if !ok {
					b.Fatal("accept failed")
				}
				defer server.Close()
				src, dst := dialed, server
				if dir == "out" {
					src, dst = server, dialed
				}
				benchStream(b, src, dst)
			})
		}
	}
}

// benchStream writes b.N chunks on src and reads them all on dst with explicit Read calls (no splice
// shortcut for either setup).
func benchStream(b *testing.B, src, dst net.Conn) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	total := int64(b.N) * chunk
	done := make(chan error, 1)
	go func() {
		rbuf := make([]byte, chunk)
		var got int64
		for got < total {
			k, err := dst.Read(rbuf)
			got += int64(k)
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	b.SetBytes(chunk)
	b.ResetTimer()
	for range b.N {
		if _, err := src.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil && err != io.EOF {
		b.Fatal(err)
	}
}

// BenchmarkOverheadRatio alternates 4 MiB blocks over a plain pair and a pair through the layer and reports
// the time ratio faultnet/plain, so that the noise of a shared machine hits both sides alike; 1.0 means no
// overhead. "no-fault" is the fast path; "unrelated-fault" keeps a partition between other nodes active, so
// every call consults the rules under the lock.
//
//	go test -run '^$' -bench OverheadRatio -benchtime 3s ./nemesis/faultnet/
func BenchmarkOverheadRatio(b *testing.B) {
	b.Run("no-fault", func(b *testing.B) { overheadRatio(b, false) })
	b.Run("unrelated-fault", func(b *testing.B) { overheadRatio(b, true) })
}

func overheadRatio(b *testing.B, withFault bool) {
	n := newTestNet(b)
	if withFault {
		if _, err := n.Partition(Cut([]string{"node-3"}, []string{Client}), Drop); err != nil {
			b.Fatal(err)
		}
	}
	plainLn, err := net.Listen("tcp4", "127.0.0.11:0")
	if err != nil {
		b.Fatal(err)
	}
	defer plainLn.Close()
	layerLn := listen(b, n, "node-1")
	type pipe struct {
		src    net.Conn
		blocks chan struct{}
		spent  time.Duration
	}
	open := func(ln net.Listener) *pipe {
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}()
		src := dial(b, n, "node-2", ln.Addr().String())
		dst, ok := <-accepted
		if !ok {
			b.Fatal("accept failed")
		}
		b.Cleanup(func() { dst.Close() })
		p := &pipe{src: src, blocks: make(chan struct{}, 1)}
		go func() {
			buf := make([]byte, 64<<10)
			var got int
			for {
				k, err := dst.Read(buf)
				got += k
				for got >= blockBytes {
					got -= blockBytes
					p.blocks <- struct{}{}
				}
				if err != nil {
					return
				}
			}
		}()
		return p
	}
	plain, layer := open(plainLn), open(layerLn)
	buf := make([]byte, 64<<10)
	b.SetBytes(2 * blockBytes)
	b.ResetTimer()
	for i := range b.N {
		order := []*pipe{plain, layer}
		if i%2 == 1 {
			order[0], order[1] = layer, plain
		}
		for _, p := range order {
			start := time.Now()
			for range blockBytes / len(buf) {
				if _, err := p.src.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			<-p.blocks
			p.spent += time.Since(start)
		}
	}
	b.ReportMetric(float64(layer.spent)/float64(plain.spent), "faultnet/plain")
	b.ReportMetric(float64(b.N)*blockBytes/plain.spent.Seconds()/1e6, "plain-MB/s")
	b.ReportMetric(float64(b.N)*blockBytes/layer.spent.Seconds()/1e6, "faultnet-MB/s")
}

const blockBytes = 4 << 20
