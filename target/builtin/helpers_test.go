package builtin

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/kafkatrial/kafkatrial/scenarios"
)

// testLogger logs to stderr when KAFKATRIAL_TEST_LOG is set, else discards (broker.log files still fill).
func testLogger() *slog.Logger {
	if os.Getenv("KAFKATRIAL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startTarget starts a 3-node built-in target under a temp dir, closed at cleanup; it skips when the
// machine cannot bind the per-node loopback IPs.
func startTarget(t *testing.T, settings map[string]string) *Target {
	t.Helper()
	if err := CheckLoopback(3); err != nil {
		t.Skipf("the built-in target needs loopback IPs 127.0.0.1, 127.0.0.11-13 and 127.0.0.21-23: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tg, err := Start(ctx, scenarios.TargetConfig{Nodes: 3, Dir: t.TempDir(), Seed: 7, Broker: settings, Logger: testLogger()})
	if err != nil {
		t.Fatalf("starting the target: %v", err)
	}
	t.Cleanup(func() {
		if err := tg.Close(context.Background()); err != nil {
			t.Errorf("closing the target: %v", err)
		}
	})
	return tg
}

// client returns a franz-go client of the target dialing through Target.Dial, closed at cleanup.
func client(t *testing.T, tg *Target, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tg.Bootstrap()...), kgo.Dialer(tg.Dial()),
		kgo.RetryTimeout(30 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates a topic through kadm and waits until the target calls it healthy.
func createTopic(t *testing.T, tg *Target, name string, partitions int32, rf int16, configs map[string]*string) {
	t.Helper()
	ctx := testCtx(t)
	adm := kadm.NewClient(client(t, tg))
	resp, err := adm.CreateTopic(ctx, partitions, rf, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("creating topic %s: %v / %v", name, err, resp.Err)
	}
	waitFor(t, 20*time.Second, "topic "+name+" healthy", func() error { return tg.Healthy(ctx, []string{name}) })
}

// waitFor polls cond every 20ms until it returns nil or d passes, then fails with cond's last error.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	if err := poll(d, cond); err != nil {
		t.Fatalf("%s: not within %v: %v", what, d, err)
	}
}

func poll(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// partitionLedBy returns a partition of topic led by node id (rf=1 topics spread one partition per node).
func partitionLedBy(t *testing.T, tg *Target, topic string, id int32) int32 {
	t.Helper()
	tp := tg.Cluster().Image().Topics[topic]
	for _, p := range tp.Partitions {
		if p.Leader == id {
			return p.Partition
		}
	}
	t.Fatalf("no partition of %s is led by node %d: %+v", topic, id, tp.Partitions)
	return -1
}

// produce sends values to topic/partition synchronously, failing the test on any error.
func produce(t *testing.T, cl *kgo.Client, topic string, partition int32, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, v := range values {
		r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte(v)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("producing %s to %s-%d: %v", v, topic, partition, err)
		}
	}
}

// manual is the client option that sends each record to the partition it names.
func manual() kgo.Opt { return kgo.RecordPartitioner(kgo.ManualPartitioner()) }

// replicaValues reads node id's replica of topic/partition and returns its values in offset order.
func replicaValues(tg *Target, id int32, topic string, partition int32) ([]string, error) {
	var out []string
	err := tg.Cluster().ReadReplica(id, topic, partition, func(batch []byte, h storage.BatchHeader) error {
		recs, _, err := decodeRecords(batch)
		if err != nil {
			return err
		}
		for _, r := range recs {
			out = append(out, string(r.Value))
		}
		return nil
	})
	return out, err
}

func logEnd(t *testing.T, tg *Target, id int32, topic string, partition int32) int64 {
	t.Helper()
	st, err := tg.Cluster().Replica(id, topic, partition)
	if err != nil {
		t.Fatal(err)
	}
	return st.LogEndOffset
}

// rawConn is one client connection to a node, speaking just enough Kafka (ApiVersions v0) to tell whether
// a request got through and a response came back.
type rawConn struct {
	net.Conn
	corr int32
}

func dialNode(t *testing.T, tg *Target, id int32) *rawConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tg.Dial()(ctx, "tcp", tg.Bootstrap()[id-1])
	if err != nil {
		t.Fatalf("dialing node %d: %v", id, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c}
}

// send writes one ApiVersions v0 request.
func (c *rawConn) send() error {
	c.corr++
	req := kmsg.NewApiVersionsRequest()
	var frame []byte
	frame = binary.BigEndian.AppendUint32(frame, 0) // size, patched below
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, 0) // version 0
	frame = binary.BigEndian.AppendUint32(frame, uint32(c.corr))
	frame = binary.BigEndian.AppendUint16(frame, 4)
	frame = append(frame, "test"...)
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if err := c.SetWriteDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	_, err := c.Write(frame)
	return err
}

// recv waits up to d for the response to the last request and checks its correlation id.
func (c *rawConn) recv(d time.Duration) error {
	if err := c.SetReadDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 1<<20 {
		return fmt.Errorf("response size %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(body)); got != c.corr {
		return fmt.Errorf("correlation id %d, want %d", got, c.corr)
	}
	return nil
}

// roundTrip sends a request and waits up to d for its response.
func (c *rawConn) roundTrip(d time.Duration) error {
	if err := c.send(); err != nil {
		return err
	}
	return c.recv(d)
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
