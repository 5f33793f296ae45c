package scenarios

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/checker"
	"github.com/kafkatrial/kafkatrial/nemesis"
)

func claimsVerdict() *checker.Verdict {
	return &checker.Verdict{Claims: []checker.Claim{
		{Anomaly: "lost-write", Expect: "none", Held: true, Status: checker.StatusHeld},
		{Anomaly: "duplicate", Expect: "none", Observed: 2, Status: checker.StatusViolated},
		{Anomaly: "reorder", Expect: "some", Status: checker.StatusNotReproduced},
		{Anomaly: "phantom", Expect: "some", Observed: 1, Held: true, Status: checker.StatusReproduced},
		{Anomaly: "poll-skip", Expect: "any", Status: checker.StatusReported},
	}}
}

func TestJudgeFaults(t *testing.T) {
	failed := nemesis.Event{Time: int64(3200 * time.Millisecond), Fault: nemesis.Kill, Phase: nemesis.PhaseStart,
		Error: "finding the leader of nope/0: topic nope does not exist"}
	ok := nemesis.Event{Time: int64(5 * time.Second), Fault: nemesis.Kill, Targets: []string{"node-2"}, Phase: nemesis.PhaseStart}
	stop := nemesis.Event{Time: int64(6 * time.Second), Fault: nemesis.Kill, Targets: []string{"node-2"}, Phase: nemesis.PhaseStop, Error: "restart failed"}

	v := claimsVerdict()
	if judgeFaults(v, 2, []nemesis.Event{failed, ok, stop}, false) {
		t.Fatal("one fault was injected, yet the run is called fault-free")
	}
	want := "fault kill at 3.2s was not injected: finding the leader of nope/0: topic nope does not exist"
	if !slices.Equal(v.Notes, []string{want}) {
		t.Errorf("notes %q, want [%q]", v.Notes, want)
	}
	if !slices.EqualFunc(v.Claims, claimsVerdict().Claims, func(a, b checker.Claim) bool { return a == b }) {
		t.Errorf("claims changed although a fault was injected: %+v", v.Claims)
	}

	v = claimsVerdict()
	if !judgeFaults(v, 1, []nemesis.Event{failed}, false) {
		t.Fatal("no fault injected, not reported")
	}
	got := map[string]string{}
	for _, c := range v.Claims {
		got[c.Anomaly] = c.Status
		if c.Status == checker.StatusUnknown && (c.Held || c.Reason == "") {
			t.Errorf("unknown claim %+v: held or without a reason", c)
		}
	}
	wantStatus := map[string]string{"lost-write": "unknown", "duplicate": "violated", "reorder": "unknown", "phantom": "unknown", "poll-skip": "reported"}
	for k, s := range wantStatus {
		if got[k] != s {
			t.Errorf("%s: %s, want %s", k, got[k], s)
		}
	}
	if len(v.Notes) != 2 || !strings.Contains(v.Notes[1], "none of the 1 faults due was injected") {
		t.Errorf("notes %q", v.Notes)
	}
	if exitCode(v, true) != ExitViolated {
		t.Errorf("a violated guarantee stays a failure: exit %d", exitCode(v, true))
	}
	empty := &checker.Verdict{}
	if judgeFaults(empty, 0, nil, false) || exitCode(empty, false) != ExitOK {
		t.Error("a scenario without faults is judged on its claims alone")
	}
	if !judgeFaults(empty, 3, nil, false) || exitCode(empty, true) != ExitCannotRun {
		t.Error("faults planned, none started although the run went its full time, no claims: must not pass")
	}
	v = claimsVerdict()
	if judgeFaults(v, 3, nil, true) {
		t.Error("a run interrupted before any fault was due is judged on its claims, not called fault-free")
	}
	if !slices.EqualFunc(v.Claims, claimsVerdict().Claims, func(a, b checker.Claim) bool { return a == b }) || len(v.Notes) != 0 {
		t.Errorf("claims or notes changed for a run interrupted before its faults: %+v %q", v.Claims, v.Notes)
	}
	v = claimsVerdict()
	if !judgeFaults(v, 2, []nemesis.Event{failed}, true) {
		t.Error("interrupted after a fault was due and none injected: undecided")
	}
}

// TestApplyTargetDefaults: the run's scenario.yaml states the durability settings the target applies, and
// every default, and loads back to the same scenario.
func TestApplyTargetDefaults(t *testing.T) {
	s, err := Parse([]byte(minimal), "demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.Cluster.Broker = map[string]string{"unclean.leader.election.enable": "true", "replica.lag.time.max.ms": "500"}
	s.Topics = append(s.Topics, Topic{Name: "other", Partitions: 1, ReplicationFactor: 3})
	s.ApplyTargetDefaults()
	if s.Cluster.Broker["min.insync.replicas"] != "1" || s.Cluster.Broker["unclean.leader.election.enable"] != "true" {
		t.Errorf("cluster.broker %v", s.Cluster.Broker)
	}
	if c := s.Topics[0].Configs; c["min.insync.replicas"] != "2" || c["unclean.leader.election.enable"] != "true" || c["replica.lag.time.max.ms"] != "" {
		t.Errorf("topic with its own min.insync.replicas: %v", c)
	}
	if c := s.Topics[1].Configs; c["min.insync.replicas"] != "1" || c["unclean.leader.election.enable"] != "true" {
		t.Errorf("topic taking the broker's values: %v", c)
	}
	out, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"linger.ms: 5", "retry.backoff.ms: 100", "retry.backoff.max.ms: 1000", "process_time: 0s",
		"rate: 0\n", "min.insync.replicas: \"1\"", "unclean.leader.election.enable: \"true\""} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("scenario as run lacks %q:\n%s", want, out)
		}
	}
	s2, err := Parse(out, "round-trip")
	if err != nil {
		t.Fatalf("scenario as run does not load: %v\n%s", err, out)
	}
	s2.ApplyTargetDefaults()
	out2, _ := s2.Marshal()
	if !bytes.Equal(out, out2) {
		t.Errorf("round trip changed the scenario:\n%s\n---\n%s", out, out2)
	}

	ext, _ := Parse([]byte(minimal), "demo.yaml")
	ext.Target = "external"
	ext.ApplyTargetDefaults()
	if ext.Cluster.Broker != nil || ext.Topics[0].Configs["unclean.leader.election.enable"] != "" {
		t.Errorf("an external cluster's defaults are unknown, yet were written: %v %v", ext.Cluster.Broker, ext.Topics[0].Configs)
	}
}

