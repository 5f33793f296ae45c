package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// findCoordinator asks node addr which node coordinates group (raw FindCoordinator, no client caching).
func findCoordinator(ctx context.Context, addr, group string) (int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return -1, err
	}
	defer cl.Close()
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKey, req.CoordinatorKeys = group, []string{group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, err
	}
	if len(resp.Coordinators) > 0 {
		c := resp.Coordinators[0]
		return c.NodeID, kerr.ErrorForCode(c.ErrorCode)
	}
	return resp.NodeID, kerr.ErrorForCode(resp.ErrorCode)
}

// consumeGroup consumes with a fresh group member until it has n records, and returns them by partition.
func consumeGroup(t *testing.T, ctx context.Context, seeds []string, group, topic string, n int) map[int32][]*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.SessionTimeout(2*time.Second), kgo.HeartbeatInterval(200*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RetryTimeout(groupWait))
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	got := map[int32][]*kgo.Record{}
	total := 0
	for total < n {
		fs := cl.PollRecords(ctx, n-total)
		if ctx.Err() != nil {
			cl.Close()
			t.Fatalf("consuming group %s: %d of %d records before the deadline", group, total, n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			total++
		})
	}
	if err := cl.CommitRecords(ctx, flatten(got)...); err != nil {
		cl.Close()
		t.Fatalf("committing %d records of group %s: %v", total, group, err)
	}
	cl.Close()
	return got
}

func flatten(m map[int32][]*kgo.Record) []*kgo.Record {
	var out []*kgo.Record
	for _, rs := range m {
		out = append(out, rs...)
	}
	return out
}

// TestGroupCoordinatorFailover: a franz-go group consumes and commits part of a topic on a 3-node cluster; the
// node coordinating the group (the leader of its __consumer_offsets partition) is killed; FindCoordinator
// moves to another node, which loaded the replicated commits; a new member resumes exactly at the committed
// offsets (no committed record is read again, none is skipped).
func TestGroupCoordinatorFailover(t *testing.T) {
	const (
		topic      = "fo"
		group      = "g-failover"
		partitions = 3
		perPart    = 20
	)
	c := startClusterForTest(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	boot := c.Bootstrap()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(boot...), kgo.RetryTimeout(groupWait))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if resp, err := adm.CreateTopic(ctx, partitions, 3, nil, topic); err != nil || resp.Err != nil {
		t.Fatalf("CreateTopic: %v / %v", err, resp.Err)
	}
	waitTopicEverywhere(t, c, topic)
	produceEach(t, ctx, boot[0], topic, partitions, 0, perPart)

	first := consumeGroup(t, ctx, boot, group, topic, partitions*perPart/2)
	committed := map[int32]int64{}
	for p, rs := range first {
		for i, r := range rs {
			if r.Offset != int64(i) {
				t.Fatalf("first member read %s-%d offset %d at position %d", topic, p, r.Offset, i)
			}
		}
		committed[p] = int64(len(rs))
	}

	victim, err := findCoordinator(ctx, boot[0], group)
	if err != nil {
		t.Fatalf("FindCoordinator: %v", err)
	}
	if ot := c.Image().Topics[OffsetsTopic]; ot == nil || len(ot.Partitions) != DefaultOffsetsTopicPartitions || len(ot.Partitions[0].Replicas) != 3 {
		t.Fatalf("the offsets topic is missing or not %d partitions replicated 3 ways: %+v", DefaultOffsetsTopicPartitions, ot)
	}
	if err := c.Kill(victim); err != nil {
		t.Fatalf("killing coordinator node %d: %v", victim, err)
	}
	var moved int32
	var survivor string
	for _, id := range c.IDs() {
		if id != victim {
			survivor = boot[id-1]
		}
	}
	repWait(t, groupWait, "FindCoordinator names a live node", func() error {
		id, err := findCoordinator(ctx, survivor, group)
		switch {
		case err != nil:
			return err
		case id == victim:
			return fmt.Errorf("still names the killed node %d", id)
		}
		moved = id
		return nil
	})
	t.Logf("coordinator moved from node %d to node %d", victim, moved)

	rest := consumeGroup(t, ctx, boot, group, topic, partitions*perPart-partitions*perPart/2)
	for p := range int32(partitions) {
		rs := rest[p]
		want := committed[p]
		for _, r := range rs {
			if r.Offset != want {
				t.Fatalf("after failover %s-%d: read offset %d, want %d (committed %d)", topic, p, r.Offset, want, committed[p])
			}
			want++
		}
		if want != perPart {
			t.Fatalf("after failover %s-%d: read up to %d, want %d", topic, p, want, perPart)
		}
	}
	// A fresh client seeded with a survivor: the old one may still pick the killed node for a request, and
	// kadm does not retry every dial error.
	survCl, err := kgo.NewClient(kgo.SeedBrokers(survivor), kgo.RetryTimeout(groupWait))
	if err != nil {
		t.Fatal(err)
	}
	defer survCl.Close()
	var fetched kadm.OffsetResponses
	repWait(t, groupWait, "FetchOffsets after failover", func() error {
		if fetched, err = kadm.NewClient(survCl).FetchOffsets(ctx, group); err == nil {
			err = fetched.Error()
		}
		return err
	})
	for p := range int32(partitions) {
		if o, ok := fetched.Lookup(topic, p); !ok || o.At != perPart {
			t.Fatalf("committed %s-%d after the second member: %+v, want %d", topic, p, o, perPart)
		}
	}
}

