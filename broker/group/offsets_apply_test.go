package group

import "testing"

// TestApplyCommittedKeepsStoreOrder: commits become visible in store order whatever order their waits end
// in: a commit stored earlier (a lower position) that completes later does not overwrite a later one, while
// partitions only it touched still take it, and loaded offsets (no position) are always overwritten.
func TestApplyCommittedKeepsStoreOrder(t *testing.T) {
	g := newGroup(nil, "g")
	a, b, c := TP{"t", 0}, TP{"t", 1}, TP{"t", 2}
	g.offsets[c] = Committed{Offset: 1} // loaded
	g.applyCommitted(map[TP]Committed{a: {Offset: 20}}, 7)
	g.applyCommitted(map[TP]Committed{a: {Offset: 10}, b: {Offset: 11}, c: {Offset: 12}}, 5)
	for tp, want := range map[TP]int64{a: 20, b: 11, c: 12} {
		if got := g.offsets[tp].Offset; got != want {
			t.Errorf("%v: %d, want %d", tp, got, want)
		}
	}
	g.applyCommitted(map[TP]Committed{b: {Offset: 30}}, 9)
	if got := g.offsets[b].Offset; got != 30 {
		t.Errorf("%v after a later commit: %d, want 30", b, got)
	}
}
