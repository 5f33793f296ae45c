package broker

import (
	"testing"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// followerAt opens a replica on node 2 following node 1 at leader epoch 3.
func followerAt(t *testing.T) *partition {
	t.Helper()
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := openPartition(disk, "t-0", topicPartition{"t", 0}, [16]byte{1}, 2, storage.Config{Logger: testLogger()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	_, err = p.applyMetadata(metadataUpdate{mp: meta.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1,
		LeaderEpoch: 3, PartitionEpoch: 5}, minISR: 1, cfg: p.logCfg, eligible: func(int32) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// leaderBatches are three idempotent batches of five records (offsets 0-14) written at epoch 1.
func leaderBatches() []byte {
	var out []byte
	for i := range 3 {
		b := idempotentBatch(9, 0, int32(5*i), 5)
		storage.PatchBaseOffset(b, int64(5*i))
		storage.PatchLeaderEpoch(b, 1)
		out = append(out, b...)
	}
	return out
}

// fetchAnswer applies one fetch answer to the follower at its current position.
func fetchAnswer(t *testing.T, p *partition, sp kmsg.FetchResponseTopicPartition) {
	t.Helper()
	pos, ok := p.followerPosition(1, 3)
	if !ok {
		t.Fatal("not following node 1 at epoch 3")
	}
	if err := p.followerResult(1, pos, &sp); err != nil {
		t.Fatal(err)
	}
}

// A follower cuts exactly its divergent suffix, as the leader's DivergingEpoch places it, never back to its
// high watermark; its idempotent producer state follows the cut.
func TestFollowerTruncatesByEpochNotToHighWatermark(t *testing.T) {
	p := followerAt(t)
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.RecordBatches, sp.HighWatermark = leaderBatches(), 5
	fetchAnswer(t, p, sp)
	if p.log.EndOffset() != 15 || p.hw.Load() != 5 {
		t.Fatalf("after the append: log end %d, high watermark %d; want 15 and 5", p.log.EndOffset(), p.hw.Load())
	}
	// The new leader's epoch 1 ended at 10: offsets 10-14 exist only here.
	div := kmsg.NewFetchResponseTopicPartition()
	div.DivergingEpoch.Epoch, div.DivergingEpoch.EndOffset, div.HighWatermark = 1, 10, 5
	fetchAnswer(t, p, div)
	if got := p.log.EndOffset(); got != 10 {
		t.Fatalf("log end after DivergingEpoch{1, 10} = %d, want 10 (the high watermark is 5)", got)
	}
	h := func(seq int32) storage.BatchHeader {
		hd, err := storage.ParseBatch(idempotentBatch(9, 0, seq, 5))
		if err != nil {
			t.Fatal(err)
		}
		return hd
	}
	if dup, code := p.producers.check(h(5)); dup == nil || code != 0 || dup.firstOffset != 5 {
		t.Fatalf("retry of the kept batch: dup %+v code %d, want its offset 5", dup, code)
	}
	if dup, code := p.producers.check(h(10)); dup != nil || code != 0 {
		t.Fatalf("the cut batch must be writable again: dup %+v code %d", dup, code)
	}
}

// An answer built for an older position (the replica truncated or changed epoch meanwhile) is ignored.
func TestFollowerIgnoresStaleFetchAnswer(t *testing.T) {
	p := followerAt(t)
	pos, _ := p.followerPosition(1, 3)
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.RecordBatches = leaderBatches()
	fetchAnswer(t, p, sp)
	stale := kmsg.NewFetchResponseTopicPartition()
	stale.RecordBatches = leaderBatches()
	if err := p.followerResult(1, pos, &stale); err != nil || p.log.EndOffset() != 15 {
		t.Fatalf("stale answer: err %v, log end %d; want it ignored at 15", err, p.log.EndOffset())
	}
}
