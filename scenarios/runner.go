package scenarios

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/checker"
	"github.com/kafkatrial/kafkatrial/history"
	"github.com/kafkatrial/kafkatrial/nemesis"
	"github.com/kafkatrial/kafkatrial/results"
	"github.com/kafkatrial/kafkatrial/workloads"
)

// Exit codes (contract.md).
const (
	ExitOK        = 0
	ExitViolated  = 1
	ExitUsage     = 2
	ExitCannotRun = 3
)

// Options control one run.
type Options struct {
	// Out is the run directory (default out/<id>-<seed>).
	Out string
	// Seed overrides the scenario's seed; 0 keeps it, and a scenario without one gets a random seed.
	Seed int64
	// Target overrides the scenario's target.
	Target string
	// Status receives progress: the reproduce line first and last, phases, and a status line. nil: silent.
	Status io.Writer
	// Live rewrites one status line in place (for a terminal) instead of printing a line every few seconds.
	Live bool
	// Logger receives the cluster's and clients' logs (nil: discarded; broker logs also go to nodes/).
	Logger *slog.Logger
	// Args are the command-line arguments, besides the scenario, --seed and --target, that shaped the scenario
	// (--set key=value, --bootstrap ..., --external-config ...), one token each. The reproduce line repeats
	// them so that it reruns this trial, not the scenario as bundled.
	Args []string
}

// Result is a finished run.
type Result struct {
	Dir      string
	Seed     int64
	Verdict  *checker.Verdict
	ExitCode int
	// Command is the command line that reruns this trial (printed first and last, and in the reports).
	Command string
	// Err says why the trial could not run or complete (exit 3), or what went wrong around it.
	Err error
}

// Reproduce is the command line that reruns this trial; id is used only for a result that never started.
func (r *Result) Reproduce(id string) string {
	if r.Command != "" {
		return r.Command
	}
	return results.ReproduceLine(id, r.Seed)
}

