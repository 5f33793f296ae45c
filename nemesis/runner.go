package nemesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
)

// Clients is what client faults need from the workload: named producers and consumers that can crash and
// come back (under a new process number), and consumers that join or leave a group.
type Clients interface {
	Producers() []string
	Consumers() []string
	CrashProducer(ctx context.Context, name string) error
	RestartProducer(ctx context.Context, name string) error
	CrashConsumer(ctx context.Context, name string) error
	RestartConsumer(ctx context.Context, name string) error
	// JoinConsumer starts an extra group member and returns its name; LeaveConsumer stops one cleanly.
	JoinConsumer(ctx context.Context) (string, error)
	LeaveConsumer(ctx context.Context, name string) error
}

// Runner carries out a plan against a cluster (and the workload's clients), recording every start and stop.
// Faults may overlap; each runs in its own goroutine, and Heal undoes whatever is still active.
type Runner struct {
	Cluster Cluster
	Clients Clients // nil when the workload offers no client faults
	Log     *Log
	Logger  *slog.Logger
	// Topics are the trial's topics, for health checks.
	Topics []string
	// Settle bounds how long composite faults wait for the cluster to reach a state (e.g. the ISR shrinking).
	Settle time.Duration

	mu     sync.Mutex // guards active
	active map[int]*activeFault
	wg     sync.WaitGroup
}

type activeFault struct {
	p       Planned
	targets []string
	undo    func(context.Context) error
}

// fault starts one planned fault: it resolves targets, acts, and returns what to do to undo it (nil if the
// fault ends by itself).
type fault func(ctx context.Context, r *Runner, p Planned, rng *rand.Rand) (targets []string, detail string, undo func(context.Context) error, err error)

// Validate refuses a plan the target or the workload cannot carry out, naming the fault.
func (r *Runner) Validate(plan []Planned) error {
	for _, p := range plan {
		if _, ok := faults[p.Kind]; !ok {
			return fmt.Errorf("nemesis: fault %q has no implementation", p.Kind)
		}
		if p.Kind.IsClientFault() {
			if r.Clients == nil {
				return fmt.Errorf("nemesis: fault %q needs workload clients, and this run has none", p.Kind)
			}
			continue
		}
		for _, need := range requires[p.Kind] {
			if !r.Cluster.Supports(need) {
				return fmt.Errorf("nemesis: fault %q is not supported by this target (it needs %s)", p.Kind, need)
			}
		}
	}
	return nil
}

// requires lists the basic faults a kind is built from.
var requires = map[Kind][]Kind{
	Kill: {Kill}, Stop: {Stop}, Pause: {Pause}, PowerLoss: {PowerLoss}, Partition: {Partition},
	LoseResponses: {LoseResponses}, Latency: {Latency}, ResetConns: {ResetConns}, Corrupt: {Corrupt},
	UncleanElection: {Partition, Kill}, RetryStorm: {LoseResponses, ResetConns}, RollingBounce: {Stop},
	ControllerKill: {Kill}, PowerLossAll: {PowerLoss},
}

