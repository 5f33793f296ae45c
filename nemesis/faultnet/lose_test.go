package faultnet

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// lineServer answers every line "x" with "ok x" and remembers the lines it received.
type lineServer struct {
	mu   sync.Mutex
	seen map[string]bool
}

func serveLines(t *testing.T, ln net.Listener) *lineServer {
	s := &lineServer{seen: map[string]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					s.mu.Lock()
					s.seen[strings.TrimSpace(line)] = true
					s.mu.Unlock()
					if _, err := c.Write([]byte("ok " + line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *lineServer) received(line string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[line]
}

func roundTrip(c net.Conn, line string) (string, error) {
	c.SetDeadline(time.Now().Add(patience))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(got), err
}

func TestLoseResponses(t *testing.T) {
	n := newTestNet(t)
	ln := listen(t, n, "node-1")
	srv := serveLines(t, ln)
	client := dial(t, n, Client, ln.Addr().String())
	peer := dial(t, n, "node-2", ln.Addr().String())
	if got, err := roundTrip(client, "before"); err != nil || got != "ok before" {
		t.Fatalf("round trip before the fault: %q, %v", got, err)
	}

	id := mustFault(t)(n.LoseResponses("node-1", 0))
	got, err := roundTrip(client, "applied")
	if got != "" || !isBroken(err) {
		t.Fatalf("client under lose-responses got %q, %v; want no response and a broken connection", got, err)
	}
	if !srv.received("applied") {
		t.Fatal("the server never received the request whose response was lost")
	}
	// A fresh client connection loses its first response too; node-to-node traffic is untouched.
	again := dial(t, n, Client, ln.Addr().String())
	if got, err := roundTrip(again, "retry"); got != "" || !isBroken(err) {
		t.Fatalf("retry under lose-responses got %q, %v", got, err)
	}
	if got, err := roundTrip(peer, "replica"); err != nil || got != "ok replica" {
		t.Fatalf("node-2 under node-1's lose-responses: %q, %v", got, err)
	}

	n.Heal(id)
	healed := dial(t, n, Client, ln.Addr().String())
	if got, err := roundTrip(healed, "after"); err != nil || got != "ok after" {
		t.Fatalf("round trip after heal: %q, %v", got, err)
	}

	// With a duration the fault heals itself.
	mustFault(t)(n.LoseResponses("node-1", 200*time.Millisecond))
	if len(n.Active()) != 1 || n.Active()[0].Until.IsZero() {
		t.Fatalf("timed lose-responses described as %v", n.Active())
	}
	waitUntil(t, "the timed fault to expire", func() bool { return len(n.Active()) == 0 })
	later := dial(t, n, Client, ln.Addr().String())
	if got, err := roundTrip(later, "expired"); err != nil || got != "ok expired" {
		t.Fatalf("round trip after expiry: %q, %v", got, err)
	}
}

// TestLoseResponsesWithFranzGo drives a real franz-go client against a tiny Kafka-protocol server (ApiVersions
// and Metadata only) behind the layer: under lose-responses the server receives Metadata requests, the client
// gets no response but a broken connection, and after heal the client recovers on its own.
func TestLoseResponsesWithFranzGo(t *testing.T) {
	n := newTestNet(t)
	ln := listen(t, n, "node-1")
	srv := serveKafka(ln)
	cl, err := kgo.NewClient(kgo.SeedBrokers(ln.Addr().String()), kgo.RetryTimeout(patience))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("ping before the fault: %v", err)
	}

	before := srv.metadata.Load()
	id := mustFault(t)(n.LoseResponses("node-1", 0))
	err = cl.Ping(ctx)
	if err == nil {
		t.Fatal("ping succeeded although every response is lost")
	}
	t.Logf("franz-go under lose-responses: %v", err)
	if !isBroken(err) {
		t.Fatalf("ping failed with %v; want a broken connection", err)
	}
	if srv.metadata.Load() == before {
		t.Fatalf("the server received no Metadata request under lose-responses (ping error: %v)", err)
	}

	n.Heal(id)
	waitUntil(t, "franz-go to recover after heal", func() bool { return cl.Ping(ctx) == nil })
}

// kafkaServer is a tiny Kafka-protocol server: ApiVersions and Metadata (one broker, no topics).
type kafkaServer struct {
	addr     *net.TCPAddr
	metadata atomic.Int64
}

func serveKafka(ln net.Listener) *kafkaServer {
	s := &kafkaServer{addr: ln.Addr().(*net.TCPAddr)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *kafkaServer) serve(c net.Conn) {
	defer c.Close()
	for {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		if n < 10 || n > 1<<20 {
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(c, frame); err != nil {
			return
		}
		out, err := s.answer(frame)
		if err != nil {
			return
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// answer decodes one request frame (header v1 or v2) and encodes the response frame.
func (s *kafkaServer) answer(frame []byte) ([]byte, error) {
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := binary.BigEndian.Uint32(frame[4:])
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil, fmt.Errorf("unknown key %d", key)
	}
	req.SetVersion(version)
	off := 8
	if idLen := int16(binary.BigEndian.Uint16(frame[off:])); idLen > 0 {
		off += int(idLen)
	}
	off += 2
	if req.IsFlexible() {
		tags, k := binary.Uvarint(frame[off:])
		if k <= 0 {
			return nil, errors.New("bad header tags")
		}
		off += k
		for range tags {
			_, k1 := binary.Uvarint(frame[off:])
			size, k2 := binary.Uvarint(frame[off+max(k1, 0):])
			if k1 <= 0 || k2 <= 0 {
				return nil, errors.New("bad header tag")
			}
			off += k1 + k2 + int(size)
		}
	}
	if off > len(frame) {
		return nil, errors.New("short frame")
	}
	if err := req.ReadFrom(frame[off:]); err != nil {
		return nil, fmt.Errorf("decode key %d v%d: %w", key, version, err)
	}
	var resp kmsg.Response
	switch req.(type) {
	case *kmsg.ApiVersionsRequest:
		r := kmsg.NewPtrApiVersionsResponse()
		for _, k := range []kmsg.Request{kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrMetadataRequest()} {
			r.ApiKeys = append(r.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k.Key(), MaxVersion: k.MaxVersion()})
		}
		resp = r
	case *kmsg.MetadataRequest:
		s.metadata.Add(1)
		r := kmsg.NewPtrMetadataResponse()
		r.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: s.addr.IP.String(), Port: int32(s.addr.Port)}}
		r.ControllerID = 1
		resp = r
	default:
		return nil, fmt.Errorf("unsupported key %d", key)
	}
	resp.SetVersion(version)
	out := binary.BigEndian.AppendUint32(nil, 0)
	out = binary.BigEndian.AppendUint32(out, corr)
	if resp.IsFlexible() && key != 18 { // ApiVersions answers with header v0 even when flexible
		out = append(out, 0)
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out, nil
}
