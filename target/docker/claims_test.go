package docker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/scenarios"
)

// The claims tests run whole trials against containers (about 20-30s each here); -short skips them.
// KAFKATRIAL_DOCKER_CLAIMS_OUT=<dir> keeps each run directory under dir for inspection.
func requireClaims(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping: whole trials against containers are not short")
	}
	requireDocker(t)
}

// TestClaimAcksAllSafeLeaderKill runs the bundled acksall-safe-leader-kill on containers: every guarantee
// must hold while leaders are killed repeatedly.
func TestClaimAcksAllSafeLeaderKill(t *testing.T) {
	requireClaims(t)
	res := runClaim(t, "acksall-safe-leader-kill", nil)
	if res.ExitCode != scenarios.ExitOK {
		t.Fatalf("exit %d (%v); verdict claims %+v", res.ExitCode, res.Err, claims(res))
	}
}

// TestClaimAcks1LeaderKill runs acks1-leader-kill on containers. The bundled scenario lags the followers by
// cutting them off the leader on the data plane only, which docker network disconnect cannot do (it cuts the
// controller quorum too, so the followers would be fenced out of the ISR), and it sets
// replica.lag.time.max.ms, which `kafkatrial broker node` cannot take yet. The docker variant lags them by
// freezing them instead: both followers are paused for 400ms (below the trial profile's 600ms broker session
// timeout and 1s replica lag, so they stay in the ISR), the leader is killed 300ms into the pause, and the
// followers thaw without the records only the dead leader had.
func TestClaimAcks1LeaderKill(t *testing.T) {
	requireClaims(t)
	// The bundled scenario as it is: it freezes the followers and kills the leader three times, which leaves
	// room for Docker's slower pause and kill.
	res := runClaim(t, "acks1-leader-kill", nil)
	if res.ExitCode != scenarios.ExitOK {
		t.Fatalf("exit %d (%v); verdict claims %+v", res.ExitCode, res.Err, claims(res))
	}
}

// runClaim runs a bundled scenario on the docker target (through RunID, or changed by adapt first).
func runClaim(t *testing.T, id string, adapt func(*scenarios.Scenario)) *scenarios.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	began := time.Now()
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	out := t.TempDir()
	if d := os.Getenv("KAFKATRIAL_DOCKER_CLAIMS_OUT"); d != "" {
		out = filepath.Join(d, id) // kept for inspection
	}
	opts := scenarios.Options{Target: "docker", Out: out, Seed: 1, Status: w, Logger: testLogger(t)}
	var res *scenarios.Result
	var err error
	if adapt == nil {
		res, err = scenarios.RunID(ctx, id, opts)
	} else {
		s, lerr := scenarios.Load(id)
		if lerr != nil {
			t.Fatal(lerr)
		}
		adapt(s)
		res, err = scenarios.Run(ctx, s, opts)
	}
	t.Logf("%s on docker: exit %d in %v (err %v)", id, res.ExitCode, time.Since(began).Round(time.Millisecond), err)
	for _, f := range []string{"nemesis.jsonl", "verdict.json"} {
		if b, err := os.ReadFile(filepath.Join(opts.Out, f)); err == nil {
			t.Logf("%s:\n%s", f, b)
		}
	}
	return res
}

func claims(res *scenarios.Result) any {
	if res.Verdict == nil {
		return nil
	}
	return res.Verdict.Claims
}
