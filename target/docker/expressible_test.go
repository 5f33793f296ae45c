package docker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kafkatrial/kafkatrial/nemesis"
	"github.com/kafkatrial/kafkatrial/scenarios"
)

// TestExpressibleAgreesWithSupports: what validation accepts is what a started target carries out, image by
// image.
func TestExpressibleAgreesWithSupports(t *testing.T) {
	basic := []nemesis.Kind{nemesis.Kill, nemesis.Stop, nemesis.Pause, nemesis.PowerLoss, nemesis.Partition,
		nemesis.LoseResponses, nemesis.Latency, nemesis.ResetConns, nemesis.Corrupt}
	for _, image := range []string{"", "apache/kafka:3.9.0", "redpandadata/redpanda:v24.2.1"} {
		kind, ref, err := ParseImage(image)
		if err != nil {
			t.Fatal(err)
		}
		sp, err := specs(kind, ref, 3, "trial", nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		tg := &Target{nodes: []*node{{spec: sp[0]}}}
		for _, k := range basic {
			got := Expressible(image, k, nemesis.IsolateNode) == nil
			if got != tg.Supports(k) {
				t.Errorf("image %q, %s: validation accepts %v, the target supports %v", image, k, got, tg.Supports(k))
			}
		}
	}
	for _, tc := range []struct {
		kind  nemesis.Kind
		shape nemesis.Shape
		ok    bool
		why   string
	}{
		{nemesis.Partition, nemesis.IsolateNode, true, ""},
		{nemesis.Partition, nemesis.IsolateLeaderBoth, true, ""},
		{nemesis.Partition, nemesis.IsolateLeaderFollowers, false, "isolates whole nodes only"},
		{nemesis.Partition, nemesis.IsolateLeaderClients, false, "isolates whole nodes only"},
		{nemesis.Partition, nemesis.OneWay, false, "shape one-way cuts only some"},
		{nemesis.Partition, nemesis.Ring, false, "isolates whole nodes only"},
		{nemesis.Partition, "", false, `shape "random" draws one of every shape`},
		{nemesis.UncleanElection, "", false, "cuts a leader off its followers"},
		{nemesis.RetryStorm, "", false, "needs a proxy"},
		{nemesis.Latency, "", false, "added latency needs a proxy"},
		{nemesis.Corrupt, "", false, "corrupting requests needs a proxy"},
		{nemesis.RollingBounce, "", true, ""},
		{nemesis.ControllerKill, "", true, ""},
		{nemesis.PowerLossAll, "", true, ""},
		{nemesis.CrashConsumer, "", true, ""},
	} {
		err := Expressible("", tc.kind, tc.shape)
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), tc.why)) {
			t.Errorf("%s %q: %v, want ok=%v (%s)", tc.kind, tc.shape, err, tc.ok, tc.why)
		}
	}
	if err := Expressible("apache/kafka:3.9.0", nemesis.PowerLossAll, ""); err == nil || !strings.Contains(err.Error(), "no hook") {
		t.Errorf("power loss on Apache Kafka: %v", err)
	}
}

// TestDockerRefusesAtValidation: a scenario docker can never run is a bad scenario when validated, before any
// image is built, naming the schedule entry and key; one it can run passes.
func TestDockerRefusesAtValidation(t *testing.T) {
	s, err := scenarios.Parse([]byte(`id: lat
target: docker
workload: {producers: [{}]}
nemesis: {schedule: [{at: 1s, fault: kill}, {at: 2s, fault: corrupt, duration: 1s}]}
`), "lat.yaml")
	if err == nil || err.Error() != "lat.yaml: nemesis.schedule[1].fault: the docker target cannot carry out corrupt: corrupting requests needs a proxy on the connection, which this target does not have" {
		t.Errorf("corrupt on docker: %v", err)
	}
	if s != nil {
		t.Errorf("a refused scenario was returned")
	}
	ok, err := scenarios.Load("acksall-safe-leader-kill")
	if err != nil {
		t.Fatal(err)
	}
	ok.Target = "docker"
	if err := ok.Validate(); err != nil {
		t.Errorf("leader kills on docker: %v", err)
	}
	ok.ApplyTargetDefaults()
	if ok.Cluster.Broker["min.insync.replicas"] == "" {
		t.Error("our image's broker defaults are not stated")
	}
	rp, _ := scenarios.Load("acksall-safe-leader-kill")
	rp.Target, rp.Cluster.Image = "docker", "redpandadata/redpanda:v24.2.1"
	rp.ApplyTargetDefaults()
	if _, ok := rp.Cluster.Broker["min.insync.replicas"]; ok {
		t.Error("Kafka's defaults were stated for Redpanda")
	}
}

// TestStaticBinaryCheck: the binary put in the image is recognised by its contents, whatever its name, and a
// refusal says what the file is.
func TestStaticBinaryCheck(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "kafkatrial")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkStaticKafkatrial(text); err == nil || !strings.Contains(err.Error(), "not a Linux (ELF) binary") {
		t.Errorf("a script named kafkatrial: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkStaticKafkatrial(self); err == nil || !strings.Contains(err.Error(), "is the Go program "+modulePath+"/target/docker.test, not "+kafkatrialCommand) {
		t.Errorf("this test binary: %v", err)
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Skipf("no module source to build kafkatrial from: %v", err)
	}
	static := filepath.Join(dir, "kt-static") // the name does not start with kafkatrial
	if err := compile(t.Context(), root, static); err != nil {
		t.Fatal(err)
	}
	if err := checkStaticKafkatrial(static); err != nil {
		t.Errorf("a static kafkatrial named kt-static: %v", err)
	}
}
