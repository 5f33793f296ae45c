package external

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafkatrial/kafkatrial/results"
	"github.com/kafkatrial/kafkatrial/scenarios"
)

// writeConfigFile writes cfg's commands as the YAML file the scenario runner reads through the environment.
func writeConfigFile(t *testing.T, pc *procCluster, kinds ...string) string {
	t.Helper()
	cfg := pc.config(t, kinds...)
	var b strings.Builder
	b.WriteString("timeout: 60s\ncommands:\n")
	for key, tp := range mustTemplates(t, cfg) {
		fmt.Fprintf(&b, "  %s: %q\n", key, tp.text)
	}
	path := filepath.Join(t.TempDir(), "external.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustTemplates(t *testing.T, cfg *Config) map[string]*template {
	t.Helper()
	tm, err := cfg.templates()
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func scenarioFor(t *testing.T, pc *procCluster, id, nemesis string) *scenarios.Scenario {
	t.Helper()
	yml := fmt.Sprintf(`id: %s
target: external
warmup: 1s
duration: 6s
final_read_timeout: 20s
cluster:
  bootstrap: [%s]
topics:
  - name: %s
    partitions: 2
workload:
  producers:
    - acks: all
      rate: 200
  consumers:
    - group.id: g
nemesis:
  heal_timeout: 60s
  schedule:
%s`, id, pc.addrs[1], id, nemesis)
	s, err := scenarios.Parse([]byte(yml), id+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestScenarioRefusesUnconfiguredFault runs a scenario through the scenario runner against the external
// target: the nemesis's validation refuses a fault without a command, naming it, before any client starts.
func TestScenarioRefusesUnconfiguredFault(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-process broker cluster")
	}
	pc := startProcCluster(t, 3)
	t.Setenv(ConfigEnv, writeConfigFile(t, pc, "kill", "restart"))
	s := scenarioFor(t, pc, "ext-refuse", "    - {at: 1s, fault: pause, target: node-1, duration: 1s}\n")
	res, err := scenarios.Run(context.Background(), s, scenarios.Options{Out: t.TempDir()})
	if res.ExitCode != scenarios.ExitUsage || err == nil || !strings.Contains(err.Error(), `"pause"`) {
		t.Fatalf("Run = exit %d, %v; want exit %d naming the pause fault", res.ExitCode, err, scenarios.ExitUsage)
	}
}

// TestScenarioKillThroughCommands runs a whole trial (workload, a leader kill through the kill command, heal
// through the restart command, final read, check) against the external target.
func TestScenarioKillThroughCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-process broker cluster and runs a trial")
	}
	pc := startProcCluster(t, 3)
	t.Setenv(ConfigEnv, writeConfigFile(t, pc, "kill", "restart"))
	s := scenarioFor(t, pc, "ext-kill", "    - {at: 1s, fault: kill, target: leader(ext-kill/0), duration: 2s}\n")
	out := t.TempDir()
	res, err := scenarios.Run(context.Background(), s, scenarios.Options{Out: out})
	if res.ExitCode == scenarios.ExitUsage || res.Verdict == nil {
		t.Fatalf("Run = exit %d, %v: the trial did not run", res.ExitCode, err)
	}
	t.Logf("verdict: %s (exit %d, err %v)", results.Headline(res.Verdict), res.ExitCode, err)
	log, rerr := os.ReadFile(filepath.Join(out, "nodes", "commands.log"))
	if rerr != nil {
		t.Fatal(rerr)
	}
	t.Logf("nodes/commands.log:\n%s", log)
	if !strings.Contains(string(log), " kill: kill -KILL ") || !strings.Contains(string(log), " restart: sh ") {
		t.Errorf("nodes/commands.log lacks the kill and the restart:\n%s", log)
	}
	// nemesis.jsonl records the kill's start and stop, with no error.
	f, ferr := os.Open(filepath.Join(out, "nemesis.jsonl"))
	if ferr != nil {
		t.Fatal(ferr)
	}
	defer f.Close()
	phases := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev struct{ Fault, Phase, Error string }
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("nemesis.jsonl line %q: %v", sc.Text(), err)
		}
		if ev.Error != "" {
			t.Errorf("nemesis event with an error: %s", sc.Text())
		}
		if ev.Fault == "kill" {
			phases[ev.Phase] = true
		}
	}
	if len(phases) != 2 {
		t.Errorf("kill phases recorded: %v, want start and stop", phases)
	}
}
