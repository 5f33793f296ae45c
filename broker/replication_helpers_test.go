package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cutNet is a test network layer over real loopback TCP: it can cut broker traffic between two nodes (replica
// fetches; dials by a node to another node's client address) both ways, closing what is open and refusing
// new dials, while controller traffic (to voter addresses) always passes.
type cutNet struct {
	mu      sync.Mutex
	clients map[string]int32 // client address -> node id
	cut     map[[2]int32]bool
	conns   map[[2]int32]map[net.Conn]struct{}
}

func newCutNet() *cutNet {
	return &cutNet{clients: map[string]int32{}, cut: map[[2]int32]bool{}, conns: map[[2]int32]map[net.Conn]struct{}{}}
}

// hooks are node id's network hooks for ClusterConfig.Net.
func (cn *cutNet) hooks(id int32) (func(string, string) (net.Listener, error), func(context.Context, string, string) (net.Conn, error)) {
	var d net.Dialer
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		cn.mu.Lock()
		dst, isClient := cn.clients[addr]
		pair := [2]int32{id, dst}
		if isClient && cn.cut[pair] {
			cn.mu.Unlock()
			return nil, fmt.Errorf("test network: %d -> %d is cut", id, dst)
		}
		cn.mu.Unlock()
		c, err := d.DialContext(ctx, network, addr)
		if err != nil || !isClient {
			return c, err
		}
		cn.mu.Lock()
		defer cn.mu.Unlock()
		if cn.cut[pair] {
			c.Close()
			return nil, fmt.Errorf("test network: %d -> %d is cut", id, dst)
		}
		if cn.conns[pair] == nil {
			cn.conns[pair] = map[net.Conn]struct{}{}
		}
		cn.conns[pair][c] = struct{}{}
		return c, nil
	}
	return nil, dial
}

// learn records the cluster's client addresses (known once it started).
func (cn *cutNet) learn(c *Cluster) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	for i, addr := range c.Bootstrap() {
		cn.clients[addr] = c.IDs()[i]
	}
}

// cutOff cuts broker traffic between a and b both ways and closes their open connections.
func (cn *cutNet) cutOff(a, b int32) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	for _, pair := range [][2]int32{{a, b}, {b, a}} {
		cn.cut[pair] = true
		for c := range cn.conns[pair] {
			c.Close()
		}
		delete(cn.conns, pair)
	}
}

// heal lets every pair talk again.
func (cn *cutNet) heal() {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	clear(cn.cut)
}

// repCluster is a replicated test cluster with its network layer.
type repCluster struct {
	t   *testing.T
	c   *Cluster
	net *cutNet
	cl  *kgo.Client
	adm *kadm.Client
}

// startRepCluster starts 3 nodes whose broker traffic runs over a cutNet; mutate adjusts the timing.
func startRepCluster(t *testing.T, mutate func(*Timing)) *repCluster {
	t.Helper()
	cn := newCutNet()
	var timing Timing
	if mutate != nil {
		mutate(&timing)
	}
	c, err := StartCluster(ClusterConfig{Nodes: 3, Dir: t.TempDir(), Logger: testLogger(), Timing: timing, Net: cn.hooks})
	if err != nil {
		t.Fatalf("StartCluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	cn.learn(c)
	rc := &repCluster{t: t, c: c, net: cn}
	rc.cl = rc.client()
	rc.adm = kadm.NewClient(rc.cl)
	return rc
}

// client returns a franz-go client of the cluster, closed at cleanup.
func (rc *repCluster) client(opts ...kgo.Opt) *kgo.Client {
	rc.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(rc.c.Bootstrap()...), kgo.RetryTimeout(60 * time.Second),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.MetadataMinAge(50 * time.Millisecond)}, opts...)...)
	if err != nil {
		rc.t.Fatal(err)
	}
	rc.t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a one-partition rf=3 topic and waits until every replica follows its leader.
func (rc *repCluster) createTopic(name string, configs map[string]string) {
	rc.t.Helper()
	cfg := map[string]*string{}
	for k, v := range configs {
		cfg[k] = &v
	}
	resp, err := rc.adm.CreateTopic(testCtx(rc.t), 1, 3, cfg, name)
	if err != nil || resp.Err != nil {
		rc.t.Fatalf("creating topic %s: %v / %v", name, err, resp.Err)
	}
	rc.waitISR(name, 3)
}

// leader is the partition's leader in the freshest image (-1: none).
func (rc *repCluster) leader(topic string) int32 {
	im := rc.c.Image()
	if im == nil || im.Topics[topic] == nil {
		return -1
	}
	return im.Topics[topic].Partitions[0].Leader
}

// waitLeader waits until a running node other than not leads the partition, and returns it.
func (rc *repCluster) waitLeader(topic string, not int32) int32 {
	rc.t.Helper()
	var l int32
	repWait(rc.t, 60*time.Second, "a new leader of "+topic, func() error {
		l = rc.leader(topic)
		if l < 0 || l == not || !rc.c.Running(l) {
			return fmt.Errorf("leader %d", l)
		}
		if st, ok := rc.c.Node(l).PartitionState(topic, 0); !ok || !st.IsLeader {
			return fmt.Errorf("node %d does not act as leader yet", l)
		}
		return nil
	})
	return l
}

