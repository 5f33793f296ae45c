package broker

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kafkatrial/kafkatrial/broker/storage"
)

// TestGroupKcatBalancedConsumer: kcat -G (librdkafka's balanced consumer) joins a group on the built-in
// broker, consumes every record, commits on exit, and kadm sees the committed offsets.
func TestGroupKcatBalancedConsumer(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (apt-get install -y kcat); librdkafka's group client is not exercised")
	}
	const (
		topic      = "kcat-topic"
		group      = "g-kcat"
		partitions = 3
		perPart    = 20
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*groupWait)
	defer cancel()
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	node := startGroupTestNode(t, disk)
	defer node.Close()
	admCl := newGroupTestClient(t, node.Addr())
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	produceEach(t, ctx, node.Addr(), topic, partitions, 0, perPart)

	runCtx, runCancel := context.WithTimeout(ctx, groupWait)
	defer runCancel()
	cmd := exec.CommandContext(runCtx, kcat, "-b", node.Addr(), "-G", group, "-e", "-q",
		"-f", "%p %o %s\n", "-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=10000",
		"-X", "debug=cgrp", topic)
	// On timeout ask kcat to stop (SIGTERM) so its log is flushed into the failure message.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat -G failed after %v: %v\nstdout:\n%s\nstderr (tail):\n%s", time.Since(start), err,
			stdout.String(), tail(stderr.String(), 20000))
	}
	seen := map[string]bool{}
	for line := range strings.Lines(stdout.String()) {
		var p, o int
		var v string
		if _, err := fmt.Sscanf(line, "%d %d %s", &p, &o, &v); err != nil {
			t.Fatalf("unexpected kcat line %q: %v", line, err)
		}
		if want := fmt.Sprintf("p%d-%d", p, o); v != want {
			t.Fatalf("kcat read %q at %d/%d, want %q", v, p, o, want)
		}
		seen[line] = true
	}
	if len(seen) != partitions*perPart {
		t.Fatalf("kcat consumed %d distinct records, want %d\nstderr (tail):\n%s", len(seen), partitions*perPart,
			tail(stderr.String(), 20000))
	}
	assertCommitted(t, ctx, adm, group, topic, partitions, perPart)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
