package external

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/nemesis"
)

// offlineTarget builds a Target over a fixed broker table without a cluster, for the command side: the
// commands run for real (sh -c), only the topology is absent.
func offlineTarget(t *testing.T, yml string, brokers map[int32]brokerAddr) *Target {
	t.Helper()
	cfg, err := ParseConfig([]byte(yml), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := cfg.templates()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tg := &Target{cfg: cfg, tmpl: tmpl, seeds: []string{"127.0.0.1:1"}, logger: slog.New(slog.DiscardHandler),
		logPath: filepath.Join(dir, "external-commands.log"), addrs: brokers,
		down: map[int32]bool{}, paused: map[int32]bool{}, netFaulted: map[int32]bool{}}
	for id := range brokers {
		tg.ids = append(tg.ids, id)
	}
	slices.Sort(tg.ids)
	if tg.cmds, err = newCommandRunner(tg.logPath, cfg.Timeout, tg.logger); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.cmds.close() })
	return tg
}

func threeBrokers() map[int32]brokerAddr {
	return map[int32]brokerAddr{1: {"kafka-1", 9092}, 2: {"kafka-2", 9093}, 3: {"kafka-3", 9094}}
}

// record returns a config line whose command appends "key <args>" to file.
func record(key, file, args string) string {
	return fmt.Sprintf("  %s: \"echo %s %s >> %s\"\n", key, key, args, file)
}

