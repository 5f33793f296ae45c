package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// producer returns an acks=all idempotent client writing to partition 0 of topic.
func (tn *testNode) producer(topic string) *kgo.Client {
	return tn.client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
}

// offsets returns the earliest and latest (high watermark) offsets of partition 0.
func (tn *testNode) offsets(t *testing.T, topic string) (int64, int64) {
	t.Helper()
	adm := kadm.NewClient(tn.client())
	start, err := adm.ListStartOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := start.Lookup(topic, 0)
	e, _ := end.Lookup(topic, 0)
	if s.Err != nil || e.Err != nil {
		t.Fatalf("list offsets: %v / %v", s.Err, e.Err)
	}
	return s.Offset, e.Offset
}

// checkValues asserts partition 0 holds exactly prefix-0..prefix-(n-1) and nothing more.
func (tn *testNode) checkValues(t *testing.T, topic, prefix string, n int) {
	t.Helper()
	if _, end := tn.offsets(t, topic); end != int64(n) {
		t.Fatalf("high watermark %d, want %d", end, n)
	}
	if n == 0 {
		return
	}
	got := consumeAll(t, tn, topic, n)
	for i, v := range got {
		if want := fmt.Sprintf("%s-%d", prefix, i); v != want {
			t.Fatalf("record %d = %q, want %q", i, v, want)
		}
	}
}

func TestRestartAfterKillKeepsAcked(t *testing.T) {
	tn := startTestNode(t)
	tn.createTopic("k", 1, nil)
	produceAll(t, tn.producer("k"), "k", 1000, "a")
	tn.Kill()
	tn.start()
	tn.checkValues(t, "k", "a", 1000)
	// The restarted node keeps appending after what it recovered.
	produceAll(t, tn.producer("k"), "k", 1, "b")
	if _, end := tn.offsets(t, "k"); end != 1001 {
		t.Fatalf("after one more record the high watermark is %d, want 1001", end)
	}
}

func TestLoseUnsyncedWithFlushEveryMessageLosesNothing(t *testing.T) {
	tn := startTestNode(t)
	one := "1"
	tn.createTopic("f", 1, map[string]*string{"log.flush.interval.messages": &one})
	produceAll(t, tn.producer("f"), "f", 1000, "a")
	if err := tn.LoseUnsynced(); err != nil {
		t.Fatal(err)
	}
	tn.start()
	tn.checkValues(t, "f", "a", 1000)
}

