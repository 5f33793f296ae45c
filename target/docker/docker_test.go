package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkatrial/kafkatrial/nemesis"
	"github.com/kafkatrial/kafkatrial/scenarios"
)

const topic = "trial"

// TestCluster starts three kafkatrial nodes in containers and puts every fault the target offers through
// them, checking each with real clients and the cluster's own metadata. Steps share one cluster (starting
// one costs seconds), so a failed step stops the rest.
func TestCluster(t *testing.T) {
	requireDocker(t)
	tg := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	for _, id := range tg.Nodes() {
		cid, _ := tg.ContainerID(id)
		res, err := tg.cli.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var nets []string
		for name := range res.Container.NetworkSettings.Networks {
			nets = append(nets, name)
		}
		// On any other network a disconnect would not isolate the node.
		if !slices.Equal(nets, []string{tg.NetworkName()}) {
			t.Fatalf("%s is on networks %v, want only %s", id, nets, tg.NetworkName())
		}
	}

	cl := newClient(t, tg)
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"produce-consume", func(t *testing.T) {
			adm := kadm.NewClient(cl)
			resp, err := adm.CreateTopic(ctx, 1, 3, nil, topic)
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				t.Fatalf("creating topic %s rf=3 through the target's dialer: %v", topic, err)
			}
			eventually(t, time.Minute, "topic led and in sync", func() error { return tg.Healthy(ctx, []string{topic}) })
			sent := produce(t, ctx, cl, "a", 100)
			got := consumeAll(t, ctx, tg, len(sent))
			if !slices.Equal(got, sent) {
				t.Fatalf("consumed %d values %v..., want the %d sent in order", len(got), head(got), len(sent))
			}
		}},
		{"kill-leader", func(t *testing.T) {
			old := leader(t, ctx, tg)
			if err := tg.Kill(ctx, []string{old}); err != nil {
				t.Fatal(err)
			}
			if running(t, ctx, tg, old) {
				t.Fatalf("%s still runs after Kill", old)
			}
			eventually(t, time.Minute, "a new leader elected", func() error {
				l, err := tg.Leader(ctx, topic, 0)
				if err != nil || l == "" || l == old {
					return errorf("leader %q (killed %s): %v", l, old, err)
				}
				return nil
			})
			produce(t, ctx, cl, "b", 20)
			if err := tg.Restart(ctx, []string{old}); err != nil {
				t.Fatal(err)
			}
			if err := tg.Restart(ctx, tg.Nodes()); err != nil { // running nodes are left alone
				t.Fatal(err)
			}
			eventually(t, time.Minute, "healthy after the restart", func() error { return tg.Healthy(ctx, []string{topic}) })
		}},
		{"stop-restart", func(t *testing.T) {
			n := "node-2"
			if err := tg.Stop(ctx, []string{n}); err != nil {
				t.Fatal(err)
			}
			if err := tg.Healthy(ctx, []string{topic}); err == nil || !strings.Contains(err.Error(), n) {
				t.Fatalf("Healthy with %s stopped: %v, want an error naming it", n, err)
			}
			logs := logOf(t, ctx, tg, n)
			if !strings.Contains(logs, "stopping the broker cleanly") {
				t.Fatalf("%s's log shows no clean stop:\n%s", n, tail(logs))
			}
			if err := tg.Restart(ctx, []string{n}); err != nil {
				t.Fatal(err)
			}
			eventually(t, time.Minute, "healthy after the clean restart", func() error { return tg.Healthy(ctx, []string{topic}) })
		}},
		{"partition-isolate", func(t *testing.T) {
			n := "node-3"
			everyone := append(slices.DeleteFunc(tg.Nodes(), func(s string) bool { return s == n }), nemesis.Client)
			if _, err := tg.Partition(ctx, []nemesis.Link{{From: "node-1", To: n}}, nemesis.Drop); !errors.Is(err, nemesis.ErrUnsupported) {
				t.Fatalf("a one-way cut: %v, want ErrUnsupported", err)
			}
			heal, err := tg.Partition(ctx, cutBoth([]string{n}, everyone), nemesis.Drop)
			if err != nil {
				t.Fatal(err)
			}
			addr, _ := tg.HostAddr(n)
			if c, err := net.DialTimeout("tcp", addr, 3*time.Second); err == nil {
				// The published port may still accept, but the node behind it is gone: nothing answers.
				c.SetDeadline(time.Now().Add(2 * time.Second))
				_, rerr := c.Read(make([]byte, 1))
				c.Close()
				if rerr == nil {
					t.Fatalf("%s answered at %s while disconnected", n, addr)
				}
			}
			eventually(t, time.Minute, n+" out of the ISR (the others no longer hear it)", func() error {
				isr, err := tg.ISR(ctx, topic, 0)
				if err != nil || slices.Contains(isr, n) {
					return errorf("ISR %v: %v", isr, err)
				}
				return nil
			})
			if err := tg.Healthy(ctx, []string{topic}); err == nil {
				t.Fatal("Healthy while a node is disconnected")
			}
			produce(t, ctx, cl, "c", 20)
			if err := heal(); err != nil {
				t.Fatal(err)
			}
			if err := heal(); err != nil { // healing twice is harmless
				t.Fatal(err)
			}
			eventually(t, time.Minute, "healthy after reconnecting "+n, func() error { return tg.Healthy(ctx, []string{topic}) })
			if _, err := tg.Partition(ctx, cutBoth([]string{"node-1"}, []string{"node-2", "node-3", nemesis.Client}), nemesis.Reset); err != nil {
				t.Fatal(err)
			}
			if err := tg.HealNetwork(ctx); err != nil {
				t.Fatal(err)
			}
			eventually(t, time.Minute, "healthy after HealNetwork", func() error { return tg.Healthy(ctx, []string{topic}) })
		}},
		{"pause-resume", func(t *testing.T) {
			old := leader(t, ctx, tg)
			if err := tg.Pause(ctx, []string{old}); err != nil {
				t.Fatal(err)
			}
			eventually(t, time.Minute, "a new leader while "+old+" is frozen", func() error {
				l, err := tg.Leader(ctx, topic, 0)
				if err != nil || l == "" || l == old {
					return errorf("leader %q (paused %s): %v", l, old, err)
				}
				return nil
			})
			if !running(t, ctx, tg, old) {
				t.Fatalf("%s is not running while paused", old)
			}
			if err := tg.Resume(ctx, []string{old}); err != nil {
				t.Fatal(err)
			}
			eventually(t, time.Minute, "healthy after resuming "+old, func() error { return tg.Healthy(ctx, []string{topic}) })
		}},
		{"power-loss", func(t *testing.T) {
			n := "node-1"
			if err := tg.PowerLoss(ctx, []string{n}); err != nil {
				t.Fatal(err)
			}
			if running(t, ctx, tg, n) {
				t.Fatalf("%s still runs after a power loss", n)
			}
			if !strings.Contains(logOf(t, ctx, tg, n), "power loss") {
				t.Fatalf("%s's log does not show the power loss", n)
			}
			if err := tg.Restart(ctx, []string{n}); err != nil {
				t.Fatal(err)
			}
			eventually(t, time.Minute, "healthy after the power loss", func() error { return tg.Healthy(ctx, []string{topic}) })
			// Everything sent so far survived: acks=all on rf=3 with at most one node down at a time.
			want := 100 + 20 + 20
			if got := consumeAll(t, ctx, tg, want); len(got) != want {
				t.Fatalf("read back %d values, want %d", len(got), want)
			}
		}},
		{"unsupported", func(t *testing.T) {
			if _, err := tg.LoseResponses(ctx, []string{"node-1"}); !errors.Is(err, nemesis.ErrUnsupported) {
				t.Errorf("LoseResponses: %v", err)
			}
			if _, err := tg.Latency(ctx, []string{"node-1"}, time.Millisecond, 0); !errors.Is(err, nemesis.ErrUnsupported) {
				t.Errorf("Latency: %v", err)
			}
			if err := tg.ResetConnections(ctx, []string{"node-1"}); !errors.Is(err, nemesis.ErrUnsupported) {
				t.Errorf("ResetConnections: %v", err)
			}
			for k, want := range map[nemesis.Kind]bool{nemesis.Kill: true, nemesis.Stop: true, nemesis.Pause: true,
				nemesis.Partition: true, nemesis.PowerLoss: true, nemesis.LoseResponses: false, nemesis.Latency: false, nemesis.ResetConns: false} {
				if tg.Supports(k) != want {
					t.Errorf("Supports(%s) = %v, want %v", k, !want, want)
				}
			}
			c, err := tg.Controller(ctx)
			if err != nil || !slices.Contains(tg.Nodes(), c) {
				t.Errorf("Controller() = %q, %v", c, err)
			}
		}},
		{"collect", func(t *testing.T) {
			dir := t.TempDir()
			if err := tg.Collect(ctx, dir); err != nil {
				t.Fatal(err)
			}
			for _, n := range tg.Nodes() {
				b, err := os.ReadFile(filepath.Join(dir, n, "broker.log"))
				if err != nil || !strings.Contains(string(b), kafkatrialReadyLog) {
					t.Errorf("%s/broker.log: %v, %d bytes without the ready line", n, err, len(b))
				}
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.Fatalf("step %s failed; later steps depend on it", s.name)
		}
	}
}

