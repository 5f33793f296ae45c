package controller

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
)

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// newHCLogger routes hashicorp's logging into logger, Warn and above only: raft is chatty at Info about
// routine elections, which a trial causes on purpose.
func newHCLogger(logger *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: hcWriter{logger}, DisableTime: true})
}

// hcWriter turns hclog's formatted lines ("[WARN]  raft: message: k=v") into slog records. Failures to
// reach a peer are routine in a trial (the nemesis causes them), so they go to Debug rather than flood the
// log at Error once per retry; an election starting, or a leader learning it was replaced, is worth an Info
// line.
type hcWriter struct{ l *slog.Logger }

var routineRaftErrors = []string{"failed to heartbeat to", "failed to appendEntries to", "failed to make requestVote RPC",
	"failed to decode incoming command", "failed to accept connection", "failed to pipeline appendEntries",
	"failed to send snapshot to", "failed to contact"}

func (w hcWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		s := strings.TrimSpace(string(line))
		level := slog.LevelWarn
		if strings.HasPrefix(s, "[ERROR]") {
			level = slog.LevelError
		}
		s = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(s, "[ERROR]"), "[WARN]"))
		switch {
		case strings.Contains(s, "heartbeat timeout reached, starting election"),
			// A leader that hands over (a clean stop transfers leadership) or is deposed learns the new term
			// from a follower's answer: routine, not an error.
			strings.Contains(s, "peer has newer term, stopping replication"):
			level = slog.LevelInfo
		case slices.ContainsFunc(routineRaftErrors, func(r string) bool { return strings.Contains(s, r) }):
			level = slog.LevelDebug
		}
		w.l.Log(context.Background(), level, s, "component", "raft")
	}
	return len(p), nil
}
