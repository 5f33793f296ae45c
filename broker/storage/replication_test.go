package storage

import (
	"slices"
	"testing"
)

// A leader elected and deposed before writing leaves an epoch entry at its log end; a truncation that cuts no
// record must still drop it (Kafka's truncateTo), or the replica would later claim an epoch it never wrote.
func TestTruncateAtEndDropsUnwrittenEpoch(t *testing.T) {
	l := openLog(t, newDisk(t), Config{})
	defer l.Close()
	appendN(t, l, 2, 5, 1)
	if err := l.AssignEpoch(4, l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(l.EndOffset() + 3); err != nil {
		t.Fatal(err)
	}
	if got, want := l.Epochs().Entries(), []EpochEntry{{1, 0}}; !slices.Equal(got, want) {
		t.Fatalf("entries after a no-record truncation = %v, want %v", got, want)
	}
	if l.EndOffset() != 10 {
		t.Fatalf("end offset %d, want 10", l.EndOffset())
	}
}

// A follower's batches go through the assign rule one by one: an epoch it assigned but never wrote, and that
// the leader's log contradicts, is replaced; headers of what was appended come back.
func TestAppendFollowerAssignsEpochsPerBatch(t *testing.T) {
	d := newDisk(t)
	leader, err := Open(d, "leader-0", quietConfig(Config{}))
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	appendN(t, leader, 2, 5, 2)
	appendN(t, leader, 1, 5, 3)
	follower, err := Open(d, "follower-0", quietConfig(Config{}))
	if err != nil {
		t.Fatal(err)
	}
	defer follower.Close()
	// The follower once assigned epoch 5 at 0 without writing (it lost the election race), then fetches.
	if err := follower.AssignEpoch(5, 0); err != nil {
		t.Fatal(err)
	}
	hs, err := follower.AppendFollowerBatches(readAll(t, leader))
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 3 || hs[2].BaseOffset != 10 || hs[2].PartitionLeaderEpoch != 3 {
		t.Fatalf("headers = %+v", hs)
	}
	if got, want := follower.Epochs().Entries(), leader.Epochs().Entries(); !slices.Equal(got, want) {
		t.Fatalf("follower epochs %v, leader's %v", got, want)
	}
}
