package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// `broker node` refuses a setting it cannot honour, naming it, before starting anything: a container running it
// must never run a trial with a setting silently ignored.
func TestBrokerNodeRefusesUnknownSettings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "no.such.setting=1"}, "no.such.setting"},
		{[]string{"--set", "retention.ms=1000"}, "retention.ms"},
		{[]string{"--set", "min.insync.replicas"}, "key=value"},
		{[]string{"--set", "replica.lag.time.max.ms=soon"}, "replica.lag.time.max.ms"},
		{[]string{"--timing", "fast"}, "fast"},
	} {
		cmd := newBrokerNodeCmd() // a fresh command: flag values persist across executions of one
		cmd.SetArgs(append([]string{"--data", t.TempDir()}, tc.args...))
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		err := cmd.Execute()
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a usage error naming %q", tc.args, err, tc.want)
		}
	}
}
