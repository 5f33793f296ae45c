package scenarios_test

import (
	"context"
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
func TestInterruptedRunIsStillChecked(t *testing.T) {
	needLoopback(t)
	s := parse(t, "60s", "none")
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
	if !strings.Contains(strings.Join(res.Verdict.Notes, "\n"), "interrupted") {
		t.Errorf("verdict does not say the run was interrupted: %v", res.Verdict.Notes)
	}
	h, err := history.ReadFile(filepath.Join(dir, "history.jsonl"))
	if err != nil || len(h.Ops) == 0 {
		t.Fatalf("history not readable after an interrupt: %v (%d ops)", err, len(h.Ops))
	}
	v, ops, err := scenarios.Recheck(dir, 0)
	if err != nil || ops != len(h.Ops) || v.Stats.SendsOK == 0 {
		t.Fatalf("re-check of the interrupted run: %v (%d ops, %d ok sends)", err, ops, v.Stats.SendsOK)
	}
	if v.Anomalies["lost-write"].Count != 0 {
		t.Errorf("a quiet, interrupted run lost writes: %+v", v.Anomalies["lost-write"])
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
