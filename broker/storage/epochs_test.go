package storage

import (
	"slices"
	"testing"
)

func TestEpochCacheEndOffsetFor(t *testing.T) {
	d := newDisk(t)
	l := openLog(t, d, Config{})
	appendN(t, l, 2, 5, 1) // epoch 1: 0..9
	appendN(t, l, 2, 5, 3) // epoch 3: 10..19
	appendN(t, l, 2, 5, 5) // epoch 5: 20..29
	appendN(t, l, 2, 5, 5)

	type query struct {
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}
	check := func(stage string, l *Log, entries []EpochEntry, qs []query) {
		t.Helper()
		if got := l.Epochs().Entries(); !slices.Equal(got, entries) {
			t.Fatalf("%s: entries %v, want %v", stage, got, entries)
		}
		for _, q := range qs {
			e, off := l.Epochs().EndOffsetFor(q.epoch)
			if e != q.wantEpoch || off != q.wantEnd {
				t.Errorf("%s: EndOffsetFor(%d) = (%d, %d), want (%d, %d)", stage, q.epoch, e, off, q.wantEpoch, q.wantEnd)
			}
		}
	}
	full := []query{
		{UndefinedEpoch, UndefinedEpoch, UndefinedEpochOffset},
		{0, 0, 0}, // below the earliest: Kafka answers the first known start offset
		{1, 1, 10},
		{2, 1, 10},
		{3, 3, 20},
		{4, 3, 20},
		{5, 5, 40}, // latest epoch: the log end offset
		{6, UndefinedEpoch, UndefinedEpochOffset},
	}
	check("appended", l, []EpochEntry{{1, 0}, {3, 10}, {5, 20}}, full)
	if e, start := l.Epochs().Latest(); e != 5 || start != 20 {
		t.Fatalf("Latest = (%d, %d)", e, start)
	}

	if err := l.TruncateTo(25); err != nil {
		t.Fatal(err)
	}
	check("truncated mid epoch 5", l, []EpochEntry{{1, 0}, {3, 10}, {5, 20}}, []query{{5, 5, 25}, {4, 3, 20}})
	if err := l.TruncateTo(15); err != nil {
		t.Fatal(err)
	}
	check("truncated into epoch 3", l, []EpochEntry{{1, 0}, {3, 10}}, []query{
		{3, 3, 15}, {2, 1, 10}, {5, UndefinedEpoch, UndefinedEpochOffset},
	})
	if err := l.TruncateTo(10); err != nil {
		t.Fatal(err)
	}
	check("truncated at epoch 3's start", l, []EpochEntry{{1, 0}}, []query{{1, 1, 10}, {3, UndefinedEpoch, UndefinedEpochOffset}})

	// A new leader assigns its epoch at the log end before appending; the cache must persist across reopen.
	if err := l.AssignEpoch(7, 10); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 1, 5, 7)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, d, Config{})
	defer l.Close()
	check("reopened", l, []EpochEntry{{1, 0}, {7, 10}}, []query{{1, 1, 10}, {3, 1, 10}, {7, 7, 15}, {0, 0, 0}})
}

func TestEpochAssignSemantics(t *testing.T) {
	tests := []struct {
		name  string
		start []EpochEntry
		epoch int32
		at    int64
		want  []EpochEntry
	}{
		{"first", nil, 2, 0, []EpochEntry{{2, 0}}},
		{"newer", []EpochEntry{{2, 0}}, 4, 7, []EpochEntry{{2, 0}, {4, 7}}},
		{"same epoch later offset is a no-op", []EpochEntry{{2, 0}}, 2, 9, []EpochEntry{{2, 0}}},
		{"older epoch replaces newer entries", []EpochEntry{{2, 0}, {4, 7}}, 3, 8, []EpochEntry{{2, 0}, {3, 8}}},
		{"earlier offset replaces later entries", []EpochEntry{{2, 0}, {4, 7}}, 5, 5, []EpochEntry{{2, 0}, {5, 5}}},
		{"undefined epoch ignored", []EpochEntry{{2, 0}}, -1, 9, []EpochEntry{{2, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := assignEntries(slices.Clone(tt.start), tt.epoch, tt.at)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("assign(%d, %d) on %v = %v, want %v", tt.epoch, tt.at, tt.start, got, tt.want)
			}
		})
	}
}

func TestEpochCheckpointFormat(t *testing.T) {
	entries := []EpochEntry{{0, 0}, {3, 120}, {9, 4000}}
	b := encodeEpochCheckpoint(entries)
	if string(b) != "0\n3\n0 0\n3 120\n9 4000\n" {
		t.Fatalf("checkpoint text %q", b)
	}
	got, err := decodeEpochCheckpoint(b)
	if err != nil || !slices.Equal(got, entries) {
		t.Fatalf("decode = %v, %v", got, err)
	}
	for _, bad := range []string{"", "1\n0\n", "0\n2\n1 1\n", "0\n2\n3 5\n2 9\n", "0\n1\nx y\n", "0\n1\n-1 0\n"} {
		if _, err := decodeEpochCheckpoint([]byte(bad)); err == nil {
			t.Errorf("decode(%q) succeeded", bad)
		}
	}
}