// TestGroupOffsetsSurviveClusterRestart: commits survive every node being killed at once and restarted (the
// replicated log is the store; the page cache survives a process kill), and then every node being stopped
// cleanly and restarted; the offsets topic is internal in Metadata.
func TestGroupOffsetsSurviveClusterRestart(t *testing.T) {
	c := startClusterForTest(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	boot := c.Bootstrap()
	newAdmin := func() (*kadm.Client, func()) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(boot...), kgo.RetryTimeout(groupWait))
		if err != nil {
			t.Fatal(err)
		}
		return kadm.NewClient(cl), cl.Close
	}
	adm, done := newAdmin()
	if resp, err := adm.CreateTopic(ctx, 4, 3, nil, "restarted"); err != nil || resp.Err != nil {
		t.Fatalf("CreateTopic: %v / %v", err, resp.Err)
	}
	waitTopicEverywhere(t, c, "restarted")
	want := map[string]map[int32]int64{}
	for g := range 5 {
		group := fmt.Sprintf("g-restart-%d", g)
		want[group] = map[int32]int64{}
		offs := kadm.Offsets{}
		for p := range int32(4) {
			at := int64(10*g) + int64(p) + 1
			offs.AddOffset("restarted", p, at, -1)
			want[group][p] = at
		}
		resp, err := adm.CommitOffsets(ctx, group, offs)
		if err != nil || resp.Error() != nil {
			t.Fatalf("CommitOffsets %s: %v %v", group, err, resp.Error())
		}
	}
	md, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatalf("Metadata: %v", err)
	}
	if d, ok := md.Topics[OffsetsTopic]; !ok || !d.IsInternal {
		t.Fatalf("Metadata shows %s as %+v, want an internal topic", OffsetsTopic, d)
	}
	if topics, err := adm.ListTopics(ctx); err != nil || topics.Has(OffsetsTopic) || !topics.Has("restarted") {
		t.Fatalf("ListTopics (internal topics excluded): %v %v", topics.Names(), err)
	}
	done()
	prod, err := kgo.NewClient(kgo.SeedBrokers(boot...), kgo.RecordRetries(1), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	err = prod.ProduceSync(ctx, &kgo.Record{Topic: OffsetsTopic, Value: []byte("forged")}).FirstErr()
	prod.Close()
	if !errors.Is(err, kerr.InvalidTopicException) {
		t.Fatalf("producing to %s: %v, want INVALID_TOPIC_EXCEPTION", OffsetsTopic, err)
	}

	check := func(when string) {
		adm, done := newAdmin()
		defer done()
		for group, parts := range want {
			var fetched kadm.OffsetResponses
			repWait(t, groupWait, "FetchOffsets "+when, func() error {
				var err error
				fetched, err = adm.FetchOffsets(ctx, group)
				if err == nil {
					err = fetched.Error()
				}
				return err
			})
			for p, at := range parts {
				if o, ok := fetched.Lookup("restarted", p); !ok || o.At != at {
					t.Fatalf("%s: %s restarted-%d: %+v, want %d", when, group, p, o, at)
				}
			}
		}
	}
	restartAll := func(when string, stop func(int32) error) {
		for _, id := range c.IDs() {
			if err := stop(id); err != nil {
				t.Fatalf("%s node %d: %v", when, id, err)
			}
		}
		if err := c.startAll(c.IDs()); err != nil {
			t.Fatalf("restarting after %s: %v", when, err)
		}
		check("after " + when)
	}
	restartAll("killing every node", c.Kill)
	restartAll("stopping every node", c.Stop)
}

// TestGroupOffsetsSurvivePowerLossWhenFlushed: with log.flush.interval.messages=1 every replica fsyncs each
// commit before the ISR acknowledges it, so commits survive a power loss of every node at once (without it,
// like any log, the offsets topic keeps only what the page cache flushed).
func TestGroupOffsetsSurvivePowerLossWhenFlushed(t *testing.T) {
	c := startClusterWith(t, ClusterConfig{Nodes: 3, Defaults: TopicDefaults{LogFlushIntervalMessages: 1}})
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.RetryTimeout(groupWait))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	if resp, err := adm.CreateTopic(ctx, 2, 3, nil, "flushed"); err != nil || resp.Err != nil {
		t.Fatalf("CreateTopic: %v / %v", err, resp.Err)
	}
	waitTopicEverywhere(t, c, "flushed")
	offs := kadm.Offsets{}
	offs.AddOffset("flushed", 0, 3, -1)
	offs.AddOffset("flushed", 1, 4, -1)
	if resp, err := adm.CommitOffsets(ctx, "g-power", offs); err != nil || resp.Error() != nil {
		t.Fatalf("CommitOffsets: %v %v", err, resp.Error())
	}
	cl.Close()
	for _, id := range c.IDs() {
		if err := c.PowerLoss(id); err != nil {
			t.Fatalf("power loss on node %d: %v", id, err)
		}
	}
	if err := c.startAll(c.IDs()); err != nil {
		t.Fatalf("restarting after the power loss: %v", err)
	}
	cl, err = kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...), kgo.RetryTimeout(groupWait))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var fetched kadm.OffsetResponses
	repWait(t, groupWait, "FetchOffsets after the power loss", func() error {
		if fetched, err = kadm.NewClient(cl).FetchOffsets(ctx, "g-power"); err == nil {
			err = fetched.Error()
		}
		return err
	})
	for p, want := range map[int32]int64{0: 3, 1: 4} {
		if o, ok := fetched.Lookup("flushed", p); !ok || o.At != want {
			t.Fatalf("flushed-%d after the power loss: %+v, want %d", p, o, want)
		}
	}
}