// ReproduceLine is the command that reruns a trial of s with seed: the scenario's file (or bundled id), the
// seed, the target when one was chosen, and every argument that changed the scenario, shell-quoted.
func ReproduceLine(s *Scenario, seed int64, target string, args []string) string {
	src := s.Source
	if src == "" {
		src = s.ID
	}
	parts := []string{"kafkatrial", "run", shellQuote(src), "--seed", strconv.FormatInt(seed, 10)}
	if target != "" {
		parts = append(parts, "--target", shellQuote(target))
	}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

// shellQuote leaves a word of safe characters as it is and single-quotes anything else.
func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,/:=@%+") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// RunID loads a bundled scenario or a YAML file and runs it: the Go API for gating in `go test`.
func RunID(ctx context.Context, idOrFile string, opts Options) (*Result, error) {
	s, err := Load(idOrFile)
	if err != nil {
		return &Result{ExitCode: ExitUsage, Err: err}, err
	}
	return Run(ctx, s, opts)
}

// Run carries out one trial: start the target, create topics, run the workload with faults from the end of
// warm-up, heal, final read, check, and write the run directory. Cancelling ctx (Ctrl-C) stops the workload
// early but still heals, reads and checks, so the history is judged. The returned error is the reason for a
// nonzero exit other than a violated guarantee.
func Run(ctx context.Context, s *Scenario, opts Options) (*Result, error) {
	res := &Result{Seed: opts.Seed}
	if res.Seed == 0 {
		res.Seed = s.Seed
	}
	if res.Seed == 0 {
		res.Seed = rand.Int64N(1<<31-1) + 1
	}
	s.Seed = res.Seed
	if opts.Target != "" {
		s.Target = opts.Target
	}
	if err := s.Validate(); err != nil {
		res.ExitCode, res.Err = ExitUsage, err
		return res, err
	}
	s.ApplyTargetDefaults()
	res.Dir = opts.Out
	if res.Dir == "" {
		res.Dir = filepath.Join("out", fmt.Sprintf("%s-%d", s.ID, res.Seed))
	}
	res.Command = ReproduceLine(s, res.Seed, opts.Target, opts.Args)
	st := newStatus(opts.Status, opts.Live)
	st.line(res.Command)
	defer func() { st.line(res.Command) }()

	if err := os.MkdirAll(res.Dir, 0o755); err != nil {
		return res.cannot(fmt.Errorf("creating run directory: %w", err))
	}
	if err := writeRunInfo(res.Dir, RunInfo{Reproduce: res.Command, Notes: []string{}}); err != nil {
		return res.cannot(err)
	}
	yml, err := s.Marshal()
	if err != nil {
		return res.cannot(fmt.Errorf("encoding scenario: %w", err))
	}
	if err := os.WriteFile(filepath.Join(res.Dir, results.ScenarioFile), yml, 0o644); err != nil {
		return res.cannot(fmt.Errorf("writing scenario.yaml: %w", err))
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	st.phase("setup")
	scratch, err := os.MkdirTemp("", "kafkatrial-"+s.ID+"-")
	if err != nil {
		return res.cannot(fmt.Errorf("creating scratch directory: %w", err))
	}
	defer os.RemoveAll(scratch)
	tgt, err := startTarget(ctx, s.Target, TargetConfig{Nodes: s.Cluster.Nodes, Timing: s.Cluster.Timing, Broker: s.Cluster.Broker,
		Image: s.Cluster.Image, Bootstrap: s.Cluster.Bootstrap, ExternalConfig: s.Cluster.ExternalConfig, Dir: scratch, Seed: res.Seed, Logger: logger})
	if err != nil {
		return res.cannot(fmt.Errorf("starting the %s cluster: %w", s.Target, err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := tgt.Collect(cctx, filepath.Join(res.Dir, results.NodesDir)); err != nil {
			logger.Warn("collecting node logs", "err", err)
		}
		if err := tgt.Close(cctx); err != nil {
			logger.Warn("stopping the cluster", "err", err)
		}
	}()
	topicNames := make([]string, len(s.Topics))
	for i, t := range s.Topics {
		topicNames[i] = t.Name
	}
	if err := createTopics(ctx, tgt, s.Topics, topicNames); err != nil {
		return res.cannot(err)
	}
	plan := nemesis.Plan(s.Nemesis, res.Seed, s.Duration)

	hf, err := os.Create(filepath.Join(res.Dir, results.HistoryFile))
	if err != nil {
		return res.cannot(fmt.Errorf("creating history: %w", err))
	}
	defer hf.Close()
	nf, err := os.Create(filepath.Join(res.Dir, results.NemesisFile))
	if err != nil {
		return res.cannot(fmt.Errorf("creating nemesis log: %w", err))
	}
	defer nf.Close()
	start := time.Now()
	hw := history.NewWriter(hf, start)
	rec := workloads.NewRecorder(hw)
	nlog := nemesis.NewLog(nf, start)

	// The workload runs until its time is up or the user interrupts; heal, final read and check run after
	// either, on their own bounded contexts.
	wctx, stopWorkload := context.WithCancel(context.Background())
	defer stopWorkload()
	clients := newClientSet(wctx, rec, tgt.Bootstrap(), tgt.Dial(), res.Dir)
	nem := &nemesis.Runner{Cluster: tgt, Clients: clients, Log: nlog, Logger: logger, Topics: topicNames}
	if err := nem.Validate(plan); err != nil {
		res.ExitCode, res.Err = ExitUsage, err
		return res, err
	}
	if err := startClients(clients, s, res.Seed); err != nil {
		stopWorkload()
		_ = clients.stop(time.Second)
		return res.cannot(err)
	}
	st.countFrom()

	st.phase("warmup")
	interrupted := !wait(ctx, s.Warmup, st, clients, nem)
	var nemErr error
	if !interrupted {
		st.phase("faults")
		nctx, stopNemesis := context.WithCancel(ctx)
		var nwg sync.WaitGroup
		nwg.Add(1)
		go func() {
			defer nwg.Done()
			nemErr = nem.Run(nctx, time.Now(), plan)
		}()
		interrupted = !wait(ctx, s.Duration, st, clients, nem)
		stopNemesis()
		nwg.Wait()
		if !interrupted {
			// A fault the window cut short would otherwise hold sends until the workload's stop gives up on
			// them, and count as unavailability the harness made. The final heal still waits for recovery.
			ectx, ecancel := context.WithTimeout(context.Background(), s.Nemesis.HealTimeout)
			if err := nem.EndFaults(ectx); err != nil {
				logger.Warn("ending the faults still active", "err", err)
			}
			ecancel()
		}
	}
	if interrupted {
		st.line("interrupted: stopping the workload, healing and checking what was recorded")
	}
	st.phase("stopping workload")
	stopWorkload()
	clientErr := clients.stop(2 * time.Second)

	st.phase("heal")
	hctx, hcancel := context.WithTimeout(context.Background(), s.Nemesis.HealTimeout+5*time.Second)
	healErr := nem.Heal(hctx, s.Nemesis.HealTimeout)
	hcancel()

	st.phase("final read")
	fctx, fcancel := context.WithTimeout(context.Background(), s.FinalReadTimeout+5*time.Second)
	_, frErr := workloads.FinalRead(fctx, rec, tgt.Bootstrap(), workloads.FinalReadConfig{Topics: topicNames, Timeout: s.FinalReadTimeout, Dial: tgt.Dial()})
	fcancel()
	if err := hw.Close(); err != nil {
		return res.cannot(fmt.Errorf("closing history: %w", err))
	}

	st.phase("check")
	// The run's own notes go to run.json first, so `kafkatrial check` keeps them.
	info := RunInfo{Reproduce: res.Command, Notes: []string{}}
	for _, e := range []struct {
		what string
		err  error
	}{{"nemesis", nemErr}, {"workload", clientErr}, {"heal", healErr}, {"final read", frErr}} {
		if e.err != nil {
			info.Notes = append(info.Notes, e.what+": "+e.err.Error())
		}
	}
	if interrupted {
		info.Interrupted = true
		info.Notes = append(info.Notes, "the run was interrupted before the workload's time was up")
	}
	if err := writeRunInfo(res.Dir, info); err != nil {
		return res.cannot(err)
	}
	v, noneInjected, err := judge(res.Dir, s, s.LinearizabilityTimeout)
	if err != nil {
		return res.cannot(err)
	}
	if err := writeVerdictAndReports(res.Dir, v); err != nil {
		return res.cannot(err)
	}
	res.Verdict = v
	res.ExitCode = exitCode(v, noneInjected)
	if noneInjected && res.ExitCode == ExitCannotRun {
		res.Err = fmt.Errorf("%s: none of the scheduled faults was injected (see nemesis.jsonl and the notes in %s)", s.ID, filepath.Join(res.Dir, results.ReportMarkdownFile))
	}
	if res.ExitCode == ExitOK && healErr != nil {
		res.ExitCode, res.Err = ExitCannotRun, fmt.Errorf("the cluster did not recover: %w", healErr)
	}
	st.done(fmt.Sprintf("%s: %s (%s)", s.ID, results.Headline(v), res.Dir))
	return res, res.Err
}

func (r *Result) cannot(err error) (*Result, error) {
	r.ExitCode, r.Err = ExitCannotRun, err
	return r, err
}

// exitCodeFor maps a verdict to the exit code, as `kafkatrial check` does: a violated guarantee or a
// demonstration that did not reproduce fails the run (1); an undecided claim (linearizability out of time, a
// partition never read back) is never a pass: the trial could not be judged (3).
func exitCodeFor(v *checker.Verdict) int {
	switch v.Outcome() {
	case checker.Passed:
		return ExitOK
	case checker.Failed:
		return ExitViolated
	}
	return ExitCannotRun
}

// exitCode maps a verdict to the exit code; a run whose scheduled faults were all missed is never a pass.
func exitCode(v *checker.Verdict, noneInjected bool) int {
	c := exitCodeFor(v)
	if noneInjected && c == ExitOK {
		return ExitCannotRun
	}
	return c
}

// CheckDir judges the history of a run directory against the scenario (nil: anomalies only) and returns the
// verdict without writing it: the checker's verdict, the faults that were not injected (nemesis.jsonl), and
// the run's own notes (run.json).
func CheckDir(dir string, s *Scenario) (*checker.Verdict, error) {
	var timeout time.Duration
	if s != nil {
		timeout = s.LinearizabilityTimeout
	}
	v, _, err := judge(dir, s, timeout)
	return v, err
}

// judge checks dir's history against s (nil: anomalies only) with the given linearizability budget, and
// reports whether faults were planned and none was injected.
func judge(dir string, s *Scenario, linearizabilityTimeout time.Duration) (*checker.Verdict, bool, error) {
	hres, err := history.ReadFile(filepath.Join(dir, results.HistoryFile))
	if err != nil {
		return nil, false, err
	}
	return judgeOps(dir, hres, s, linearizabilityTimeout)
}

func judgeOps(dir string, hres history.ReadResult, s *Scenario, linearizabilityTimeout time.Duration) (*checker.Verdict, bool, error) {
	opts := checker.Options{VisualizeDir: dir, LinearizabilityTimeout: linearizabilityTimeout}
	if s != nil {
		opts.Scenario, opts.Seed, opts.Expect = s.ID, s.Seed, s.Expect
	}
	v, err := checker.Check(hres.Ops, opts)
	if err != nil {
		return nil, false, fmt.Errorf("checking %s: %w", dir, err)
	}
	if hres.TornTail {
		v.Notes = append(v.Notes, "history.jsonl: the last line was torn (the writer stopped mid-line) and was dropped")
	}
	info, err := ReadRunInfo(dir)
	if err != nil {
		return nil, false, err
	}
	noneInjected := false
	if s != nil {
		events, err := nemesis.ReadEvents(filepath.Join(dir, results.NemesisFile))
		switch {
		case err == nil:
			noneInjected = judgeFaults(v, len(nemesis.Plan(s.Nemesis, s.Seed, s.Duration)), events,
				info != nil && info.Interrupted)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, false, err
		}
	}
	if info != nil {
		v.Notes = append(v.Notes, info.Notes...)
	}
	return v, noneInjected, nil
}

// RunInfoFile holds what a run knew that its history does not: the command that reruns it and the run's own
// notes (interrupted, a heal that failed, ...). `kafkatrial check` and `kafkatrial report` keep both.
const RunInfoFile = "run.json"

// RunInfo is run.json.
type RunInfo struct {
	Reproduce string   `json:"reproduce"`
	Notes     []string `json:"notes"`
	// Interrupted: the run was stopped (Ctrl-C) before the workload's time was up, so faults planned for
	// later were never due.
	Interrupted bool `json:"interrupted,omitempty"`
}

func writeRunInfo(dir string, info RunInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", RunInfoFile, err)
	}
	if err := os.WriteFile(filepath.Join(dir, RunInfoFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", RunInfoFile, err)
	}
	return nil
}

// ReadRunInfo reads dir's run.json; nil without an error when there is none (a directory from an older
// kafkatrial, or one made by hand).
func ReadRunInfo(dir string) (*RunInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, RunInfoFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", RunInfoFile, err)
	}
	var info RunInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, RunInfoFile), err)
	}
	return &info, nil
}

