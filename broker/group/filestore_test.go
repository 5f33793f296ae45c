package group

import (
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/kafkatrial/kafkatrial/broker/storage"
)

func commitN(t *testing.T, s *FileStore, group string, n int) {
	t.Helper()
	for i := range n {
		err := s.Commit(group, map[TP]Committed{{"t", int32(i % 3)}: {Offset: int64(i), LeaderEpoch: 2, Metadata: "m"}})
		if err != nil {
			t.Fatalf("Commit %d: %v", i, err)
		}
	}
}

func loaded(t *testing.T, s *FileStore) map[string]map[TP]Committed {
	t.Helper()
	m, err := s.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return m
}

func TestFileStorePersistsAcrossReopen(t *testing.T) {
	t.Parallel()
	d := newTestDisk(t)
	s := newTestStore(t, d, false)
	commitN(t, s, "g", 10)
	commitN(t, s, "h", 2)
	want := loaded(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := newTestStore(t, d, false)
	defer s2.Close()
	got := loaded(t, s2)
	if !maps.EqualFunc(got, want, func(a, b map[TP]Committed) bool { return maps.Equal(a, b) }) {
		t.Fatalf("after reopen %v, want %v", got, want)
	}
	if got["g"][TP{"t", 0}].Offset != 9 || got["h"][TP{"t", 1}].Offset != 1 {
		t.Fatalf("latest commits not kept: %v", got)
	}
	// The coordinator serves them after a restart.
	c := newTestCoordinator(t, s2)
	if o := fetchOffsets(t, c, "g", "t", 0, 1, 2, 3); !slices.Equal(o, []int64{9, 7, 8, -1}) {
		t.Fatalf("coordinator after reopen: %v", o)
	}
}

func TestFileStoreCutsTornTail(t *testing.T) {
	t.Parallel()
	d := newTestDisk(t)
	s := newTestStore(t, d, true)
	commitN(t, s, "g", 3)
	s.Close()
	full, err := d.ReadFile("offsets/commits.log")
	if err != nil {
		t.Fatal(err)
	}
	recLen := len(full) / 3
	tests := []struct {
		name string
		tail []byte
	}{
		{"half a record", full[:recLen/2]},
		{"header only", full[:5]},
		{"bad crc", append(slices.Clone(full[:recLen-1]), full[recLen-1]^0xff)},
		{"absurd length", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newTestDisk(t)
			if err := d.WriteFileAtomic("offsets/commits.log", append(slices.Clone(full[:2*recLen]), tc.tail...)); err != nil {
				t.Fatal(err)
			}
			s := newTestStore(t, d, true)
			if s.TruncatedBytes() != int64(len(tc.tail)) {
				t.Fatalf("cut %d bytes, want %d", s.TruncatedBytes(), len(tc.tail))
			}
			if got := loaded(t, s)["g"]; got[TP{"t", 0}].Offset != 0 || got[TP{"t", 1}].Offset != 1 || len(got) != 2 {
				t.Fatalf("recovered %v, want the first two commits", got)
			}
			commitN(t, s, "g", 3) // appends after the cut must be readable
			s.Close()
			s = newTestStore(t, d, true)
			defer s.Close()
			if s.TruncatedBytes() != 0 || loaded(t, s)["g"][TP{"t", 2}].Offset != 2 {
				t.Fatalf("after append and reopen: cut %d, %v", s.TruncatedBytes(), loaded(t, s))
			}
		})
	}
}

func TestFileStorePowerLoss(t *testing.T) {
	t.Parallel()
	for _, sync := range []bool{false, true} {
		d := newTestDisk(t)
		s := newTestStore(t, d, sync)
		commitN(t, s, "g", 3)
		if err := d.LoseUnsynced(); err != nil {
			t.Fatal(err)
		}
		s2 := newTestStore(t, d, sync)
		n := len(loaded(t, s2)["g"])
		s2.Close()
		if sync && n != 3 {
			t.Fatalf("syncEveryCommit: %d partitions survived a power loss, want 3", n)
		}
		if !sync && n != 0 {
			t.Fatalf("no fsync: %d partitions survived a power loss, want 0 (nothing was synced)", n)
		}
	}
}

func TestFileStoreCompacts(t *testing.T) {
	t.Parallel()
	d := newTestDisk(t)
	s := newTestStore(t, d, false)
	big := map[TP]Committed{}
	for p := range 50 {
		big[TP{"topic", int32(p)}] = Committed{Offset: 1, LeaderEpoch: -1}
	}
	for i := range 2000 { // ~2000 x 50 x 30 bytes: several MiB of history over 50 live partitions
		for tp := range big {
			big[tp] = Committed{Offset: int64(i), LeaderEpoch: -1}
		}
		if err := s.Commit("g", big); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(d.Root() + "/offsets/commits.log")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 4*compactMinBytes {
		t.Fatalf("file is %d bytes: never compacted", st.Size())
	}
	s.Close()
	s2 := newTestStore(t, d, false)
	defer s2.Close()
	if got := loaded(t, s2)["g"]; !maps.Equal(got, big) {
		t.Fatalf("after compaction and reopen: %d partitions, offset %v", len(got), got[TP{"topic", 0}])
	}
}

// FuzzFileStoreRecover: whatever bytes the file holds, opening recovers a prefix of whole records without
// panicking, and the recovered file reopens to the same state with nothing more to cut.
func FuzzFileStoreRecover(f *testing.F) {
	rec, err := encodeRecord("g", map[TP]Committed{{"t", 0}: {Offset: 5, LeaderEpoch: 1, Metadata: "x", TopicID: [16]byte{7}}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	del, err := encodeRecord("g", nil, []TP{{"t", 0}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(rec)
	f.Add(append(slices.Clone(rec), del...))
	f.Add(append(slices.Clone(rec), rec[:7]...))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newTestDisk(t)
		if err := d.WriteFileAtomic("offsets/commits.log", data); err != nil {
			t.Fatal(err)
		}
		s := newTestStore(t, d, false)
		first := loaded(t, s)
		s.Close()
		s = newTestStore(t, d, false)
		defer s.Close()
		if s.TruncatedBytes() != 0 {
			t.Fatalf("second open cut %d more bytes", s.TruncatedBytes())
		}
		if !maps.EqualFunc(first, loaded(t, s), func(a, b map[TP]Committed) bool { return maps.Equal(a, b) }) {
			t.Fatal("state changed between two opens")
		}
	})
}

// BenchmarkFileStoreCommit compares a commit of 6 partitions with and without fsync per commit.
func BenchmarkFileStoreCommit(b *testing.B) {
	for _, sync := range []bool{false, true} {
		b.Run(map[bool]string{false: "page-cache", true: "fsync"}[sync], func(b *testing.B) {
			d, err := storage.NewDisk(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			s, err := OpenFileStore(d, "commits.log", sync)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			offs := map[TP]Committed{}
			for i := 0; b.Loop(); i++ {
				for p := range int32(6) {
					offs[TP{"topic", p}] = Committed{Offset: int64(i), LeaderEpoch: 3}
				}
				if err := s.Commit("bench-group", offs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
