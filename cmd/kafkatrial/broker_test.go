package main

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker"
	"github.com/spf13/cobra"
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
		// A fresh command each time: flag values persist across executions of one.
		expectUsageError(t, newBrokerNodeCmd(), append([]string{"--data", t.TempDir()}, tc.args...), tc.want)
	}
}

// expectUsageError runs cmd with args and fails t unless it ends in a usage error (exit 2) naming want.
func expectUsageError(t *testing.T, cmd *cobra.Command, args []string, want string) {
	t.Helper()
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	err := cmd.Execute()
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(err.Error(), want) {
		t.Errorf("%v: %v, want a usage error naming %q", args, err, want)
	}
}

// A data directory in use by another broker fails `broker` and `broker node` at once with exit code 3 and a
// message naming the directory, instead of a second broker writing the same files (or joining the first's
// quorum under its identity).
func TestBrokerRefusesADataDirectoryInUse(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		lock string
		cmd  func() *cobra.Command
		args []string
	}{
		{dir, newBrokerCmd, []string{"--port", "0", "--data", dir}},
		{dir, newBrokerCmd, []string{"--nodes", "3", "--port", "0", "--data", dir}},
		{filepath.Join(dir, "node-2"), newBrokerNodeCmd, []string{"--id", "2", "--listen", "127.0.0.1:0", "--data", dir}},
	} {
		lock, err := broker.LockDir(tc.lock)
		if err != nil {
			t.Fatal(err)
		}
		cmd := tc.cmd()
		cmd.SetArgs(tc.args)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		done := make(chan error, 1)
		go func() { done <- cmd.Execute() }()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("%v: still running 10s after starting on a locked directory", tc.args)
		}
		lock.Unlock()
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != exitCannotRun || !strings.Contains(err.Error(), tc.lock) ||
			!errors.Is(err, broker.ErrDirLocked) {
			t.Errorf("%v: %v, want exit code %d naming %s as in use", tc.args, err, exitCannotRun, tc.lock)
		}
	}
}

// Bad flags of `broker` are usage errors (exit 2) naming the flag, found before anything starts.
func TestBrokerRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--port", "70000"}, "--port 70000"},
		{[]string{"--nodes", "3", "--port", "65534"}, "leaves no room for 3 nodes"},
		{[]string{"--nodes", "0"}, "--nodes 0"},
	} {
		expectUsageError(t, newBrokerCmd(), tc.args, tc.want)
	}
}
