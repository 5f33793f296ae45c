package builtin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// values returns prefix0..prefix(n-1) from offset from.
func values(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, from+i)
	}
	return out
}

// waitReplica waits until node id leads topic/partition again and its replica holds exactly want.
func waitReplica(t *testing.T, tg *Target, id int32, topic string, partition int32, want []string) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("node-%d replica of %s-%d", id, topic, partition), func() error {
		if l, err := tg.Leader(context.Background(), topic, partition); err != nil || l != NodeName(id) {
			return fmt.Errorf("leader %q (%v), want node-%d", l, err, id)
		}
		got, err := replicaValues(tg, id, topic, partition)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("replica holds %v, want %v", got, want)
		}
		return nil
	})
}

// TestProcessFaults kills, stops, power-cuts and restarts node-2 of one cluster, checking what its rf=1
// partitions keep from disk each time, then moves the controller and collects the logs.
func TestProcessFaults(t *testing.T) {
	tg := startTarget(t, nil)
	ctx := testCtx(t)
	createTopic(t, tg, "keep", 3, 1, nil)
	one := "1"
	createTopic(t, tg, "sync", 3, 1, map[string]*string{"log.flush.interval.messages": &one})
	pk, ps := partitionLedBy(t, tg, "keep", 2), partitionLedBy(t, tg, "sync", 2)
	cl := client(t, tg, manual())

	t.Run("kill breaks connections and restart recovers every acked record", func(t *testing.T) {
		produce(t, cl, "keep", pk, values("k", 0, 10)...)
		c2 := dialNode(t, tg, 2)
		if err := c2.roundTrip(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		if err := tg.Kill(ctx, []string{"node-2"}); err != nil {
			t.Fatal(err)
		}
		if tg.Cluster().Running(2) {
			t.Fatal("node-2 still running after Kill")
		}
		if err := c2.roundTrip(10 * time.Second); err == nil || isTimeout(err) {
			t.Fatalf("connection to a killed node: %v, want a connection error", err)
		}
		if err := tryRoundTrip(tg, 2); err == nil {
			t.Fatal("a killed node accepted a connection")
		}
		if err := tg.Healthy(ctx, []string{"keep"}); err == nil {
			t.Fatal("Healthy with node-2 down")
		}
		if err := tg.Restart(ctx, tg.Nodes()); err != nil {
			t.Fatal(err)
		}
		waitReplica(t, tg, 2, "keep", pk, values("k", 0, 10))
		produce(t, cl, "keep", pk, "k10")
	})

	t.Run("clean stop and restart", func(t *testing.T) {
		if err := tg.Stop(ctx, []string{"node-2"}); err != nil {
			t.Fatal(err)
		}
		if tg.Cluster().Running(2) {
			t.Fatal("node-2 still running after Stop")
		}
		if err := tg.Restart(ctx, []string{"node-2"}); err != nil {
			t.Fatal(err)
		}
		waitReplica(t, tg, 2, "keep", pk, values("k", 0, 11))
	})

	t.Run("power loss removes the unsynced records and nothing else", func(t *testing.T) {
		// k0..k10 were fsynced by the clean stop; these are not (log.flush.interval.messages defaults to
		// never). The sync topic fsyncs every message.
		produce(t, cl, "keep", pk, values("k", 11, 10)...)
		produce(t, cl, "sync", ps, values("s", 0, 20)...)
		if err := tg.PowerLoss(ctx, []string{"node-2"}); err != nil {
			t.Fatal(err)
		}
		if err := tg.Restart(ctx, []string{"node-2"}); err != nil {
			t.Fatal(err)
		}
		waitReplica(t, tg, 2, "keep", pk, values("k", 0, 11))
		waitReplica(t, tg, 2, "sync", ps, values("s", 0, 20))
	})

	t.Run("killing the active controller moves it", func(t *testing.T) {
		c, err := tg.Controller(ctx)
		if err != nil || c == "" {
			t.Fatalf("Controller = %q, %v", c, err)
		}
		if err := tg.Kill(ctx, []string{c}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "a new active controller", func() error {
			now, err := tg.Controller(ctx)
			if err != nil || now == "" || now == c {
				return fmt.Errorf("controller %q (%v)", now, err)
			}
			return nil
		})
		if err := tg.Restart(ctx, tg.Nodes()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "healthy after the controller restart", func() error {
			return tg.Healthy(ctx, []string{"keep", "sync"})
		})
	})

	t.Run("collect copies logs and dumps every replica", func(t *testing.T) {
		dir := t.TempDir()
		if err := tg.Collect(ctx, dir); err != nil {
			t.Fatal(err)
		}
		log, err := os.ReadFile(filepath.Join(dir, "node-2", "broker.log"))
		if err != nil {
			t.Fatal(err)
		}
		// Started once, then restarted after kill, stop and power loss: four incarnations append to one file.
		if n := strings.Count(string(log), "broker node serving"); n < 4 {
			t.Fatalf("node-2 broker.log shows %d incarnations, want at least 4", n)
		}
		dump, err := os.ReadFile(filepath.Join(dir, "node-2", fmt.Sprintf("keep-%d.txt", pk)))
		if err != nil {
			t.Fatal(err)
		}
		var recs []string
		for _, line := range strings.Split(strings.TrimSpace(string(dump)), "\n") {
			if !strings.HasPrefix(line, "#") {
				recs = append(recs, line)
			}
		}
		if len(recs) != 11 || !strings.HasPrefix(recs[0], "0\t") || !strings.HasSuffix(recs[10], "\t\"k10\"") {
			t.Fatalf("dump of keep-%d:\n%s", pk, dump)
		}
		for _, id := range []int{1, 3} {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("node-%d", id), "broker.log")); err != nil {
				t.Fatal(err)
			}
		}
	})
}
