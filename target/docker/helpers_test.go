package docker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/scenarios"
)

// requireDocker skips the test when no Docker engine answers, and disables the reaper container for it.
func requireDocker(t *testing.T) {
	t.Helper()
	if err := Available(context.Background()); err != nil {
		t.Skipf("skipping: these tests need a Docker engine: %v", err)
	}
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
}

// startCluster starts a docker target of n kafkatrial nodes, removed when the test ends.
func startCluster(t *testing.T, n int) *Target {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	began := time.Now()
	tg, err := Start(ctx, scenarios.TargetConfig{Nodes: n, Dir: t.TempDir(), Seed: 1, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("starting the docker target: %v", err)
	}
	t.Logf("%d-node docker cluster up in %v (image build included)", n, time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := tg.Close(ctx); err != nil {
			t.Errorf("closing the docker target: %v", err)
		}
	})
	return tg
}

// testLogger sends Info and above to t.Log while the test runs.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct {
	mu      sync.Mutex
	t       *testing.T
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

var _ io.Writer = (*testWriter)(nil)

// eventually polls cond until it returns nil or timeout passes, and fails the test with cond's last error.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = cond(); last == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// errorf is fmt.Errorf for conditions.
var errorf = fmt.Errorf