// waitISR waits until the image's ISR has size members.
func (rc *repCluster) waitISR(topic string, size int) []int32 {
	rc.t.Helper()
	var isr []int32
	repWait(rc.t, 60*time.Second, fmt.Sprintf("ISR of %s at %d members", topic, size), func() error {
		im := rc.c.Image()
		if im == nil || im.Topics[topic] == nil {
			return errors.New("no topic")
		}
		isr = im.Topics[topic].Partitions[0].ISR
		if len(isr) != size {
			return fmt.Errorf("ISR %v", isr)
		}
		return nil
	})
	return isr
}

// others returns the node ids other than id.
func (rc *repCluster) others(id int32) []int32 {
	return slices.DeleteFunc(rc.c.IDs(), func(x int32) bool { return x == id })
}

// produce sends values prefix-0..prefix-(n-1) through cl and returns the acknowledged ones and the errors.
func produce(t *testing.T, cl *kgo.Client, topic, prefix string, n int) (acked []string, errs []error) {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	ctx := testCtx(t)
	for i := range n {
		wg.Add(1)
		r := &kgo.Record{Topic: topic, Partition: 0, Value: fmt.Appendf(nil, "%s-%d", prefix, i)}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			acked = append(acked, string(r.Value))
		})
	}
	wg.Wait()
	return acked, errs
}

// mustProduce produces and fails on any error.
func mustProduce(t *testing.T, cl *kgo.Client, topic, prefix string, n int) []string {
	t.Helper()
	acked, errs := produce(t, cl, topic, prefix, n)
	if len(errs) > 0 {
		t.Fatalf("producing %s: %d errors, first %v", prefix, len(errs), errs[0])
	}
	return acked
}

// finalRead reads the partition from the start to its high watermark through a consumer.
func (rc *repCluster) finalRead(topic string) []string {
	rc.t.Helper()
	ctx := testCtx(rc.t)
	var end int64
	repWait(rc.t, 60*time.Second, "list end offsets", func() error {
		ends, err := rc.adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return err
		}
		o, _ := ends.Lookup(topic, 0)
		if o.Err != nil {
			return o.Err
		}
		end = o.Offset
		return nil
	})
	if end == 0 {
		return nil
	}
	cl := rc.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	var out []string
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			rc.t.Fatalf("final read: %d records before timeout, want up to offset %d", len(out), end)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, string(r.Value))
			done = done || r.Offset >= end-1
		})
		if done {
			return out
		}
	}
}

// replicaBytes is node id's whole log of the partition.
func (rc *repCluster) replicaBytes(id int32, topic string) []byte {
	rc.t.Helper()
	var b []byte
	err := rc.c.ReadReplica(id, topic, 0, func(batch []byte, _ storage.BatchHeader) error {
		b = append(b, batch...)
		return nil
	})
	if err != nil {
		rc.t.Fatalf("reading node %d's replica: %v", id, err)
	}
	return b
}

// waitConverged waits until every running replica has the leader's log end and high watermark, with the high
// watermark at the log end, and then checks their logs are byte-identical.
func (rc *repCluster) waitConverged(topic string) {
	rc.t.Helper()
	repWait(rc.t, 60*time.Second, "replicas converged", func() error {
		l := rc.leader(topic)
		if l < 0 || !rc.c.Running(l) {
			return fmt.Errorf("leader %d", l)
		}
		ls, ok := rc.c.Node(l).PartitionState(topic, 0)
		if !ok || ls.HighWatermark != ls.LogEndOffset {
			return fmt.Errorf("leader %d state %+v", l, ls)
		}
		for _, id := range rc.c.IDs() {
			n := rc.c.Node(id)
			if n == nil {
				return fmt.Errorf("node %d down", id)
			}
			st, ok := n.PartitionState(topic, 0)
			if !ok || st.LogEndOffset != ls.LogEndOffset || st.HighWatermark != ls.HighWatermark {
				return fmt.Errorf("node %d at %+v, leader %d at %+v", id, st, l, ls)
			}
		}
		return nil
	})
	var first []byte
	for i, id := range rc.c.IDs() {
		b := rc.replicaBytes(id, topic)
		if i == 0 {
			first = b
			continue
		}
		if !bytes.Equal(b, first) {
			rc.t.Fatalf("node %d's log (%d bytes) differs from node %d's (%d bytes)", id, len(b), rc.c.IDs()[0], len(first))
		}
	}
}

// missing lists the values of want absent from got.
func missing(want, got []string) []string {
	have := map[string]bool{}
	for _, v := range got {
		have[v] = true
	}
	var out []string
	for _, v := range want {
		if !have[v] {
			out = append(out, v)
		}
	}
	return out
}

// repWait polls cond every 20ms until it returns nil or d passes, then fails with cond's last error.
func repWait(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