// LoadRun loads a run directory for reporting (results.Load) with the reproduce line the run printed.
func LoadRun(dir string) (*results.Run, error) {
	run, err := results.Load(dir)
	if err != nil {
		return nil, err
	}
	info, err := ReadRunInfo(dir)
	if err != nil {
		return nil, err
	}
	if info != nil && info.Reproduce != "" {
		run.Meta.Reproduce = info.Reproduce
	}
	return run, nil
}

func writeVerdictAndReports(dir string, v *checker.Verdict) error {
	if err := v.WriteFile(filepath.Join(dir, results.VerdictFile)); err != nil {
		return err
	}
	run, err := LoadRun(dir)
	if err != nil {
		return err
	}
	return run.WriteReports()
}

// startClients starts the scenario's producers and consumers, each with a seed of its own.
func startClients(c *clientSet, s *Scenario, seed int64) error {
	parts := map[string]int32{}
	for _, t := range s.Topics {
		parts[t.Name] = t.Partitions
	}
	for gi, g := range s.Workload.Producers {
		for i := 0; i < g.Count; i++ {
			name := fmt.Sprintf("producer-%d", len(c.Producers()))
			cfg := workloads.DefaultProducerConfig(g.Topic, parts[g.Topic])
			cfg.Acks = g.Acks
			cfg.EnableIdempotence = *g.EnableIdempotence
			cfg.Retries = *g.Retries
			cfg.MaxInFlight = g.MaxInFlightRequestsPerConnection
			cfg.RequestTimeout = g.RequestTimeoutMs.D()
			cfg.Linger = g.LingerMs.D()
			if g.RetryBackoffMs > 0 {
				cfg.RetryBackoff = g.RetryBackoffMs.D()
			}
			if g.RetryBackoffMaxMs > 0 {
				cfg.RetryBackoffMax = g.RetryBackoffMaxMs.D()
			}
			cfg.DeliveryTimeout = max(g.DeliveryTimeoutMs.D(), cfg.Linger+cfg.RequestTimeout)
			cfg.BatchSize = int32(g.BatchSize)
			cfg.CompressionType = g.CompressionType
			cfg.Async = g.Mode == "async"
			cfg.Rate = float64(g.Rate)
			cfg.Seed = nemesis.SubSeed(seed, fmt.Sprintf("producers[%d]/%d", gi, i))
			if err := c.addProducer(name, cfg); err != nil {
				return err
			}
		}
	}
	for _, g := range s.Workload.Consumers {
		for i := 0; i < g.Count; i++ {
			name := fmt.Sprintf("consumer-%d", len(c.Consumers()))
			cfg := workloads.DefaultConsumerConfig(g.GroupID, g.Topics...)
			cfg.EnableAutoCommit = *g.EnableAutoCommit
			cfg.AutoCommitInterval = g.AutoCommitIntervalMs.D()
			cfg.IsolationLevel = g.IsolationLevel
			cfg.AutoOffsetReset = g.AutoOffsetReset
			cfg.SessionTimeout = g.SessionTimeoutMs.D()
			cfg.MaxPollRecords = g.MaxPollRecords
			// Kafka's rule of thumb (heartbeat.interval.ms at most a third of the session) keeps short trial
			// sessions valid; franz-go's 3s default would exceed a 2s session.
			cfg.Opts = append(cfg.Opts, kgo.HeartbeatInterval(cfg.SessionTimeout/3))
			cfg.Strategy = g.Commit
			if g.Commit == "with-results" {
				cfg.Strategy = workloads.StrategyDirect
			}
			cfg.Processing = g.Processing
			cfg.ProcessTime = g.ProcessTime
			if err := c.addConsumer(name, cfg); err != nil {
				return err
			}
		}
	}
	return nil
}