// Run carries out the plan; times are relative to start. It returns when every planned fault has started and
// every one with an end has been undone, or when ctx ends (faults still active are left for Heal).
func (r *Runner) Run(ctx context.Context, start time.Time, plan []Planned) error {
	r.mu.Lock() // status lines read the active faults while the run begins
	if r.active == nil {
		r.active = map[int]*activeFault{}
	}
	r.mu.Unlock()
	if r.Settle == 0 {
		r.Settle = 15 * time.Second
	}
	var errs []error
	var emu sync.Mutex
	for i, p := range plan {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.runOne(ctx, start, i, p); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

func (r *Runner) runOne(ctx context.Context, start time.Time, id int, p Planned) error {
	if !sleepUntil(ctx, start.Add(p.At)) {
		return nil
	}
	rng := rand.New(rand.NewPCG(p.Draw, uint64(id)))
	targets, detail, undo, err := faults[p.Kind](ctx, r, p, rng)
	ev := Event{Fault: p.Kind, Targets: targets, Phase: PhaseStart, Detail: detail}
	if err != nil {
		ev.Error = err.Error()
		r.record(ev)
		r.logger().Warn("fault failed to start", "fault", p.Kind, "err", err)
		// A fault that could not start (no leader to kill right now) is recorded and skipped, not fatal.
		return nil
	}
	r.record(ev)
	if undo == nil {
		r.record(Event{Fault: p.Kind, Targets: targets, Phase: PhaseStop, Detail: "ended by itself"})
		return nil
	}
	r.mu.Lock()
	r.active[id] = &activeFault{p: p, targets: targets, undo: undo}
	r.mu.Unlock()
	if p.Until == 0 || !sleepUntil(ctx, start.Add(p.Until)) {
		return nil // left for Heal
	}
	return r.stop(ctx, id)
}

// stop undoes one active fault, if it is still active.
func (r *Runner) stop(ctx context.Context, id int) error {
	r.mu.Lock()
	a := r.active[id]
	delete(r.active, id)
	r.mu.Unlock()
	if a == nil {
		return nil
	}
	err := a.undo(ctx)
	ev := Event{Fault: a.p.Kind, Targets: a.targets, Phase: PhaseStop}
	if err != nil {
		ev.Error = err.Error()
	}
	r.record(ev)
	if err != nil {
		return fmt.Errorf("undoing %s on %v: %w", a.p.Kind, a.targets, err)
	}
	return nil
}

// EndFaults undoes every fault still active (those the plan would have undone later, and those it leaves to the
// final heal), without waiting for the cluster to recover. A run calls it when its fault window closes, before
// stopping the workload, so that sends stuck behind a fault the window cut short can still complete.
func (r *Runner) EndFaults(ctx context.Context) error {
	r.mu.Lock()
	ids := make([]int, 0, len(r.active))
	for id := range r.active {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	sort.Ints(ids)
	var errs []error
	for _, id := range ids {
		if err := r.stop(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Heal undoes every active fault, removes every network fault, starts every node, and waits until the cluster
// is healthy (every partition led, every ISR complete) or timeout passes.
func (r *Runner) Heal(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var errs []error
	if err := r.EndFaults(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := r.Cluster.HealNetwork(ctx); err != nil {
		errs = append(errs, fmt.Errorf("healing the network: %w", err))
	}
	if err := r.Cluster.Resume(ctx, r.Cluster.Nodes()); err != nil && !errors.Is(err, ErrUnsupported) {
		errs = append(errs, fmt.Errorf("resuming nodes: %w", err))
	}
	if err := r.Cluster.Restart(ctx, r.Cluster.Nodes()); err != nil {
		errs = append(errs, fmt.Errorf("starting nodes: %w", err))
	}
	var last error
	for {
		if last = r.Cluster.Healthy(ctx, r.Topics); last == nil {
			break
		}
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			errs = append(errs, fmt.Errorf("cluster did not recover within %v: %w", timeout, last))
			break
		}
	}
	r.record(Event{Fault: "heal", Targets: r.Cluster.Nodes(), Phase: PhaseStop, Detail: healDetail(last)})
	return errors.Join(errs...)
}

func healDetail(err error) string {
	if err != nil {
		return "not healthy: " + err.Error()
	}
	return "healthy"
}

// Active describes the faults in force, for a status line.
func (r *Runner) Active() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.active))
	for _, a := range r.active {
		out = append(out, string(a.p.Kind)+"("+strings.Join(a.targets, ",")+")")
	}
	sort.Strings(out)
	return out
}

func (r *Runner) record(e Event) {
	if r.Log == nil {
		return
	}
	if _, err := r.Log.Add(e); err != nil {
		r.logger().Error("recording nemesis event", "err", err)
	}
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || !sleepUntil(ctx, time.Now().Add(50*time.Millisecond)) {
			return false
		}
	}
}