func TestRateIsWrittenPlainly(t *testing.T) {
	for r, want := range map[Rate]string{200: "200", 0: "0", 2.5: "2.5"} {
		b, _ := r.MarshalYAML()
		if string(b) != want {
			t.Errorf("%v written as %s, want %s", float64(r), b, want)
		}
	}
}

func TestReproduceLine(t *testing.T) {
	s := &Scenario{ID: "my-trial", Source: "sc/custom trial.yaml"}
	got := ReproduceLine(s, 5, "docker", []string{"--set", "acks=1", "--set", "image=apache/kafka:3.9.0", "--set", "x=it's"})
	want := `kafkatrial run 'sc/custom trial.yaml' --seed 5 --target docker --set acks=1 --set image=apache/kafka:3.9.0 --set 'x=it'\''s'`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := ReproduceLine(&Scenario{ID: "acks1-leader-kill"}, 1, "", nil); got != "kafkatrial run acks1-leader-kill --seed 1" {
		t.Errorf("bundled: %s", got)
	}
}

// TestSourcesAreRecorded: a scenario remembers where it came from, so its reproduce line reruns the same
// file; a suite names itself in its errors.
func TestSourcesAreRecorded(t *testing.T) {
	s, err := Load("acks1-leader-kill")
	if err != nil || s.Source != "acks1-leader-kill" {
		t.Fatalf("bundled: %v %q", err, s.Source)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "getting-started.yaml")
	if err := os.WriteFile(file, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	if s, err := Load(file); err != nil || s.Source != file {
		t.Fatalf("file: %v %q", err, s.Source)
	}
	suite, err := Suite(dir)
	if err != nil || len(suite) != 1 || suite[0].Source != file {
		t.Fatalf("suite dir: %v %+v", err, suite)
	}
	claims, err := Suite("claims")
	if err != nil || claims[0].Source != claims[0].ID {
		t.Fatalf("claims suite: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "emptysuite")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Suite(empty); err == nil || !strings.Contains(err.Error(), "suite "+empty+" has no .yaml scenarios") {
		t.Errorf("empty suite: %v", err)
	}
}

func TestVaryRejectsRepeats(t *testing.T) {
	if _, err := ParseVary("acks=1,all,1"); err == nil || !strings.Contains(err.Error(), "value 1 listed twice") {
		t.Errorf("repeated value: %v", err)
	}
	if _, err := ParseVary("acks=1,,all"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty value: %v", err)
	}
	s, err := Parse([]byte(minimal), "demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "mx")
	sum, err := RunMatrix(t.Context(), s, []Vary{{"acks", []string{"1", "all"}}, {"acks", []string{"0"}}}, SuiteOptions{Out: out})
	if sum != nil || err == nil || !strings.Contains(err.Error(), "--vary acks given twice") {
		t.Fatalf("repeated key: %v", err)
	}
	if _, statErr := os.Stat(out); statErr == nil {
		t.Error("the matrix directory was created before the usage error")
	}
}

func TestStatusLineShowsRealRates(t *testing.T) {
	var buf bytes.Buffer
	st := newStatus(&buf, false)
	time.Sleep(100 * time.Millisecond) // set-up: not counted
	st.countFrom()
	st.phase("warmup")
	time.Sleep(100 * time.Millisecond)
	st.phase("faults") // a phase change does not restart the clock
	time.Sleep(100 * time.Millisecond)
	st.tick(40, 0, 0, nil)
	st.tick(40, 0, 0, nil) // a second tick at once must not print a line of 0/s
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if strings.Contains(l, " ok ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("status lines %q, want exactly one", lines)
	}
	// 40 sends over the 200ms since the clients started: 200/s. Sleeping overshoots (a loaded machine by a lot),
	// so anything up to 200/s; more means the clock restarted at a phase change (400/s), 0 the double tick.
	var rate float64
	if _, err := fmt.Sscanf(lines[0][strings.Index(lines[0], " ok ")+4:], "%f/s", &rate); err != nil {
		t.Fatalf("status line %q: %v", lines[0], err)
	}
	if rate <= 0 || rate > 200 {
		t.Errorf("status line %q: %v/s, want 40 sends over the 200ms since the clients started", lines[0], rate)
	}
}
