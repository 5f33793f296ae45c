package external

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The tests in this file point the external target at a built-in cluster it did not start: three broker
// processes (internal/testbroker, one OS process per node, a three-voter controller quorum) started from
// shell scripts, with kill, stop, pause and restart commands that signal those processes by their pid files.

// testbrokerBin is the helper binary TestMain builds; buildErr says why it could not be built.
var testbrokerBin, buildErr = "", error(nil)

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "external-testbroker-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testbrokerBin = filepath.Join(dir, "testbroker")
	if out, err := exec.Command("go", "build", "-o", testbrokerBin, "./internal/testbroker").CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("building internal/testbroker: %v\n%s", err, out)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// procCluster is a cluster of testbroker processes.
type procCluster struct {
	dir   string
	ids   []int32
	addrs map[int32]string
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startProcCluster starts n broker processes and waits until every one serves. Cleanup kills whatever
// broker process of this cluster is still running.
func startProcCluster(t *testing.T, n int) *procCluster {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	pc := &procCluster{dir: t.TempDir(), addrs: map[int32]string{}}
	var voters []string
	for i := 1; i <= n; i++ {
		id := int32(i)
		pc.ids = append(pc.ids, id)
		pc.addrs[id] = freeAddr(t)
		voters = append(voters, fmt.Sprintf("%d=%s", id, freeAddr(t)))
	}
	for _, id := range pc.ids {
		pidfile := pc.pidfile(id)
		script := fmt.Sprintf(`#!/bin/sh
rm -f %[1]s
nohup %[2]s -id %[3]d -listen %[4]s -voters %[5]s -data %[6]s/node-%[3]d -pidfile %[1]s >>%[6]s/node-%[3]d.log 2>&1 </dev/null &
if [ "$1" = wait ]; then
  i=0
  while [ ! -f %[1]s ]; do
    i=$((i+1))
    if [ $i -gt 600 ]; then echo "node %[3]d did not start; see %[6]s/node-%[3]d.log"; exit 1; fi
    sleep 0.1
  done
fi
`, pidfile, testbrokerBin, id, pc.addrs[id], strings.Join(voters, ","), pc.dir)
		if err := os.WriteFile(filepath.Join(pc.dir, fmt.Sprintf("start-%d.sh", id)), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(pc.killAll)
	// Every voter must run before any can register (the quorum needs a majority), so start them together.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, id := range pc.ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command("sh", filepath.Join(pc.dir, fmt.Sprintf("start-%d.sh", id)), "wait").CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("starting node %d: %v: %s", id, err, out)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return pc
}

func (pc *procCluster) pidfile(id int32) string {
	return filepath.Join(pc.dir, fmt.Sprintf("node-%d.pid", id))
}

// config returns the command config driving this cluster; only the listed kinds get a command.
func (pc *procCluster) config(t *testing.T, kinds ...string) *Config {
	t.Helper()
	pid := filepath.Join(pc.dir, "node-{id}.pid")
	all := map[string]string{
		"kill":    "kill -KILL $(cat " + pid + ")",
		"restart": "sh " + filepath.Join(pc.dir, "start-{id}.sh") + " wait",
		// testbroker removes its pid file once it has stopped cleanly.
		"stop":   "kill -TERM $(cat " + pid + ") && while [ -f " + pid + " ]; do sleep 0.1; done",
		"pause":  "kill -STOP $(cat " + pid + ")",
		"resume": "kill -CONT $(cat " + pid + ")",
	}
	var b strings.Builder
	b.WriteString("timeout: 60s\ncommands:\n")
	for _, k := range kinds {
		fmt.Fprintf(&b, "  %s: %q\n", k, all[k])
	}
	cfg, err := ParseConfig([]byte(b.String()), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// killAll kills every broker process of the cluster still running, checking each pid is still one of ours.
func (pc *procCluster) killAll() {
	for _, id := range pc.ids {
		b, err := os.ReadFile(pc.pidfile(id))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmdline), testbrokerBin) || !strings.Contains(string(cmdline), pc.dir) {
			continue
		}
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
}

// adminClient is an independent view of the cluster, to check the target's answers against.
func (pc *procCluster) adminClient(t *testing.T) *kgo.Client {
	t.Helper()
	var seeds []string
	for _, id := range pc.ids {
		seeds = append(seeds, pc.addrs[id])
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RetryTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// brokerListed asks the cluster afresh (kadm's metadata helpers answer from kgo's cache) whether broker id is
// listed in Metadata.
func brokerListed(ctx context.Context, cl *kgo.Client, id int32) (bool, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(resp.Brokers, func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == id }), nil
}

func TestExternalAgainstProcessCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-process broker cluster")
	}
	pc := startProcCluster(t, 3)
	ctx := context.Background()
	cfg := pc.config(t, "kill", "restart", "stop", "pause", "resume")
	tg, err := New(ctx, Options{Bootstrap: []string{pc.addrs[1]}, Config: cfg, Dir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close(ctx)
	cl := pc.adminClient(t)
	adm := kadm.NewClient(cl)
	const topic = "ext"
	topics := []string{topic}

	t.Run("topology", func(t *testing.T) {
		if got, want := tg.Nodes(), []string{"node-1", "node-2", "node-3"}; !slices.Equal(got, want) {
			t.Fatalf("Nodes = %v, want %v", got, want)
		}
		if got := tg.Bootstrap(); !slices.Equal(got, []string{pc.addrs[1]}) || tg.Dial() != nil {
			t.Errorf("Bootstrap = %v, Dial nil = %v", got, tg.Dial() == nil)
		}
		if err := tg.Healthy(ctx, topics); err == nil || !strings.Contains(err.Error(), "topic ext") {
			t.Errorf("Healthy before the topic exists = %v, want an error naming the topic", err)
		}
		if _, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "topic led and in sync", time.Minute, func() error { return tg.Healthy(ctx, topics) })
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		for p, pd := range md.Topics[topic].Partitions {
			leader, err1 := tg.Leader(ctx, topic, p)
			replicas, err2 := tg.Replicas(ctx, topic, p)
			isr, err3 := tg.ISR(ctx, topic, p)
			if err1 != nil || err2 != nil || err3 != nil {
				t.Fatal(err1, err2, err3)
			}
			if leader != nodeName(pd.Leader) || !slices.Equal(replicas, names(pd.Replicas)) || !slices.Equal(isr, names(pd.ISR)) {
				t.Errorf("%s/%d: target says leader %s replicas %v isr %v; cluster says %d %v %v",
					topic, p, leader, replicas, isr, pd.Leader, pd.Replicas, pd.ISR)
			}
			if len(replicas) != 3 {
				t.Errorf("%s/%d has replicas %v, want 3", topic, p, replicas)
			}
		}
		if _, err := tg.Leader(ctx, topic, 7); err == nil {
			t.Error("Leader of a partition that does not exist: no error")
		}
		ctrl, err := tg.Controller(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ctrl != nodeName(md.Controller) {
			t.Errorf("Controller = %s, cluster metadata says %d", ctrl, md.Controller)
		}
	})

	t.Run("kill the controller and restart it", func(t *testing.T) {
		victim, err := tg.Controller(ctx)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := tg.nodeID(victim)
		if err := tg.Kill(ctx, []string{victim}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, victim+" gone from metadata", time.Minute, func() error {
			if listed, err := brokerListed(ctx, cl, id); err != nil || listed {
				return fmt.Errorf("still listed (err %v)", err)
			}
			return nil
		})
		if err := tg.Healthy(ctx, topics); err == nil || !strings.Contains(err.Error(), victim) {
			t.Errorf("Healthy with %s killed = %v, want an error naming it", victim, err)
		}
		waitUntil(t, "a new controller", time.Minute, func() error {
			if c, err := tg.Controller(ctx); err != nil || c == victim {
				return fmt.Errorf("controller %q, err %v", c, err)
			}
			return nil
		})
		if err := tg.Restart(ctx, tg.Nodes()); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, victim+" back and the topic in sync", time.Minute, func() error { return tg.Healthy(ctx, topics) })
		if listed, err := brokerListed(ctx, cl, id); err != nil || !listed {
			t.Errorf("%s not listed after restart (err %v)", victim, err)
		}
	})

	t.Run("pause and resume", func(t *testing.T) {
		if err := tg.Pause(ctx, []string{"node-2"}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "node-2 reported unhealthy", time.Minute, func() error {
			if err := tg.Healthy(ctx, topics); err == nil || !strings.Contains(err.Error(), "node-2") {
				return fmt.Errorf("Healthy = %v", err)
			}
			return nil
		})
		if err := tg.Resume(ctx, tg.Nodes()); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "healthy after resume", time.Minute, func() error { return tg.Healthy(ctx, topics) })
	})

	t.Run("clean stop and restart", func(t *testing.T) {
		if err := tg.Stop(ctx, []string{"node-3"}); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(pc.pidfile(3)); !os.IsNotExist(err) {
			t.Errorf("node-3's pid file still there after a clean stop (%v)", err)
		}
		waitUntil(t, "node-3 gone from metadata", time.Minute, func() error {
			if listed, err := brokerListed(ctx, cl, 3); err != nil || listed {
				return fmt.Errorf("still listed (err %v)", err)
			}
			return nil
		})
		if err := tg.Restart(ctx, []string{"node-3"}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "healthy after restart", time.Minute, func() error { return tg.Healthy(ctx, topics) })
	})

	t.Run("broker settings are checked, never changed", func(t *testing.T) {
		o := Options{Bootstrap: []string{pc.addrs[2]}, Dir: t.TempDir(), BrokerSettings: map[string]string{"min.insync.replicas": "1"}}
		ok, err := New(ctx, o)
		if err != nil {
			t.Fatalf("New with the cluster's own min.insync.replicas: %v", err)
		}
		ok.Close(ctx)
		o.BrokerSettings = map[string]string{"min.insync.replicas": "2", "log.flush.interval.messages": "1"}
		if _, err := New(ctx, o); err == nil || !strings.Contains(err.Error(), "min.insync.replicas=1 (the scenario asks for 2)") {
			t.Errorf("New with a setting the cluster does not have = %v, want an error naming it", err)
		}
	})

	t.Run("command log", func(t *testing.T) {
		dir := t.TempDir()
		if err := tg.Collect(ctx, dir); err != nil {
			t.Fatal(err)
		}
		log, err := os.ReadFile(filepath.Join(dir, "commands.log"))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{" kill: kill -KILL $(cat ", " restart: sh ", "node-2 pause: ", "node-2 resume: ", "node-3 stop: ", "-> ok after"} {
			if !strings.Contains(string(log), w) {
				t.Errorf("commands.log lacks %q:\n%s", w, log)
			}
		}
		if strings.Contains(string(log), "FAILED") {
			t.Errorf("a command failed:\n%s", log)
		}
	})
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
