package broker

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/broker/storage"
)

// groupWait bounds every wait in the group tests; generous, since the machine may be loaded.
const groupWait = 90 * time.Second

// startGroupTestNode starts a single node on loopback over disk.
func startGroupTestNode(t *testing.T, disk *storage.Disk) *Node {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	n, err := NewNode(Config{NodeID: 1, Logger: logger}, disk)
	if err != nil {
		t.Fatalf("NewNode: %v", err)
	}
	if err := n.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return n
}

// testLogWriter sends node logs to t.Log (only with -v).
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func newGroupTestClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	return cl
}

// produceEach writes n records to every partition of topic, values "p<partition>-<i>", and waits for acks.
func produceEach(t *testing.T, ctx context.Context, addr, topic string, partitions int32, from, n int) {
	t.Helper()
	cl := newGroupTestClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	var recs []*kgo.Record
	for p := range partitions {
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: fmt.Appendf(nil, "p%d-%d", p, i)})
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// memberState is what one group member saw: its current partitions and every record it polled.
type memberState struct {
	mu       sync.Mutex
	owned    map[int32]bool
	assigned int // OnPartitionsAssigned calls
	records  []*kgo.Record
}

func (m *memberState) opts() []kgo.Opt {
	change := func(parts map[string][]int32, add bool) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, ps := range parts {
			for _, p := range ps {
				if add {
					m.owned[p] = true
				} else {
					delete(m.owned, p)
				}
			}
		}
	}
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
			change(parts, true)
			m.mu.Lock()
			m.assigned++
			m.mu.Unlock()
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) { change(parts, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) { change(parts, false) }),
	}
}

func (m *memberState) ownedSorted() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.owned))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(groupWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", groupWait, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGroupFranzThreeMembersCommitAndResumeAfterRestart: three kgo group members split a 6-partition topic
// two partitions each, consume and commit everything; after a clean broker restart on the same disk the
// committed offsets are still there (kadm) and a new member resumes exactly at them.
func TestGroupFranzThreeMembersCommitAndResumeAfterRestart(t *testing.T) {
	const (
		topic      = "orders"
		group      = "g-franz"
		partitions = 6
		perPart    = 50
	)
	ctx, cancel := context.WithTimeout(context.Background(), 4*groupWait)
	defer cancel()
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	node := startGroupTestNode(t, disk)
	defer func() { node.Close() }()

	admCl := newGroupTestClient(t, node.Addr())
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}

	members := make([]*memberState, 3)
	clients := make([]*kgo.Client, 3)
	for i := range members {
		members[i] = &memberState{owned: map[int32]bool{}}
		clients[i] = newGroupTestClient(t, node.Addr(), append(members[i].opts(),
			kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))...)
	}
	closeClients := func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Close()
			}
		}
		clients = nil
	}
	defer closeClients()

	// Every member polls in the background, recording what it gets.
	pollCtx, stopPolling := context.WithCancel(ctx)
	var polling sync.WaitGroup
	for i, cl := range clients {
		polling.Go(func() {
			for pollCtx.Err() == nil {
				fs := cl.PollFetches(pollCtx)
				fs.EachRecord(func(r *kgo.Record) {
					members[i].mu.Lock()
					members[i].records = append(members[i].records, r)
					members[i].mu.Unlock()
				})
			}
		})
	}
	waitFor(t, "each member to own 2 partitions", func() bool {
		seen := map[int32]bool{}
		for _, m := range members {
			owned := m.ownedSorted()
			if len(owned) != 2 {
				return false
			}
			for _, p := range owned {
				seen[p] = true
			}
		}
		return len(seen) == partitions
	})
	split := make([][]int32, len(members))
	for i, m := range members {
		split[i] = m.ownedSorted()
		if m.assigned == 0 {
			t.Fatalf("member %d: OnPartitionsAssigned never called", i)
		}
	}
	t.Logf("assignment: %v", split)

	produceEach(t, ctx, node.Addr(), topic, partitions, 0, perPart)
	distinct := func() int {
		seen := map[[2]int64]bool{}
		for _, m := range members {
			m.mu.Lock()
			for _, r := range m.records {
				seen[[2]int64{int64(r.Partition), r.Offset}] = true
			}
			m.mu.Unlock()
		}
		return len(seen)
	}
	waitFor(t, "all records consumed", func() bool { return distinct() == partitions*perPart })
	stopPolling()
	polling.Wait()
	for i, m := range members {
		for _, r := range m.records {
			if !slices.Contains(split[i], r.Partition) {
				t.Fatalf("member %d polled partition %d it does not own (%v)", i, r.Partition, split[i])
			}
		}
	}
	for i, cl := range clients {
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("member %d commit: %v", i, err)
		}
	}
	assertCommitted(t, ctx, adm, group, topic, partitions, perPart)
	closeClients() // members leave the group
	admCl.Close()

	// Clean restart on the same disk.
	if err := node.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	node = startGroupTestNode(t, disk)
	admCl = newGroupTestClient(t, node.Addr())
	defer admCl.Close()
	adm = kadm.NewClient(admCl)
	assertCommitted(t, ctx, adm, group, topic, partitions, perPart)

	produceEach(t, ctx, node.Addr(), topic, partitions, perPart, 10)
	cl := newGroupTestClient(t, node.Addr(), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	first := map[int32]int64{}
	got := 0
	for got < partitions*10 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("resumed member got %d of %d records before the deadline", got, partitions*10)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch error %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < perPart {
				t.Fatalf("resumed member re-read partition %d offset %d, below the committed %d", r.Partition, r.Offset, perPart)
			}
			if _, ok := first[r.Partition]; !ok {
				first[r.Partition] = r.Offset
			}
			got++
		})
	}
	for p := range int32(partitions) {
		if first[p] != perPart {
			t.Fatalf("partition %d resumed at %d, want %d", p, first[p], perPart)
		}
	}
}

// assertCommitted checks, with kadm, that group committed exactly offset want on every partition of topic.
func assertCommitted(t *testing.T, ctx context.Context, adm *kadm.Client, group, topic string, partitions int32, want int64) {
	t.Helper()
	var resps kadm.OffsetResponses
	waitFor(t, "FetchOffsets to answer", func() bool {
		var err error
		resps, err = adm.FetchOffsets(ctx, group)
		return err == nil && resps.Error() == nil
	})
	for p := range partitions {
		o, ok := resps.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != want {
			t.Fatalf("committed offset of %s/%d = %+v (found %v), want %d", topic, p, o, ok, want)
		}
	}
}
