package builtin

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/nemesis"
)

// TestNemesisRunnerEndToEnd carries out a small plan with the nemesis runner: kill the leader of r1/0 for a
// while, isolate another node and leave that to the final heal. It checks nemesis.jsonl and that the target
// is healthy after Heal, rf=3 partitions included.
func TestNemesisRunnerEndToEnd(t *testing.T) {
	tg := startTarget(t, nil)
	ctx := testCtx(t)
	createTopic(t, tg, "r1", 1, 1, nil)
	createTopic(t, tg, "r3", 1, 3, nil)
	leader, err := tg.Leader(ctx, "r1", 0)
	if err != nil || leader == "" {
		t.Fatalf("leader of r1/0: %q, %v", leader, err)
	}
	other := "node-1"
	if leader == other {
		other = "node-2"
	}
	path := filepath.Join(t.TempDir(), "nemesis.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	r := &nemesis.Runner{Cluster: tg, Log: nemesis.NewLog(f, start), Logger: testLogger(), Topics: []string{"r1"}}
	plan := []nemesis.Planned{
		{At: 0, Until: 1200 * time.Millisecond, Kind: nemesis.Kill, Target: "leader(r1/0)", Draw: 1},
		{At: 300 * time.Millisecond, Kind: nemesis.Partition, Shape: nemesis.IsolateNode, Target: other, Draw: 2},
	}
	if err := r.Validate(plan); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(ctx, start, plan); err != nil {
		t.Fatal(err)
	}
	if err := r.Heal(ctx, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tg.Healthy(ctx, []string{"r1"}); err != nil {
		t.Fatalf("not healthy after Heal: %v", err)
	}

	events, err := nemesis.ReadEvents(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		if e.Error != "" {
			t.Errorf("event with an error: %+v", e)
		}
		got = append(got, string(e.Fault)+" "+e.Phase+" "+strings.Join(e.Targets, ","))
	}
	want := []string{
		"heal stop node-1,node-2,node-3",
		"kill start " + leader,
		"kill stop " + leader,
		"partition start " + other,
		"partition stop " + other, // undone by Heal
	}
	// Concurrent faults may record in either order; each fault's start precedes its stop and Heal comes last.
	sorted := slices.Clone(got)
	slices.Sort(sorted)
	if !slices.Equal(sorted, want) || got[len(got)-1] != want[0] ||
		slices.Index(got, want[1]) > slices.Index(got, want[2]) || slices.Index(got, want[3]) > slices.Index(got, want[4]) {
		t.Fatalf("nemesis.jsonl events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if last := events[len(events)-1]; last.Detail != "healthy" {
		t.Fatalf("heal event detail %q, want healthy", last.Detail)
	}

	// r3's ISR lost the killed and the isolated nodes while they were away; the leader takes them back once
	// they have caught up.
	waitFor(t, 20*time.Second, "r3 back in sync", func() error { return tg.Healthy(ctx, []string{"r3"}) })
}
