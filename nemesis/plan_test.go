package nemesis

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite golden files")

// TestPlanGolden pins the plan as a pure function of seed and config: the same seed gives the same plan.
func TestPlanGolden(t *testing.T) {
	spec := Spec{
		Schedule: []Step{
			{At: 3 * time.Second, Fault: Kill, Target: "leader(trial/0)", Duration: 2 * time.Second, Repeat: 5 * time.Second},
			{At: 4 * time.Second, Fault: Partition, Shape: RandomShape, Duration: time.Second},
		},
		Random: &Random{Faults: []Kind{Kill, Partition, Pause, PowerLoss}, Start: 2 * time.Second},
	}
	for _, seed := range []int64{1, 42} {
		got, _ := json.MarshalIndent(Plan(spec, seed, 30*time.Second), "", " ")
		again, _ := json.MarshalIndent(Plan(spec, seed, 30*time.Second), "", " ")
		if string(got) != string(again) {
			t.Fatalf("seed %d: plan is not a pure function of its inputs", seed)
		}
		path := filepath.Join("testdata", "plan-seed"+strings.TrimSpace(jsonInt(seed))+".golden.json")
		if *rewrite {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./nemesis -run Golden -rewrite)", err)
		}
		if string(want) != string(got) {
			t.Errorf("seed %d: plan differs from %s:\n%s", seed, path, got)
		}
	}
	a, b := Plan(spec, 1, 30*time.Second), Plan(spec, 2, 30*time.Second)
	if ja, jb := mustJSON(a), mustJSON(b); ja == jb {
		t.Error("seeds 1 and 2 gave the same plan: the seed does not reach the schedule")
	}
}

func TestPlanShape(t *testing.T) {
	spec := Spec{Schedule: []Step{{At: time.Second, Fault: Kill, Target: "leader(t/0)", Duration: 2 * time.Second, Repeat: 4 * time.Second}}}
	p := Plan(spec, 7, 10*time.Second)
	if len(p) != 3 || p[0].At != time.Second || p[1].At != 5*time.Second || p[2].Until != 11*time.Second {
		t.Fatalf("repeat expansion wrong: %+v", p)
	}
	r := Plan(Spec{Random: &Random{Faults: []Kind{Kill}, Interval: 2 * time.Second, Duration: time.Second, Stable: time.Second}}, 3, 20*time.Second)
	if len(r) < 5 {
		t.Fatalf("random schedule too sparse: %d faults", len(r))
	}
	for i := 1; i < len(r); i++ {
		if r[i].At < r[i-1].Until+time.Second {
			t.Fatalf("fault %d starts before the stable period after fault %d ends: %+v", i, i-1, r)
		}
	}
	if r[len(r)-1].Until > 20*time.Second {
		t.Fatalf("fault runs past the workload: %+v", r[len(r)-1])
	}
}

func TestValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Schedule: []Step{{Fault: "explode"}}}, "nemesis.schedule[0].fault"},
		{Spec{Schedule: []Step{{Fault: Kill, Target: "leader(trial)"}}}, "nemesis.schedule[0].target"},
		{Spec{Schedule: []Step{{Fault: Partition, Shape: "donut"}}}, "nemesis.schedule[0].shape"},
		{Spec{Schedule: []Step{{Fault: Kill, At: time.Minute}}}, "nemesis.schedule[0].at"},
		{Spec{Random: &Random{}}, "nemesis.random.faults"},
		{Spec{Random: &Random{Faults: []Kind{Kill}, Targets: []string{"nobody"}}}, "nemesis.random.targets"},
	} {
		err := tc.spec.Validate(10 * time.Second)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.spec, err, tc.want)
		}
	}
	ok := Spec{Schedule: []Step{{At: time.Second, Fault: Kill, Target: "leader(trial/2)", Duration: time.Second}}}
	if err := ok.Validate(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func jsonInt(i int64) string { b, _ := json.Marshal(i); return string(b) }
func mustJSON(v any) string  { b, _ := json.Marshal(v); return string(b) }
