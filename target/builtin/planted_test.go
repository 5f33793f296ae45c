package builtin

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker"
	"github.com/kafkatrial/kafkatrial/scenarios"
)

// TestPlantedBugFailsTheGuarantee proves the harness catches a broken broker: with acks=all answered before the
// followers have the data (a bug compiled in only by the plantedbugs build tag), the claims suite's
// acksall-safe-leader-kill must fail with lost-write. A normal build re-runs this test in the planted build.
func TestPlantedBugFailsTheGuarantee(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a second test binary")
	}
	if err := CheckLoopback(3); err != nil {
		t.Skipf("the built-in target needs loopback IPs 127.0.0.11-13 and 127.0.0.21-23: %v", err)
	}
	if !broker.PlantedBugsCompiled {
		cmd := exec.Command("go", "test", "-tags", "plantedbugs", "-run", "^TestPlantedBugFailsTheGuarantee$", "-count=1", "-v", ".")
		cmd.Env = append(os.Environ(), "KAFKATRIAL_PLANTED_BUG=ack-before-replication")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestPlantedBugFailsTheGuarantee") {
			t.Fatalf("the planted-bug build did not show the violation: %v\n%s", err, out)
		}
		t.Logf("planted build:\n%s", lastLines(string(out), 6))
		return
	}
	if os.Getenv("KAFKATRIAL_PLANTED_BUG") != "ack-before-replication" {
		t.Skip("planted build without KAFKATRIAL_PLANTED_BUG=ack-before-replication")
	}
	// A few seeds: one lost write in any of them proves the bug is caught; the safe settings never lose one on
	// a correct broker (the claims suite shows that).
	for seed := int64(1); seed <= 3; seed++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		res, err := scenarios.RunID(ctx, "acksall-safe-leader-kill", scenarios.Options{
			Out: filepath.Join(t.TempDir(), "run"), Seed: seed, Target: "builtin"})
		cancel()
		if res.Verdict == nil {
			t.Fatalf("seed %d: no verdict: %v", seed, err)
		}
		lost := res.Verdict.Anomalies["lost-write"].Count
		t.Logf("seed %d: exit %d, lost-write %d", seed, res.ExitCode, lost)
		if lost > 0 {
			if res.ExitCode != scenarios.ExitViolated {
				t.Fatalf("lost writes found but exit %d", res.ExitCode)
			}
			for _, c := range res.Verdict.Claims {
				if c.Anomaly == "lost-write" && c.Status != "violated" {
					t.Fatalf("lost-write claim status %q, want violated", c.Status)
				}
			}
			return
		}
	}
	t.Fatal("acks=all answered before replication lost nothing in 3 seeds: the harness did not catch the planted bug")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