// TestStartFailureCleansUp starts a cluster one of whose nodes exits at once and checks that Start fails
// with that node's own words and leaves no container or network behind.
func TestStartFailureCleansUp(t *testing.T) {
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	count := func() (int, int) {
		cs, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", nodeLabel)})
		if err != nil {
			t.Fatal(err)
		}
		ns, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", networkLabel)})
		if err != nil {
			t.Fatal(err)
		}
		return len(cs.Items), len(ns.Items)
	}
	c0, n0 := count()
	sp, err := specs(KindKafkatrial, "", 3, "", nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Only node-1 fails; the others wait for a quorum that cannot form until its failure stops them.
	sp[0].Cmd = append(sp[0].Cmd, "--no-such-flag")
	_, err = startSpecs(ctx, scenarios.TargetConfig{Nodes: 3, Logger: testLogger(t)}, KindKafkatrial, sp)
	if err == nil || !strings.Contains(err.Error(), "node-1") || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("Start with nodes that exit: %v, want an error naming the node and quoting its log", err)
	}
	if c, n := count(); c != c0 || n != n0 {
		t.Fatalf("after the failed start: %d containers and %d networks labelled, want %d and %d", c, n, c0, n0)
	}
}

func TestUnknownTargetSettingsRefused(t *testing.T) {
	_, err := Start(context.Background(), scenarios.TargetConfig{Nodes: 3, Broker: map[string]string{"retention.ms": "3000"}})
	if err == nil || !strings.Contains(err.Error(), "retention.ms") {
		t.Fatalf("Start with a broker setting the node cannot honour: %v", err)
	}
}

