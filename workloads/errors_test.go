package workloads

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/history"
)

func TestSendOutcome(t *testing.T) {
	wrappedTimeout := fmt.Errorf("%w, last err: %w", kgo.ErrRecordTimeout, kerr.NotEnoughReplicas)
	for _, c := range []struct {
		name   string
		err    error
		writes int
		// rejected is how many of the writes the broker answered with a rejection before the append.
		rejected int
		want     history.Type
	}{
		{"success", nil, 1, 0, history.OK},
		{"success, tap blind", nil, -1, 0, history.OK},
		{"never sent, timeout", kgo.ErrRecordTimeout, 0, 0, history.Fail},
		{"never sent, aborting", kgo.ErrAborting, 0, 0, history.Fail},
		{"never sent, client closed", kgo.ErrClientClosed, 0, 0, history.Fail},
		{"never sent, unknown error", errors.New("boom"), 0, 0, history.Fail},
		{"sent, timeout", kgo.ErrRecordTimeout, 1, 0, history.Info},
		{"sent, retries", kgo.ErrRecordRetries, 3, 0, history.Info},
		{"sent, aborting", kgo.ErrAborting, 1, 0, history.Info},
		{"sent, client closed", kgo.ErrClientClosed, 1, 0, history.Info},
		{"sent, canceled", context.Canceled, 1, 0, history.Info},
		{"sent, not leader", kerr.NotLeaderForPartition, 1, 0, history.Info},
		{"sent, not enough replicas after append", kerr.NotEnoughReplicasAfterAppend, 1, 0, history.Info},
		{"sent, request timed out", kerr.RequestTimedOut, 1, 0, history.Info},
		{"sent, unknown server error", kerr.UnknownServerError, 1, 0, history.Info},
		{"sent once, not enough replicas", kerr.NotEnoughReplicas, 1, 1, history.Fail},
		{"sent once, message too large", kerr.MessageTooLarge, 1, 1, history.Fail},
		{"sent once, out of order sequence", kerr.OutOfOrderSequenceNumber, 1, 1, history.Fail},
		{"sent twice, not enough replicas", kerr.NotEnoughReplicas, 2, 0, history.Info},
		{"tap blind, not enough replicas", kerr.NotEnoughReplicas, -1, 0, history.Info},
		{"timeout wrapping a definite error", wrappedTimeout, 1, 0, history.Info},
		{"wrapped definite error", fmt.Errorf("producing: %w", kerr.NotEnoughReplicas), 1, 1, history.Fail},
		{"unknown error, sent", errors.New("boom"), 1, 0, history.Info},
		{"max buffered", kgo.ErrMaxBuffered, 0, 0, history.Fail},
		{"sent once, corrupt message, answer rejected it", kerr.CorruptMessage, 1, 1, history.Fail},
		{"sent once, corrupt message for another batch (kgo fails the whole partition)", kerr.CorruptMessage, 1, 0, history.Info},
		{"sent twice, both answers rejected it", kerr.NotEnoughReplicas, 2, 2, history.Fail},
		{"sent twice, one answer lost", kerr.NotEnoughReplicas, 2, 1, history.Info},
	} {
		if got := sendOutcome(c.err, c.writes, c.rejected); got != c.want {
			t.Errorf("%s: sendOutcome(%v, %d, %d) = %s, want %s", c.name, c.err, c.writes, c.rejected, got, c.want)
		}
	}
}

func TestCommitOutcome(t *testing.T) {
	for _, c := range []struct {
		err  error
		want history.Type
	}{
		{nil, history.OK},
		{kerr.IllegalGeneration, history.Fail},
		{kerr.RebalanceInProgress, history.Fail},
		{kerr.RequestTimedOut, history.Info},
		{errors.New("connection reset"), history.Info},
		{kgo.ErrClientClosed, history.Info},
	} {
		if got := commitOutcome(c.err); got != c.want {
			t.Errorf("commitOutcome(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

// TestDocTableMatchesRules: doc.go's table is the Go table, row for row.
func TestDocTableMatchesRules(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "//\t| ") && !strings.Contains(line, "| error ") {
			rows = append(rows, line)
		}
	}
	if len(rows) != len(sendRules) {
		t.Fatalf("doc.go has %d rows, sendRules %d", len(rows), len(sendRules))
	}
	for i, r := range sendRules {
		cells := strings.Split(rows[i], "|")
		if len(cells) < 4 || strings.TrimSpace(cells[1]) != r.name || strings.TrimSpace(cells[2]) != string(r.outcome) ||
			strings.TrimSpace(cells[3]) != r.why {
			t.Errorf("doc.go row %d %q differs from sendRules %+v", i, rows[i], r)
		}
	}
}