func lines(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestSupportsNeedsActAndUndo(t *testing.T) {
	tg := offlineTarget(t, "commands:\n  kill: \"true\"\n  restart: \"true\"\n  pause: \"true\"\n  isolate: \"true\"\n", threeBrokers())
	for k, want := range map[nemesis.Kind]bool{
		nemesis.Kill: true, nemesis.Stop: false, nemesis.Pause: false /* no resume */, nemesis.PowerLoss: false,
		nemesis.Partition: false /* no heal */, nemesis.Latency: false, nemesis.ResetConns: false, nemesis.LoseResponses: false,
		nemesis.UncleanElection: false, nemesis.CrashProducer: false,
	} {
		if got := tg.Supports(k); got != want {
			t.Errorf("Supports(%s) = %v, want %v", k, got, want)
		}
	}
}

func TestValidateRefusesUnconfiguredFault(t *testing.T) {
	tg := offlineTarget(t, "commands:\n  kill: \"true\"\n  restart: \"true\"\n", threeBrokers())
	r := &nemesis.Runner{Cluster: tg}
	if err := r.Validate([]nemesis.Planned{{Kind: nemesis.Kill}, {Kind: nemesis.ControllerKill}}); err != nil {
		t.Fatalf("Validate refused configured faults: %v", err)
	}
	for _, k := range []nemesis.Kind{nemesis.Pause, nemesis.Partition, nemesis.UncleanElection, nemesis.RollingBounce, nemesis.Latency} {
		err := r.Validate([]nemesis.Planned{{Kind: nemesis.Kill}, {Kind: k}})
		if err == nil || !strings.Contains(err.Error(), `"`+string(k)+`"`) {
			t.Errorf("Validate with %s = %v, want an error naming it", k, err)
		}
	}
}

func TestPlaceholdersExpandInCommands(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	yml := "commands:\n" + record("kill", out, "{id} {node} {host} {port} {peers}") + record("restart", out, "{node}") +
		record("isolate", out, "{node} {peers} {mode}") + record("heal", out, "{node}") +
		record("latency", out, "{node} {latency_ms} {jitter_ms}")
	tg := offlineTarget(t, yml, threeBrokers())
	ctx := context.Background()
	if err := tg.Kill(ctx, []string{"node-2"}); err != nil {
		t.Fatal(err)
	}
	heal, err := tg.Latency(ctx, []string{"node-3"}, 50*time.Millisecond, 1500*time.Microsecond)
	if err != nil {
		t.Fatal(err)
	}
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	want := []string{"kill 2 node-2 kafka-2 9093 kafka-1,kafka-3", "latency node-3 50 2", "heal node-3"}
	if got := lines(t, out); !slices.Equal(got, want) {
		t.Errorf("commands ran:\n%q\nwant\n%q", got, want)
	}
	if err := tg.Kill(ctx, []string{"node-9"}); err == nil || !strings.Contains(err.Error(), "node-9") {
		t.Errorf("Kill(node-9) = %v, want an error naming the unknown node", err)
	}
}

func TestFailingCommandErrorNamesIt(t *testing.T) {
	tg := offlineTarget(t, "commands:\n  stop: \"echo about to fail on {host}; echo disk on fire >&2; exit 3\"\n  restart: \"true\"\n", threeBrokers())
	err := tg.Stop(context.Background(), []string{"node-1"})
	var ce *CommandError
	if !errors.As(err, &ce) {
		t.Fatalf("Stop = %v, want a *CommandError", err)
	}
	for _, w := range []string{"stop command", "node-1", "echo about to fail on kafka-1", "exit status 3", "disk on fire"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	dir := t.TempDir()
	if err := tg.Collect(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(filepath.Join(dir, "commands.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"node-1 stop: echo about to fail on kafka-1", "FAILED", "| disk on fire"} {
		if !strings.Contains(string(log), w) {
			t.Errorf("commands.log lacks %q:\n%s", w, log)
		}
	}
}

func TestCommandTimeoutKillsTheProcessGroup(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "survived")
	yml := fmt.Sprintf("timeout: 300ms\ncommands:\n  pause: \"sh -c 'sleep 5; touch %s' ; true\"\n  resume: \"true\"\n", marker)
	tg := offlineTarget(t, yml, threeBrokers())
	err := tg.Pause(context.Background(), []string{"node-1"})
	if err == nil || !strings.Contains(err.Error(), "timed out") || !strings.Contains(err.Error(), "pause") {
		t.Fatalf("Pause = %v, want a timeout naming the pause command", err)
	}
	time.Sleep(6 * time.Second)
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command's child outlived the timeout: the process group was not killed")
	}
}

func TestRestartAndResumeOnlyWhatWeChanged(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	yml := "commands:\n" + record("kill", out, "{node}") + record("restart", out, "{node}") + record("pause", out, "{node}") +
		record("resume", out, "{node}") + record("isolate", out, "{node}") + record("heal", out, "{node}")
	tg := offlineTarget(t, yml, threeBrokers())
	ctx := context.Background()
	all := tg.Nodes()
	if err := tg.Restart(ctx, all); err != nil {
		t.Fatal(err)
	}
	if err := tg.Resume(ctx, all); err != nil {
		t.Fatal(err)
	}
	if err := tg.HealNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, out); len(got) != 0 {
		t.Fatalf("undo with nothing done ran %q", got)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tg.Kill(ctx, []string{"node-1"}))
	must(tg.Pause(ctx, []string{"node-3"}))
	_, err := tg.Partition(ctx, isolate([]string{"node-2"}, all, false), nemesis.Drop)
	must(err)
	must(tg.Restart(ctx, all))
	must(tg.Restart(ctx, all))
	must(tg.Close(ctx))
	want := []string{"kill node-1", "pause node-3", "isolate node-2", "restart node-1", "heal node-2", "resume node-3"}
	if got := lines(t, out); !slices.Equal(got, want) {
		t.Errorf("commands ran:\n%q\nwant\n%q", got, want)
	}
}

// isolate builds the links of nodes cut off every other node (and clients when withClients), as the
// nemesis's isolate-node and majority-minority shapes do.
func isolate(nodes, all []string, withClients bool) []nemesis.Link {
	var links []nemesis.Link
	for _, n := range nodes {
		others := slices.DeleteFunc(slices.Clone(all), func(o string) bool { return slices.Contains(nodes, o) })
		if withClients {
			others = append(others, nemesis.Client)
		}
		for _, o := range others {
			links = append(links, nemesis.Link{From: n, To: o}, nemesis.Link{From: o, To: n})
		}
	}
	return links
}

func TestIsolatedNodes(t *testing.T) {
	three := []string{"node-1", "node-2", "node-3"}
	five := []string{"node-1", "node-2", "node-3", "node-4", "node-5"}
	oneWay := []nemesis.Link{{From: "node-2", To: "node-1"}, {From: "node-3", To: "node-1"}}
	dataPlane := []nemesis.Link{{From: "node-1", To: "node-2", Plane: nemesis.PlaneData}, {From: "node-2", To: "node-1", Plane: nemesis.PlaneData}}
	cases := []struct {
		name        string
		links       []nemesis.Link
		nodes       []string
		cutsClients bool
		want        []string
		wantErr     string
	}{
		{name: "isolate-node without clients", links: isolate([]string{"node-2"}, three, false), nodes: three, want: []string{"node-2"}},
		{name: "isolate-node with clients", links: isolate([]string{"node-2"}, three, true), nodes: three, cutsClients: true, want: []string{"node-2"}},
		{name: "clients cut but the command does not cut them", links: isolate([]string{"node-2"}, three, true), nodes: three,
			wantErr: "client<->node-2"},
		{name: "clients not cut but the command cuts them", links: isolate([]string{"node-2"}, three, false), nodes: three, cutsClients: true,
			wantErr: "does not isolate whole nodes from every other broker and from clients"},
		{name: "majority-minority of three", links: isolate([]string{"node-3"}, three, false), nodes: three, want: []string{"node-3"}},
		{name: "minority of two in five keeps its pair", links: isolate([]string{"node-1", "node-2"}, five, false), nodes: five,
			wantErr: "does not isolate whole nodes"},
		{name: "one-way", links: oneWay, nodes: three, wantErr: "node-2->node-1"},
		{name: "data plane only", links: dataPlane, nodes: three, wantErr: "data plane"},
		{name: "empty", nodes: three, wantErr: "empty"},
		{name: "two whole nodes", links: append(isolate([]string{"node-1"}, five, false), isolate([]string{"node-4"}, five, false)...),
			nodes: five, want: []string{"node-1", "node-4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := isolatedNodes(c.links, c.nodes, c.cutsClients)
			if c.wantErr != "" {
				if !errors.Is(err, nemesis.ErrUnsupported) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("isolatedNodes = %v, %v; want ErrUnsupported containing %q", got, err, c.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Fatalf("isolatedNodes = %v, %v; want %v", got, err, c.want)
			}
		})
	}
}

func TestPartitionModes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	tg := offlineTarget(t, "commands:\n"+record("isolate", out, "{node}")+record("heal", out, "{node}"), threeBrokers())
	ctx := context.Background()
	links := isolate([]string{"node-1"}, tg.Nodes(), false)
	if _, err := tg.Partition(ctx, links, nemesis.Reset); !errors.Is(err, nemesis.ErrUnsupported) || !strings.Contains(err.Error(), "{mode}") {
		t.Errorf("reset partition without {mode} = %v, want ErrUnsupported naming {mode}", err)
	}
	if _, err := tg.LoseResponses(ctx, []string{"node-1"}); !errors.Is(err, nemesis.ErrUnsupported) {
		t.Errorf("LoseResponses unconfigured = %v, want ErrUnsupported", err)
	}
	if err := tg.ResetConnections(ctx, []string{"node-1"}); !errors.Is(err, nemesis.ErrUnsupported) {
		t.Errorf("ResetConnections unconfigured = %v, want ErrUnsupported", err)
	}
	heal, err := tg.Partition(ctx, links, nemesis.Drop)
	if err != nil {
		t.Fatal(err)
	}
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	if err := tg.HealNetwork(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := lines(t, out), []string{"isolate node-1", "heal node-1"}; !slices.Equal(got, want) {
		t.Errorf("commands ran %q, want %q (heal once)", got, want)
	}
}

func TestPartitionFailureHealsWhatItTouched(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	yml := "commands:\n  isolate: \"echo isolate {node} >> " + out + "; test {id} != 4\"\n" + record("heal", out, "{node}")
	brokers := threeBrokers()
	brokers[4] = brokerAddr{"kafka-4", 9095}
	tg := offlineTarget(t, yml, brokers)
	all := tg.Nodes()
	links := append(isolate([]string{"node-1"}, all, false), isolate([]string{"node-4"}, all, false)...)
	if _, err := tg.Partition(context.Background(), links, ""); err == nil || !strings.Contains(err.Error(), "node-4") {
		t.Fatalf("Partition = %v, want the failure on node-4", err)
	}
	want := []string{"isolate node-1", "isolate node-4", "heal node-1", "heal node-4"}
	if got := lines(t, out); !slices.Equal(got, want) {
		t.Errorf("commands ran %q, want %q", got, want)
	}
}

func TestConfigFromScenarioWinsOverEnv(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	os.WriteFile(a, []byte("commands:\n  kill: \"true\"\n"), 0o644)
	os.WriteFile(b, []byte("commands:\n  stop: \"true\"\n"), 0o644)
	t.Setenv(ConfigEnv, a)
	c, path, err := configFor("")
	if err != nil || path != a || c.Commands.Kill == "" {
		t.Errorf("from env: %+v %q %v", c, path, err)
	}
	c, path, err = configFor(b)
	if err != nil || path != b || c.Commands.Stop == "" {
		t.Errorf("from the scenario: %+v %q %v", c, path, err)
	}
	t.Setenv(ConfigEnv, "")
	c, path, err = configFor("")
	if err != nil || path != "" || c.Commands != (Commands{}) {
		t.Errorf("with neither: %+v %q %v", c, path, err)
	}
	t.Setenv(ConfigEnv, filepath.Join(dir, "missing.yaml"))
	if _, _, err := configFor(""); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// A restart command typically leaves the broker running in the background with the command's output still
// open; the run must end when the shell does, not when the background process does.
func TestBackgroundChildDoesNotHoldTheCommand(t *testing.T) {
	tg := offlineTarget(t, "timeout: 4s\ncommands:\n  kill: \"true\"\n  restart: \"sleep 8 & echo started {node}\"\n", threeBrokers())
	ctx := context.Background()
	if err := tg.Kill(ctx, []string{"node-1"}); err != nil {
		t.Fatal(err)
	}
	if err := tg.Restart(ctx, []string{"node-1"}); err != nil {
		t.Fatalf("Restart with a background child = %v, want success once the shell exits", err)
	}
	b, err := os.ReadFile(tg.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "| started node-1") {
		t.Errorf("command log lacks the output:\n%s", b)
	}
}