func TestLoseUnsyncedDropsExactlyTheUnsyncedTail(t *testing.T) {
	tn := startTestNode(t)
	tn.createTopic("u", 1, nil)
	produceAll(t, tn.producer("u"), "u", 500, "a")
	p := tn.partition("u", 0)
	if p == nil {
		t.Fatal("partition u-0 not hosted")
	}
	if err := p.log.Sync(); err != nil {
		t.Fatal(err)
	}
	cl := tn.producer("u")
	for i := range 300 {
		r := kgo.StringRecord(fmt.Sprintf("x-%d", i))
		if err := cl.ProduceSync(testCtx(t), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if _, end := tn.offsets(t, "u"); end != 800 {
		t.Fatalf("before the power loss the high watermark is %d, want 800", end)
	}
	if err := tn.LoseUnsynced(); err != nil {
		t.Fatal(err)
	}
	tn.start()
	// Exactly the 500 fsynced records survive; the high watermark and log end agree.
	tn.checkValues(t, "u", "a", 500)
	if p := tn.partition("u", 0); p.log.EndOffset() != 500 || p.highWatermark() != 500 {
		t.Fatalf("after recovery LEO %d HW %d, want 500/500", p.log.EndOffset(), p.highWatermark())
	}
}

func TestTornLastBatchIsCutAtRecovery(t *testing.T) {
	tn := startTestNode(t)
	tn.createTopic("torn", 1, nil)
	produceAll(t, tn.producer("torn"), "torn", 200, "a")
	if err := tn.Close(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tn.disk.Root(), "node-1", logsDirName, "torn-0")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var seg string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			seg = filepath.Join(dir, e.Name()) // the last one sorts last: the active segment
		}
	}
	if seg == "" {
		t.Fatalf("no segment file in %s", dir)
	}
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A torn batch: a plausible header start (offset, length) with garbage and no complete body.
	if _, err := f.Write([]byte("\x00\x00\x00\x00\x00\x00\x00\xc8\x00\x00\x01\x00garbage-garbage")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tn.start()
	tn.checkValues(t, "torn", "a", 200)
	produceAll(t, tn.producer("torn"), "torn", 1, "b")
	if _, end := tn.offsets(t, "torn"); end != 201 {
		t.Fatalf("after recovery and one more record the high watermark is %d, want 201", end)
	}
}

func TestKadmTopicsAndConfigs(t *testing.T) {
	tn := startTestNode(t)
	adm := kadm.NewClient(tn.client())
	ctx := testCtx(t)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "cfg"); err != nil {
		t.Fatal(err)
	}
	details, err := adm.ListTopics(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	d := details["cfg"]
	if d.Err != nil || len(d.Partitions) != 3 {
		t.Fatalf("describe topic: err %v, %d partitions, want 3", d.Err, len(d.Partitions))
	}
	for _, p := range d.Partitions {
		if p.Leader != 1 || len(p.Replicas) != 1 || len(p.ISR) != 1 {
			t.Fatalf("partition %d: leader %d replicas %v isr %v", p.Partition, p.Leader, p.Replicas, p.ISR)
		}
	}
	set := func(k, v string) kadm.AlterConfig { return kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v} }
	res, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{set("min.insync.replicas", "2"),
		set("log.flush.interval.messages", "1"), set("unclean.leader.election.enable", "true")}, "cfg")
	if err != nil || res[0].Err != nil {
		t.Fatalf("alter: %v / %v", err, res)
	}
	bad, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{set("min.insync.replicas", "zero")}, "cfg")
	if err != nil || bad[0].Err == nil {
		t.Fatalf("an invalid value must be refused: %v / %+v", err, bad)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("cfg", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"min.insync.replicas": "2", "log.flush.interval.messages": "1", "unclean.leader.election.enable": "true"}
	for _, c := range rc.Configs {
		if v, ok := want[c.Key]; ok {
			if c.MaybeValue() != v || c.Source != 1 {
				t.Fatalf("%s = %q (source %v), want %q from the topic", c.Key, c.MaybeValue(), c.Source, v)
			}
			delete(want, c.Key)
		}
	}
	if len(want) > 0 {
		t.Fatalf("configs not described: %v", want)
	}
	// The partition picked up the new flush setting.
	if p := tn.partition("cfg", 0); p.logCfg.FlushMessages != 1 || p.minISR != 2 {
		t.Fatalf("partition settings: flush.messages %d, min.insync %d", p.logCfg.FlushMessages, p.minISR)
	}
	// min.insync.replicas=2 with one replica: Kafka caps the requirement at the replication factor
	// (effectiveMinIsr), so acks=all is accepted. Replicated clusters test NOT_ENOUGH_REPLICAS.
	cl := tn.client(kgo.DefaultProduceTopic("cfg"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RecordRetries(1), kgo.RequestRetries(1))
	if err = cl.ProduceSync(ctx, kgo.StringRecord("v")).FirstErr(); err != nil {
		t.Fatalf("acks=all with min.insync.replicas above the replication factor: %v", err)
	}
	if _, err := adm.DeleteTopics(ctx, "cfg"); err != nil {
		t.Fatal(err)
	}
	if tn.partition("cfg", 0) != nil {
		t.Fatal("deleted topic's partition is still hosted")
	}
	if _, err := os.Stat(filepath.Join(tn.disk.Root(), "node-1", logsDirName, "cfg-0")); !os.IsNotExist(err) {
		t.Fatalf("deleted topic's log directory remains: %v", err)
	}
}

// TestDescribeConfigsSources: a broker-level value nobody set is DEFAULT_CONFIG, one the node was started with
// STATIC_BROKER_CONFIG, as Kafka reports them.
func TestDescribeConfigsSources(t *testing.T) {
	tn := startTestNode(t, func(c *Config) { c.Defaults.MinInsyncReplicas = 2 })
	tn.createTopic("src", 1, nil)
	adm := kadm.NewClient(tn.client())
	rcs, err := adm.DescribeTopicConfigs(testCtx(t), "src")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("src", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]kmsg.ConfigSource{
		"min.insync.replicas":            kmsg.ConfigSourceStaticBrokerConfig,
		"unclean.leader.election.enable": kmsg.ConfigSourceDefaultConfig,
		"segment.bytes":                  kmsg.ConfigSourceDefaultConfig,
	}
	for _, c := range rc.Configs {
		if w, ok := want[c.Key]; ok {
			if c.Source != w {
				t.Errorf("%s = %q: source %v, want %v", c.Key, c.MaybeValue(), c.Source, w)
			}
			delete(want, c.Key)
		}
	}
	if len(want) > 0 {
		t.Fatalf("configs not described: %v", want)
	}
}
