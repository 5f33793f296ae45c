package group

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testTopics is a mutable topic table standing in for the broker's metadata image.
type testTopics struct {
	mu  sync.Mutex
	ids map[string][16]byte
}

func (tt *testTopics) set(name string, id byte) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if id == 0 {
		delete(tt.ids, name)
		return
	}
	tt.ids[name] = [16]byte{id}
}

func (tt *testTopics) lookup(name string) ([16]byte, bool) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	id, ok := tt.ids[name]
	return id, ok
}

func newTopicsCoordinator(t *testing.T, store OffsetStore, tt *testTopics) *Coordinator {
	t.Helper()
	c, err := NewCoordinator(Config{Store: store, TopicIDs: tt.lookup})
	if err != nil {
		t.Fatalf("NewCoordinator: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func fetchAll(t *testing.T, c *Coordinator, group string) map[TP]int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group = group
	req.Topics = nil
	resp := c.OffsetFetch(context.Background(), req)
	if resp.ErrorCode != 0 {
		t.Fatalf("OffsetFetch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	out := map[TP]int64{}
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			out[TP{rt.Topic, p.Partition}] = p.Offset
		}
	}
	return out
}

// Kafka's coordinator drops the offsets of deleted partitions: a topic deleted and created again under the
// same name is consumed from the reset policy, never from the old topic's offsets. The offsets disappear from
// OffsetFetch as soon as the topic is gone, the removal is stored (a reopened store has none of them), and a
// group left with nothing is removed.
func TestDeletedTopicOffsetsAreDroppedDurably(t *testing.T) {
	t.Parallel()
	disk := newTestDisk(t)
	store := newTestStore(t, disk, true)
	tt := &testTopics{ids: map[string][16]byte{}}
	tt.set("old", 1)
	tt.set("other", 2)
	c := newTopicsCoordinator(t, store, tt)
	for _, req := range []*kmsg.OffsetCommitRequest{commitReq("g", "", -1, "old", 50, 50), commitReq("g", "", -1, "other", 7),
		commitReq("only-old", "", -1, "old", 3)} {
		if codes := commitCodes(c.OffsetCommit(context.Background(), req)); codes[0] != 0 {
			t.Fatalf("commit: %v", codes)
		}
	}
	// A commit to a topic that does not exist is refused, as Kafka does.
	if codes := commitCodes(c.OffsetCommit(context.Background(), commitReq("g", "", -1, "nope", 1))); codes[0] != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("commit to an unknown topic: %v", codes)
	}

	// Deleted and created again under a new id: the old offsets are not served, before any removal pass.
	tt.set("old", 9)
	if got := fetchOffsets(t, c, "g", "old", 0, 1); got[0] != -1 || got[1] != -1 {
		t.Fatalf("offsets of the re-created topic = %v, want -1 -1 (none)", got)
	}
	if got := fetchAll(t, c, "g"); !maps.Equal(got, map[TP]int64{{"other", 0}: 7}) {
		t.Fatalf("all offsets of g = %v, want only other/0=7", got)
	}
	removed, retry, err := c.RemoveDeletedTopicOffsets()
	if removed != 3 || retry || err != nil {
		t.Fatalf("RemoveDeletedTopicOffsets = %d, %v, %v; want 3, false, nil", removed, retry, err)
	}
	if again, _, _ := c.RemoveDeletedTopicOffsets(); again != 0 {
		t.Fatalf("a second pass removed %d more", again)
	}
	if d := describe(t, c, "only-old"); d.State != "Dead" {
		t.Fatalf("group only-old (no offsets, no members) is %s, want Dead", d.State)
	}
	// New commits of the re-created topic carry its new id and are kept.
	if codes := commitCodes(c.OffsetCommit(context.Background(), commitReq("g", "", -1, "old", 4))); codes[0] != 0 {
		t.Fatalf("commit to the re-created topic: %v", codes)
	}
	c.Close()
	store.Close()

	// The removal is durable: a new coordinator over the reopened store sees exactly what is left.
	store2 := newTestStore(t, disk, true)
	defer store2.Close()
	l, err := store2.Load()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[TP]Committed{"g": {
		{"other", 0}: {Offset: 7, LeaderEpoch: -1, TopicID: [16]byte{2}},
		{"old", 0}:   {Offset: 4, LeaderEpoch: -1, TopicID: [16]byte{9}},
	}}
	if len(l) != len(want) || !maps.Equal(l["g"], want["g"]) {
		t.Fatalf("reopened store holds %v, want %v", l, want)
	}
	c2 := newTopicsCoordinator(t, store2, tt)
	if got := fetchAll(t, c2, "g"); !maps.Equal(got, map[TP]int64{{"other", 0}: 7, {"old", 0}: 4}) {
		t.Fatalf("after reopen g has %v", got)
	}
	// A topic simply deleted (no new one) loses its offsets too.
	tt.set("other", 0)
	if removed, _, _ := c2.RemoveDeletedTopicOffsets(); removed != 1 {
		t.Fatalf("removed %d offsets of the deleted topic other, want 1", removed)
	}
}

// blockingStore wraps a FileStore; its Append returns a commit whose Wait blocks until release is closed.
type blockingStore struct {
	*FileStore
	release chan struct{}
	failDel bool
}

func (s *blockingStore) Append(group string, offsets map[TP]Committed) (Pending, error) {
	p, err := s.FileStore.Append(group, offsets)
	if err != nil {
		return nil, err
	}
	return blockedPending{p, s.release}, nil
}

func (s *blockingStore) Delete(group string, tps []TP) (Pending, error) {
	if s.failDel {
		return nil, errors.New("not enough replicas")
	}
	return s.FileStore.Delete(group, tps)
}

type blockedPending struct {
	Pending
	release chan struct{}
}

func (p blockedPending) Wait(ctx context.Context) error {
	<-p.release
	return p.Pending.Wait(ctx)
}

// A group with a commit in flight, or whose tombstones the store refused, is left for a later pass (retry),
// and nothing stale is served meanwhile.
func TestDeletedTopicOffsetsRetryWhileBusy(t *testing.T) {
	t.Parallel()
	store := &blockingStore{FileStore: newTestStore(t, newTestDisk(t), true), release: make(chan struct{})}
	defer store.Close()
	close(store.release)
	tt := &testTopics{ids: map[string][16]byte{}}
	tt.set("t", 1)
	c := newTopicsCoordinator(t, store, tt)
	if codes := commitCodes(c.OffsetCommit(context.Background(), commitReq("g", "", -1, "t", 10))); codes[0] != 0 {
		t.Fatalf("commit: %v", codes)
	}
	store.release = make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.OffsetCommit(context.Background(), commitReq("g", "", -1, "t", 11))
	}()
	deadline := time.Now().Add(waitLong)
	for {
		g, _ := c.lockGroup("g", false)
		busy := g != nil && g.pendingCommits > 0
		if g != nil {
			g.mu.Unlock()
		}
		if busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second commit never became pending")
		}
		time.Sleep(time.Millisecond)
	}
	tt.set("t", 0)
	if removed, retry, err := c.RemoveDeletedTopicOffsets(); removed != 0 || !retry || err != nil {
		t.Fatalf("with a commit in flight: removed %d, retry %v, %v; want 0, true, nil", removed, retry, err)
	}
	if got := fetchAll(t, c, "g"); len(got) != 0 {
		t.Fatalf("offsets of the deleted topic served: %v", got)
	}
	close(store.release)
	<-done
	store.failDel = true
	if removed, retry, err := c.RemoveDeletedTopicOffsets(); removed != 0 || !retry || err == nil || !strings.Contains(err.Error(), "not enough replicas") {
		t.Fatalf("with the store refusing: removed %d, retry %v, %v; want 0, true and the store's error", removed, retry, err)
	}
	if got := fetchAll(t, c, "g"); len(got) != 0 {
		t.Fatalf("offsets of the deleted topic served while the store refuses: %v", got)
	}
	store.failDel = false
	if removed, retry, err := c.RemoveDeletedTopicOffsets(); removed != 1 || retry || err != nil {
		t.Fatalf("after the commit ended: removed %d, retry %v, %v; want 1, false, nil", removed, retry, err)
	}
	l, err := store.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(l["g"]) != 0 {
		t.Fatalf("store still holds %v", l)
	}
}

// Version 1 records (before topic ids and deletions) still load, with a zero topic id.
func TestFileStoreReadsVersion1Records(t *testing.T) {
	t.Parallel()
	d := newTestDisk(t)
	payload := []byte{1, 0, 1, 'g', 0, 0, 0, 1, 0, 1, 't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 42, 0, 0, 0, 3, 0, 0, 0, 1, 'm'}
	rec := make([]byte, recordHeaderBytes, recordHeaderBytes+len(payload))
	rec = append(rec, payload...)
	binary.BigEndian.PutUint32(rec[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint32(rec[4:8], crc32.Checksum(payload, crcTable))
	if err := d.WriteFileAtomic("offsets/commits.log", rec); err != nil {
		t.Fatal(err)
	}
	s := newTestStore(t, d, false)
	defer s.Close()
	if s.TruncatedBytes() != 0 {
		t.Fatalf("the version 1 record was cut as torn (%d bytes)", s.TruncatedBytes())
	}
	got := loaded(t, s)["g"]
	want := map[TP]Committed{{"t", 2}: {Offset: 42, LeaderEpoch: 3, Metadata: "m"}}
	if !maps.Equal(got, want) {
		t.Fatalf("loaded %v, want %v", got, want)
	}
}
