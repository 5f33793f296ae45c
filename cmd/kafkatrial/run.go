package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kafkatrial/kafkatrial/results"
	"github.com/kafkatrial/kafkatrial/scenarios"
)

// runFlags are shared by run, suite and matrix.
type runFlags struct {
	bootstrap      []string
	externalConfig string
	seed           int64
	out            string
	target         string
	sets           []string
	quiet          bool
	verbose        bool
}

// register adds the shared flags; outDefault describes --out's default for this command.
func (f *runFlags) register(cmd *cobra.Command, withSet bool, outDefault string) {
	cmd.Flags().Int64Var(&f.seed, "seed", 0, "seed driving faults, targets and workload choices (0: the scenario's, else random)")
	cmd.Flags().StringVar(&f.out, "out", "", "output directory (default "+outDefault+")")
	cmd.Flags().StringVar(&f.target, "target", "", "builtin (default), docker or external")
	cmd.Flags().StringSliceVar(&f.bootstrap, "bootstrap", nil, "host:port,... of a cluster kafkatrial did not start (implies --target external)")
	cmd.Flags().StringVar(&f.externalConfig, "external-config", "", "YAML file of fault commands for --target external (see target/external/example.yaml)")
	cmd.Flags().BoolVarP(&f.quiet, "quiet", "q", false, "print only the reproduce line and the outcome")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "print cluster and client logs to stderr")
	if withSet {
		cmd.Flags().StringArrayVar(&f.sets, "set", nil, "override a scenario key by its Kafka name, e.g. --set acks=1 (repeatable)")
	}
}

// options builds the runner's options: a live status line on a terminal, plain lines otherwise.
func (f *runFlags) options(out io.Writer) scenarios.Options {
	o := scenarios.Options{Out: f.out, Seed: f.seed, Target: f.target, Status: out, Args: f.reproduceArgs()}
	if st, err := os.Stdout.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 && out == os.Stdout {
		o.Live = true
	}
	if f.quiet {
		o.Status, o.Live = quietWriter{out}, false
	}
	if f.verbose {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return o
}

// reproduceArgs are the flags that changed the scenario, as the reproduce line repeats them (--seed and
// --target are added by the runner).
func (f *runFlags) reproduceArgs() []string {
	var args []string
	for _, kv := range f.sets {
		args = append(args, "--set", kv)
	}
	if len(f.bootstrap) > 0 {
		args = append(args, "--bootstrap", strings.Join(f.bootstrap, ","))
	}
	if f.externalConfig != "" {
		args = append(args, "--external-config", f.externalConfig)
	}
	return args
}

// quietWriter passes through only the reproduce line and the final outcome line.
type quietWriter struct{ w io.Writer }

func (q quietWriter) Write(p []byte) (int, error) {
	s := string(p)
	if len(s) > 0 && (s[0] == '[' || s[0] == '\r') {
		return len(p), nil
	}
	return q.w.Write(p)
}

// interruptible returns a context cancelled by the first Ctrl-C (the run then heals and checks what it
// recorded); a second Ctrl-C kills the process at once.
func interruptible() (context.Context, func()) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // restore default handling: the next signal terminates
	}()
	return ctx, stop
}

// applyTarget points the scenario at an external cluster when --bootstrap is given.
func (f *runFlags) applyTarget(s *scenarios.Scenario) error {
	if f.externalConfig != "" {
		if _, err := os.Stat(f.externalConfig); err != nil {
			return fmt.Errorf("--external-config: %w", err)
		}
		s.Cluster.ExternalConfig = f.externalConfig
	}
	if len(f.bootstrap) > 0 {
		s.Cluster.Bootstrap = f.bootstrap
		if f.target == "" {
			f.target = "external"
		}
	}
	if f.target == "external" && len(s.Cluster.Bootstrap) == 0 {
		return fmt.Errorf("--target external needs --bootstrap host:port,...")
	}
	if f.target != "" {
		// Validate against the target now, so a fault it cannot carry out is refused before anything runs.
		s.Target = f.target
		return s.Validate()
	}
	return nil
}

// load reads a scenario and applies the --set overrides and the target flags; errors are usage errors.
func (f *runFlags) load(idOrFile string) (*scenarios.Scenario, error) {
	s, err := scenarios.Load(idOrFile)
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	if err := f.prepare(s); err != nil {
		return nil, withCode(exitUsage, fmt.Errorf("%s: %w", idOrFile, err))
	}
	return s, nil
}

// prepare applies the --set overrides and the target flags to a loaded scenario.
func (f *runFlags) prepare(s *scenarios.Scenario) error {
	if err := applySets(s, f.sets); err != nil {
		return err
	}
	return f.applyTarget(s)
}

func applySets(s *scenarios.Scenario, sets []string) error {
	for _, kv := range sets {
		k, v, ok := cutKV(kv)
		if !ok {
			return fmt.Errorf("--set %q: want key=value", kv)
		}
		if err := s.Set(k, v); err != nil {
			return err
		}
	}
	return s.Validate()
}

func cutKV(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}

func init() {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run <scenario-id or file.yaml>",
		Short: "Run one trial: start the cluster, run the workload under faults, heal, final read, check, report",
		Long: "Run one trial and write its run directory (scenario.yaml, history.jsonl, nemesis.jsonl, verdict.json,\n" +
			"report.html, report.md, junit.xml, linearizability/, nodes/).\n\n" +
			"Exit codes: 0 every claim held; 1 a guarantee violated (or a demonstration not reproduced);\n" +
			"2 bad usage or bad scenario; 3 the trial could not run. Ctrl-C stops the workload early and still\n" +
			"heals, reads and checks what was recorded; a second Ctrl-C exits at once.",
		Example: "  kafkatrial run acks1-leader-kill --seed 42\n" +
			"  kafkatrial run my-scenario.yaml --set acks=1 --set min.insync.replicas=1 --out out/mine",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := f.load(args[0])
			if err != nil {
				return err
			}
			ctx, stop := interruptible()
			defer stop()
			res, err := scenarios.Run(ctx, s, f.options(cmd.OutOrStdout()))
			if res.ExitCode != exitOK {
				if err == nil && res.Verdict != nil {
					err = results.VerdictError(s.ID, res.Dir, res.Verdict)
				}
				if err == nil {
					err = fmt.Errorf("%s: claims did not hold (see %s/report.md)", s.ID, res.Dir)
				}
				return withCode(res.ExitCode, err)
			}
			return nil
		},
	}
	f.register(cmd, true, "out/<id>-<seed>")
	rootCmd.AddCommand(cmd)
}
