package controller

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestRaftLogLevels: raft's routine trial events are not logged as errors; real errors still are.
func TestRaftLogLevels(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{"[ERROR] raft: peer has newer term, stopping replication: peer=\"{Voter 2 127.0.0.1:1}\"", "level=INFO"},
		{"[WARN]  raft: heartbeat timeout reached, starting election: last-leader-addr= last-leader-id=", "level=INFO"},
		{"[ERROR] raft: failed to heartbeat to: peer=127.0.0.1:1 error=refused", "level=DEBUG"},
		{"[ERROR] raft: failed to take snapshot: error=disk full", "level=ERROR"},
		{"[WARN]  raft: rejecting vote request since we have a leader", "level=WARN"},
	} {
		var out bytes.Buffer
		w := hcWriter{slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		if _, err := w.Write([]byte(c.line + "\n")); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), c.want) {
			t.Errorf("%q logged as %q, want %s", c.line, out.String(), c.want)
		}
	}
}