// createTopics creates the scenario's topics with their configs and waits until every partition is led and
// fully in sync.
func createTopics(ctx context.Context, tgt Target, topics []Topic, names []string) error {
	opts := []kgo.Opt{kgo.SeedBrokers(tgt.Bootstrap()...), kgo.RetryTimeout(10 * time.Second)}
	if d := tgt.Dial(); d != nil {
		opts = append(opts, kgo.Dialer(d))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("connecting an admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, t := range topics {
		configs := map[string]*string{}
		for k, v := range t.Configs {
			configs[k] = &v
		}
		resp, err := adm.CreateTopic(cctx, t.Partitions, t.ReplicationFactor, configs, t.Name)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return fmt.Errorf("creating topic %s: %w", t.Name, err)
		}
	}
	var last error
	for cctx.Err() == nil {
		if last = tgt.Healthy(cctx, names); last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("topics %s not led and in sync within 30s: %v", strings.Join(names, ", "), last)
}

// wait lets the workload run for d, updating the status line; false if ctx ended first.
func wait(ctx context.Context, d time.Duration, st *status, c *clientSet, nem *nemesis.Runner) bool {
	// One ticker for the status line and one timer for the end: a tick per second, never two at once (two
	// ticks microseconds apart would show a rate of 0/s).
	end := time.NewTimer(d)
	defer end.Stop()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-end.C:
			return true
		case <-t.C:
			ok, fail, info := c.sendCounts()
			st.tick(ok, fail, info, nem.Active())
		}
	}
}