// A scenario's broker settings reach the node in its container: the topic's configs show the setting as the
// broker's static config.
func TestBrokerSettingsReachTheNode(t *testing.T) {
	requireDocker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	tg, err := Start(ctx, scenarios.TargetConfig{Nodes: 1, Dir: t.TempDir(), Seed: 1, Logger: testLogger(t),
		Broker: map[string]string{"min.insync.replicas": "2"}})
	if err != nil {
		t.Fatalf("starting the docker target: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := tg.Close(ctx); err != nil {
			t.Errorf("closing the docker target: %v", err)
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(tg.Bootstrap()...), kgo.Dialer(tg.Dial()),
		kgo.RetryTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "settings")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating the topic: %v", err)
	}
	cfgs, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, "settings")
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfgs.On("settings", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.Configs {
		if e.Key == "min.insync.replicas" {
			if e.Value == nil || *e.Value != "2" || e.Source != kmsg.ConfigSourceStaticBrokerConfig {
				t.Fatalf("min.insync.replicas = %v (source %v), want 2 from the broker's static config", e.MaybeValue(), e.Source)
			}
			return
		}
	}
	t.Fatalf("the topic's configs lack min.insync.replicas: %+v", c.Configs)
}

func newClient(t *testing.T, tg *Target) *kgo.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(tg.Bootstrap()...), kgo.Dialer(tg.Dial()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RetryTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce sends n values prefix-0.. synchronously with acks=all and returns them.
func produce(t *testing.T, ctx context.Context, cl *kgo.Client, prefix string, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		v := fmt.Sprintf("%s-%d", prefix, i)
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := cl.ProduceSync(pctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)}).FirstErr()
		cancel()
		if err != nil {
			t.Fatalf("producing %s: %v", v, err)
		}
		out = append(out, v)
	}
	return out
}

// consumeAll reads partition 0 from the start with a fresh client until it has want values.
func consumeAll(t *testing.T, ctx context.Context, tg *Target, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(tg.Bootstrap()...), kgo.Dialer(tg.Dial()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("consumed %d of %d values within a minute", len(got), want)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func leader(t *testing.T, ctx context.Context, tg *Target) string {
	t.Helper()
	l, err := tg.Leader(ctx, topic, 0)
	if err != nil || l == "" {
		t.Fatalf("leader of %s/0: %q, %v", topic, l, err)
	}
	return l
}

func running(t *testing.T, ctx context.Context, tg *Target, name string) bool {
	t.Helper()
	n, err := tg.node(name)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tg.inspect(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return st.Running
}

func logOf(t *testing.T, ctx context.Context, tg *Target, name string) string {
	t.Helper()
	dir := t.TempDir()
	if err := tg.Collect(ctx, dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name, "broker.log"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func head(s []string) []string { return s[:min(len(s), 5)] }

func tail(s string) string { return s[max(0, len(s)-2000):] }
