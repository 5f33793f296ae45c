package broker

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// kcat runs Debian's kcat (librdkafka 2.x) against the node with stdin and returns stdout.
func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %v: %v\nstderr: %s", args, err, stderr.String())
	}
	return string(out)
}

func TestKcat(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat is not installed (Debian: apt-get install -y kcat); skipping the librdkafka interop test")
	}
	tn := startTestNode(t)
	const topic = "kcat-topic"
	tn.createTopic(topic, 3, nil)
	b := tn.Addr()

	t.Run("metadata", func(t *testing.T) {
		out := kcat(t, "", "-b", b, "-L", "-t", topic)
		if !strings.Contains(out, fmt.Sprintf("topic %q with 3 partitions:", topic)) {
			t.Fatalf("kcat -L does not list the topic with 3 partitions:\n%s", out)
		}
		for p := range 3 {
			if !strings.Contains(out, fmt.Sprintf("partition %d, leader 1,", p)) {
				t.Fatalf("kcat -L misses partition %d led by node 1:\n%s", p, out)
			}
		}
	})

	const n = 500
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf("line-%d", i))
	}
	t.Run("produce-consume-query", func(t *testing.T) {
		kcat(t, strings.Join(lines, "\n")+"\n", "-b", b, "-P", "-t", topic, "-p", "1")
		out := kcat(t, "", "-b", b, "-C", "-t", topic, "-p", "1", "-o", "beginning", "-e", "-q")
		got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if strings.Join(got, "\n") != strings.Join(lines, "\n") {
			t.Fatalf("kcat -C read %d lines, want exactly the %d produced; first %q", len(got), n, got[:min(3, len(got))])
		}
		q := kcat(t, "", "-b", b, "-Q", "-t", fmt.Sprintf("%s:1:-1", topic))
		if want := fmt.Sprintf("%s [1] offset %d", topic, n); !strings.Contains(q, want) {
			t.Fatalf("kcat -Q = %q, want it to contain %q", q, want)
		}
		q = kcat(t, "", "-b", b, "-Q", "-t", fmt.Sprintf("%s:0:-1", topic))
		if want := fmt.Sprintf("%s [0] offset 0", topic); !strings.Contains(q, want) {
			t.Fatalf("kcat -Q of the empty partition = %q, want %q", q, want)
		}
	})
}
