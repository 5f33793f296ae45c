package nemesis

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingCluster is a scripted stand-in for a target that records the calls the runner makes, so the
// runner's scheduling and undo logic is tested without a cluster (the built-in target's own tests prove the
// faults' effects).
type recordingCluster struct {
	mu      sync.Mutex
	calls   []string
	leader  string
	isr     []string
	down    map[string]bool
	healthy bool
}

func newRecording() *recordingCluster {
	return &recordingCluster{leader: "node-1", isr: []string{"node-1", "node-2", "node-3"}, down: map[string]bool{}, healthy: true}
}

func (c *recordingCluster) call(s string) {
	c.mu.Lock()
	c.calls = append(c.calls, s)
	c.mu.Unlock()
}
func (c *recordingCluster) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}
func (c *recordingCluster) Nodes() []string    { return []string{"node-1", "node-2", "node-3"} }
func (c *recordingCluster) Supports(Kind) bool { return true }
func (c *recordingCluster) Kill(_ context.Context, n []string) error {
	c.call("kill " + strings.Join(n, ","))
	c.mu.Lock()
	for _, x := range n {
		c.down[x] = true
	}
	c.mu.Unlock()
	return nil
}
func (c *recordingCluster) Stop(_ context.Context, n []string) error {
	c.call("stop " + strings.Join(n, ","))
	return nil
}
func (c *recordingCluster) Restart(_ context.Context, n []string) error {
	c.mu.Lock()
	var started []string
	for _, x := range n {
		if c.down[x] {
			started = append(started, x)
			delete(c.down, x)
		}
	}
	c.mu.Unlock()
	if len(started) > 0 {
		c.call("restart " + strings.Join(started, ","))
	}
	return nil
}
func (c *recordingCluster) PowerLoss(_ context.Context, n []string) error {
	c.call("power-loss " + strings.Join(n, ","))
	return nil
}
func (c *recordingCluster) Pause(_ context.Context, n []string) error {
	c.call("pause " + strings.Join(n, ","))
	return nil
}
func (c *recordingCluster) Resume(_ context.Context, n []string) error {
	c.call("resume " + strings.Join(n, ","))
	return nil
}
func (c *recordingCluster) Partition(_ context.Context, links []Link, m Mode) (func() error, error) {
	c.call(fmt.Sprintf("partition %d links %s plane=%q", len(links), m, links[0].Plane))
	c.mu.Lock()
	c.isr = []string{c.leader} // the leader shrinks the ISR when cut off from its followers
	c.mu.Unlock()
	return func() error { c.call("heal partition"); return nil }, nil
}
func (c *recordingCluster) LoseResponses(_ context.Context, n []string) (func() error, error) {
	c.call("lose-responses " + strings.Join(n, ","))
	return func() error { c.call("heal lose-responses"); return nil }, nil
}
func (c *recordingCluster) Corrupt(_ context.Context, n []string, fraction float64) (func() error, error) {
	c.call(fmt.Sprintf("corrupt %s %g", strings.Join(n, ","), fraction))
	return func() error { c.call("heal corrupt"); return nil }, nil
}
func (c *recordingCluster) ResetConnections(context.Context, []string) error { return nil }
func (c *recordingCluster) Latency(context.Context, []string, time.Duration, time.Duration) (func() error, error) {
	return func() error { return nil }, nil
}
func (c *recordingCluster) HealNetwork(context.Context) error { c.call("heal network"); return nil }
func (c *recordingCluster) Leader(context.Context, string, int32) (string, error) {
	return c.leader, nil
}
func (c *recordingCluster) Replicas(context.Context, string, int32) ([]string, error) {
	return c.Nodes(), nil
}
func (c *recordingCluster) ISR(context.Context, string, int32) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.isr), nil
}
func (c *recordingCluster) Controller(context.Context) (string, error) { return "node-3", nil }
func (c *recordingCluster) Healthy(context.Context, []string) error {
	if !c.healthy {
		return fmt.Errorf("partition trial/0 offline")
	}
	return nil
}

