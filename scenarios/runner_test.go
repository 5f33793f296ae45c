package scenarios_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/history"
	"github.com/kafkatrial/kafkatrial/scenarios"
	"github.com/kafkatrial/kafkatrial/target/builtin"
	_ "github.com/kafkatrial/kafkatrial/target/external"
)

func needLoopback(t *testing.T) {
	t.Helper()
	if err := builtin.CheckLoopback(3); err != nil {
		t.Skipf("the built-in target needs loopback IPs 127.0.0.11-13 and 127.0.0.21-23: %v", err)
	}
}

const quietTrial = `id: quiet
seed: 5
warmup: 300ms
duration: %s
cluster: {nodes: 3}
topics: [{name: trial, partitions: 2, replication.factor: 3}]
workload:
  producers: [{count: 1, rate: 200}]
expect:
  lost-write: %s
`

func parse(t *testing.T, duration, expect string) *scenarios.Scenario {
	t.Helper()
	body := strings.Replace(strings.Replace(quietTrial, "%s", duration, 1), "%s", expect, 1)
	s, err := scenarios.Parse([]byte(body), "quiet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestInterruptedRunIsStillChecked cancels a run mid-workload, as Ctrl-C does: the run must stop early, heal,
// read back, and leave a history that `kafkatrial check` can judge.
// Its one fault is due only after the interrupt: the run is judged on its claims (exit 0), not called undecided
// for a fault that never came due.
func TestInterruptedRunIsStillChecked(t *testing.T) {
	needLoopback(t)
	body := strings.Replace(strings.Replace(quietTrial, "%s", "60s", 1), "%s", "none", 1) +
		"nemesis:\n  schedule: [{at: 50s, fault: kill, target: leader(trial/0), duration: 1s}]\n"
	s, err := scenarios.Parse([]byte(body), "quiet.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(2*time.Second, cancel)
	start := time.Now()
	res, err := scenarios.Run(ctx, s, scenarios.Options{Out: dir, Target: "builtin"})
	if took := time.Since(start); took > 45*time.Second {
		t.Fatalf("interrupted run took %v: the workload did not stop", took)
	}
	if res.Verdict == nil {
		t.Fatalf("no verdict after an interrupt: exit %d, %v", res.ExitCode, err)
	}
	if res.ExitCode != scenarios.ExitOK {
		t.Errorf("interrupted before its fault was due: exit %d (%v), want %d; notes %q", res.ExitCode, err,
			scenarios.ExitOK, res.Verdict.Notes)
	}
	if !strings.Contains(strings.Join(res.Verdict.Notes, "\n"), "interrupted") {
		t.Errorf("verdict does not say the run was interrupted: %v", res.Verdict.Notes)
	}
	h, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil || len(h.Ops) == 0 {
		t.Fatalf("history not readable after an interrupt: %v (%d ops)", err, len(h.Ops))
	}
	rc, err := scenarios.Recheck(dir, 0)
	if err != nil || rc.Ops != len(h.Ops) || rc.Verdict.Stats.SendsOK == 0 {
		t.Fatalf("re-check of the interrupted run: %v (%+v)", err, rc)
	}
	v := rc.Verdict
	if v.Anomalies["lost-write"].Count != 0 {
		t.Errorf("a quiet, interrupted run lost writes: %+v", v.Anomalies["lost-write"])
	}
	if !strings.Contains(strings.Join(v.Notes, "\n"), "interrupted") {
		t.Errorf("check dropped the run's note that it was interrupted: %v", v.Notes)
	}
}

// TestReproduceLineAndScenarioAsRun: the reproduce line names the file and every argument that shaped the
// run, in the output, run.json and report.md; scenario.yaml states the target's durability defaults and loads
// back to the same scenario.
func TestReproduceLineAndScenarioAsRun(t *testing.T) {
	needLoopback(t)
	s := parse(t, "1s", "none")
	s.Source = "sc/quiet.yaml"
	dir := filepath.Join(t.TempDir(), "run")
	var out strings.Builder
	res, err := scenarios.Run(context.Background(), s, scenarios.Options{Out: dir, Target: "builtin", Status: &out,
		Args: []string{"--set", "rate=200"}})
	if err != nil || res.ExitCode != scenarios.ExitOK {
		t.Fatalf("exit %d: %v", res.ExitCode, err)
	}
	want := "kafkatrial run sc/quiet.yaml --seed 5 --target builtin --set rate=200"
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[0] != want || lines[len(lines)-1] != want || res.Reproduce("quiet") != want {
		t.Errorf("reproduce lines %q and %q, want %q", lines[0], lines[len(lines)-1], want)
	}
	info, err := scenarios.ReadRunInfo(dir)
	if err != nil || info == nil || info.Reproduce != want {
		t.Fatalf("run.json: %+v %v", info, err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil || !strings.Contains(string(md), want) {
		t.Errorf("report.md does not give %q: %v", want, err)
	}
	// check re-renders the reports with the same line.
	if _, err := scenarios.Recheck(dir, 0); err != nil {
		t.Fatal(err)
	}
	if md, _ := os.ReadFile(filepath.Join(dir, "report.md")); !strings.Contains(string(md), want) {
		t.Errorf("report.md after check does not give %q", want)
	}
	yml, err := os.ReadFile(filepath.Join(dir, "scenario.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"min.insync.replicas: \"1\"", "unclean.leader.election.enable: \"false\"", "linger.ms: 0", "retry.backoff.ms: 100"} {
		if !strings.Contains(string(yml), key) {
			t.Errorf("scenario.yaml lacks %s:\n%s", key, yml)
		}
	}
	back, err := scenarios.Load(filepath.Join(dir, "scenario.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	back.ApplyTargetDefaults()
	again, _ := back.Marshal()
	if string(again) != string(yml) {
		t.Errorf("scenario.yaml does not load back to the same scenario:\n%s\n---\n%s", yml, again)
	}
}

// TestNoFaultInjectedIsUndecided: a run whose only scheduled fault fails to start (a ring needs three nodes)
// is not a pass, and says why.
func TestNoFaultInjectedIsUndecided(t *testing.T) {
	needLoopback(t)
	body := `id: ringless
seed: 3
warmup: 300ms
duration: 1500ms
cluster: {nodes: 2}
topics: [{name: trial, partitions: 1, replication.factor: 2}]
workload:
  producers: [{count: 1, rate: 100}]
nemesis:
  schedule: [{at: 200ms, fault: partition, shape: ring, target: all, duration: 500ms}]
expect:
  lost-write: none
`
	s, err := scenarios.Parse([]byte(body), "ringless.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	res, err := scenarios.Run(context.Background(), s, scenarios.Options{Out: dir, Target: "builtin"})
	if res.ExitCode != scenarios.ExitCannotRun || err == nil || !strings.Contains(err.Error(), "none of the scheduled faults was injected") {
		t.Fatalf("exit %d: %v", res.ExitCode, err)
	}
	notes := strings.Join(res.Verdict.Notes, "\n")
	if !strings.Contains(notes, "fault partition at ") || !strings.Contains(notes, "was not injected: shape ring needs more nodes than 2") {
		t.Errorf("notes do not say which fault was not injected: %s", notes)
	}
	if c := res.Verdict.Claims[0]; c.Status != "unknown" || c.Held {
		t.Errorf("claim %+v, want unknown", c)
	}
	rc, err := scenarios.Recheck(dir, 0)
	if err != nil || rc.ExitCode != scenarios.ExitCannotRun || !rc.NoFaultInjected {
		t.Errorf("check of the same run: %+v %v", rc, err)
	}
}

// TestBuiltinKeepsKafkaDefaults holds the defaults the run's scenario.yaml states for the built-in target to
// what the built-in broker applies.
func TestBuiltinKeepsKafkaDefaults(t *testing.T) {
	d, _, _, err := builtin.BrokerConfig("trial", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := scenarios.KafkaDurabilityDefaults()
	if d.MinInsyncReplicas == 0 {
		d.MinInsyncReplicas = 1 // broker.TopicDefaults: zero takes the documented default, 1
	}
	if got := fmt.Sprint(d.MinInsyncReplicas); got != want["min.insync.replicas"] {
		t.Errorf("min.insync.replicas: broker %s, stated %s", got, want["min.insync.replicas"])
	}
	if got := fmt.Sprint(d.UncleanLeaderElectionEnable); got != want["unclean.leader.election.enable"] {
		t.Errorf("unclean.leader.election.enable: broker %s, stated %s", got, want["unclean.leader.election.enable"])
	}
}

// TestExitCodes covers the contract's exit codes of a run.
func TestExitCodes(t *testing.T) {
	needLoopback(t)
	t.Run("demonstration not reproduced is 1", func(t *testing.T) {
		res, _ := scenarios.Run(context.Background(), parse(t, "1s", "some"), scenarios.Options{Out: filepath.Join(t.TempDir(), "r"), Target: "builtin"})
		if res.ExitCode != scenarios.ExitViolated || res.Verdict == nil || res.Verdict.Claims[0].Status != "not-reproduced" {
			t.Fatalf("exit %d, verdict %+v", res.ExitCode, res.Verdict)
		}
	})
	t.Run("guarantee held is 0", func(t *testing.T) {
		res, err := scenarios.Run(context.Background(), parse(t, "1s", "none"), scenarios.Options{Out: filepath.Join(t.TempDir(), "r"), Target: "builtin"})
		if res.ExitCode != scenarios.ExitOK {
			t.Fatalf("exit %d: %v", res.ExitCode, err)
		}
	})
	t.Run("bad scenario is 2", func(t *testing.T) {
		s := parse(t, "1s", "none")
		s.Topics[0].ReplicationFactor = 7
		res, err := scenarios.Run(context.Background(), s, scenarios.Options{Out: filepath.Join(t.TempDir(), "r"), Target: "builtin"})
		if res.ExitCode != scenarios.ExitUsage || err == nil || !strings.Contains(err.Error(), "replication.factor") {
			t.Fatalf("exit %d: %v", res.ExitCode, err)
		}
	})
	t.Run("cluster that never comes up is 3", func(t *testing.T) {
		s := parse(t, "1s", "none")
		s.Cluster.Bootstrap = []string{"127.0.0.1:1"}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := scenarios.Run(ctx, s, scenarios.Options{Out: filepath.Join(t.TempDir(), "r"), Target: "external"})
		if res.ExitCode != scenarios.ExitCannotRun || err == nil {
			t.Fatalf("exit %d: %v", res.ExitCode, err)
		}
	})
}

func TestMain(m *testing.M) {
	os.Unsetenv("KAFKATRIAL_EXTERNAL_CONFIG")
	os.Exit(m.Run())
}
