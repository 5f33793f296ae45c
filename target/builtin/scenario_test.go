package builtin

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/scenarios"
)

// trialYAML is a short trial on rf=1 partitions: a producer, a consumer group and one leader kill. A killed
// process keeps what it wrote, so nothing acknowledged may be lost.
const trialYAML = `id: builtin-smoke
seed: 11
warmup: 500ms
duration: 2500ms
final_read_timeout: 15s
cluster: {nodes: 3, broker: {log.flush.interval.messages: "1"}}
topics:
  - {name: trial, partitions: 3, replication.factor: 1}
workload:
  producers: [{count: 1, rate: 200}]
  consumers: [{count: 1}]
nemesis:
  heal_timeout: 30s
  schedule:
    - {at: 500ms, fault: kill, target: leader(trial/0), duration: 1s}
expect:
  lost-write: none
  duplicate: none
`

// TestScenarioRunsOnBuiltin runs a whole trial through scenarios.RunID, which finds this target by its
// registered name: cluster, workload, nemesis, heal, final read, check and the run directory with nodes/.
func TestScenarioRunsOnBuiltin(t *testing.T) {
	if err := CheckLoopback(3); err != nil {
		t.Skipf("the built-in target needs loopback IPs 127.0.0.1, 127.0.0.11-13 and 127.0.0.21-23: %v", err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "smoke.yaml")
	if err := os.WriteFile(file, []byte(trialYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out := filepath.Join(dir, "run")
	res, err := scenarios.RunID(ctx, file, scenarios.Options{Out: out, Target: "builtin", Logger: testLogger()})
	if err != nil || res.ExitCode != scenarios.ExitOK {
		var notes []string
		if res.Verdict != nil {
			notes = res.Verdict.Notes
		}
		t.Fatalf("run: exit %d, %v, notes %v", res.ExitCode, err, notes)
	}
	if res.Verdict.Stats.SendsOK == 0 {
		t.Fatalf("no send succeeded: %+v", res.Verdict.Stats)
	}
	for _, f := range []string{"history.jsonl", "nemesis.jsonl", "verdict.json", "nodes/node-1/broker.log", "nodes/node-3/broker.log"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("run directory lacks %s: %v", f, err)
		}
	}
	// Three rf=1 partitions on three nodes: one replica dump each.
	if dumps, _ := filepath.Glob(filepath.Join(out, "nodes", "node-*", "trial-*.txt")); len(dumps) != 3 {
		t.Errorf("replica dumps %v, want one per partition", dumps)
	}
}