func TestRunnerStartsAndUndoesOnSchedule(t *testing.T) {
	c := newRecording()
	var buf bytes.Buffer
	start := time.Now()
	r := &Runner{Cluster: c, Log: NewLog(&buf, start), Topics: []string{"trial"}}
	plan := Plan(Spec{Schedule: []Step{
		{At: 10 * time.Millisecond, Fault: Kill, Target: "leader(trial/0)", Duration: 30 * time.Millisecond},
		{At: 20 * time.Millisecond, Fault: ControllerKill},
		{At: 30 * time.Millisecond, Fault: LoseResponses, Target: "node-2", Duration: 20 * time.Millisecond},
	}}, 1, time.Second)
	if err := r.Validate(plan); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background(), start, plan); err != nil {
		t.Fatal(err)
	}
	calls := c.Calls()
	for _, want := range []string{"kill node-1", "restart node-1", "kill node-3", "lose-responses node-2", "heal lose-responses"} {
		if !slices.Contains(calls, want) {
			t.Errorf("missing call %q in %v", want, calls)
		}
	}
	if slices.Contains(calls, "restart node-3") {
		t.Errorf("controller kill without duration must wait for heal: %v", calls)
	}
	if got := r.Active(); len(got) != 1 || got[0] != "controller-kill(node-3)" {
		t.Errorf("active faults = %v", got)
	}
	if err := r.Heal(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.Calls(), "restart node-3") || len(r.Active()) != 0 {
		t.Errorf("heal did not undo the controller kill: %v", c.Calls())
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 7 { // 3 starts, 3 stops, 1 heal
		t.Fatalf("nemesis.jsonl has %d lines:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], `"fault":"kill","targets":["node-1"],"phase":"start"`) {
		t.Errorf("first event: %s", lines[0])
	}
}

func TestUncleanElectionComposite(t *testing.T) {
	c := newRecording()
	r := &Runner{Cluster: c, Topics: []string{"trial"}, Settle: 2 * time.Second}
	start := time.Now()
	plan := []Planned{{At: 0, Kind: UncleanElection, Target: "leader(trial/0)"}}
	if err := r.Run(context.Background(), start, plan); err != nil {
		t.Fatal(err)
	}
	want := []string{`partition 4 links drop plane="data"`, "kill node-1", "heal partition"}
	if got := c.Calls(); !slices.Equal(got, want) {
		t.Fatalf("calls = %v, want %v", got, want)
	}
	if err := r.Heal(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(c.Calls(), "restart node-1") {
		t.Error("heal must restart the old leader")
	}
}

func TestHealReportsAnUnrecoveredCluster(t *testing.T) {
	c := newRecording()
	c.healthy = false
	r := &Runner{Cluster: c}
	err := r.Heal(context.Background(), 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not recover") || !strings.Contains(err.Error(), "trial/0 offline") {
		t.Fatalf("Heal = %v, want a did-not-recover error naming the cause", err)
	}
}

func TestValidateRefusesClientFaultsWithoutClients(t *testing.T) {
	r := &Runner{Cluster: newRecording()}
	err := r.Validate([]Planned{{Kind: CrashConsumer}})
	if err == nil || !strings.Contains(err.Error(), "crash-consumer") {
		t.Fatalf("Validate = %v", err)
	}
}

func TestCorruptStepDefaultsAndValidation(t *testing.T) {
	c := newRecording()
	r := &Runner{Cluster: c, Topics: []string{"trial"}}
	spec := Spec{Schedule: []Step{
		{At: 0, Fault: Corrupt, Target: "leader(trial/0)", Duration: 10 * time.Millisecond},
		{At: 20 * time.Millisecond, Fault: Corrupt, Fraction: 0.25, Duration: 10 * time.Millisecond},
	}}
	if err := spec.Validate(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background(), time.Now(), Plan(spec, 1, time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"corrupt node-1 0.05", "corrupt node-1,node-2,node-3 0.25", "heal corrupt"} {
		if !slices.Contains(c.Calls(), want) {
			t.Errorf("missing call %q in %v", want, c.Calls())
		}
	}
	for _, bad := range []Step{{Fault: Corrupt, Fraction: 1.5}, {Fault: Kill, Fraction: 0.5}} {
		err := (&Spec{Schedule: []Step{bad}}).Validate(time.Second)
		if err == nil || !strings.Contains(err.Error(), "nemesis.schedule[0].fraction") {
			t.Errorf("Validate(%+v) = %v, want an error naming nemesis.schedule[0].fraction", bad, err)
		}
	}
}

// EndFaults undoes the faults a closing window cut short without waiting for health; Heal then has nothing left
// to undo but still checks recovery.
func TestEndFaultsUndoesWhatTheWindowCutShort(t *testing.T) {
	c := newRecording()
	r := &Runner{Cluster: c, Topics: []string{"trial"}}
	plan := Plan(Spec{Schedule: []Step{{At: 0, Fault: Pause, Target: "node-2", Duration: time.Hour}}}, 1, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(r.Active()) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_ = r.Run(ctx, time.Now(), plan)
	if len(r.Active()) != 1 {
		t.Fatalf("active after the window: %v", r.Active())
	}
	if err := r.EndFaults(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(r.Active()) != 0 || !slices.Contains(c.Calls(), "resume node-2") {
		t.Fatalf("EndFaults left %v active; calls %v", r.Active(), c.Calls())
	}
}
