package external

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxOutputBytes bounds the output kept of one command run (the rest is counted, not kept).
const maxOutputBytes = 64 << 10

// commandRunner runs expanded commands with `sh -c` under a timeout and appends each run, with its output,
// to the command log. It is safe for concurrent use; each run appends its whole entry at once.
type commandRunner struct {
	timeout time.Duration
	logger  *slog.Logger

	mu  sync.Mutex // guards log writes
	log *os.File
}

func newCommandRunner(logPath string, timeout time.Duration, logger *slog.Logger) (*commandRunner, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating the command log: %w", err)
	}
	return &commandRunner{timeout: timeout, logger: logger, log: f}, nil
}

// CommandError is a command that failed: it exited nonzero, timed out or could not start.
type CommandError struct {
	Key     string // the commands key (kill, restart, ...)
	Node    string
	Command string // as run, placeholders expanded
	Output  string // the tail of its combined output
	Err     error
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%s command for %s (%s) failed: %v", e.Key, e.Node, e.Command, e.Err)
	if out := strings.TrimSpace(e.Output); out != "" {
		msg += ": " + out
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// run runs one command for node and logs it. The command runs in its own process group, so a timeout kills
// whatever it started in the foreground (ssh and its children), not just the shell.
func (r *commandRunner) run(ctx context.Context, key, node, command string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A command that leaves a background process holding its output open (a restart script) must not hang
	// the run: stop waiting for the output shortly after the shell exits.
	cmd.WaitDelay = 2 * time.Second
	out := &cappedBuffer{max: maxOutputBytes}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	if err != nil && errors.Is(err, exec.ErrWaitDelay) {
		err = nil // the shell exited cleanly; a background child kept the output open
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", r.timeout, err)
	}
	r.append(start, key, node, command, took, err, out)
	if err != nil {
		r.logger.Warn("external command failed", "command", key, "node", node, "err", err)
		return &CommandError{Key: key, Node: node, Command: command, Output: tail(out.String(), 512), Err: err}
	}
	r.logger.Info("external command", "command", key, "node", node, "took", took)
	return nil
}

// append writes one log entry: when, what, how it ended, and the output indented.
func (r *commandRunner) append(start time.Time, key, node, command string, took time.Duration, err error, out *cappedBuffer) {
	var b strings.Builder
	status := "ok"
	if err != nil {
		status = "FAILED: " + err.Error()
	}
	fmt.Fprintf(&b, "%s %s %s: %s\n  -> %s after %v\n", start.UTC().Format(time.RFC3339Nano), node, key, command, status, took)
	if s := out.String(); s != "" {
		for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
			b.WriteString("  | " + line + "\n")
		}
	}
	if out.dropped > 0 {
		fmt.Fprintf(&b, "  | ... %d more bytes of output not kept\n", out.dropped)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, werr := r.log.WriteString(b.String()); werr != nil {
		r.logger.Warn("writing the command log", "err", werr)
	}
}

func (r *commandRunner) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.Close()
}

// cappedBuffer keeps the first max bytes written and counts the rest.
type cappedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	max     int
	dropped int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.max - c.buf.Len()
	if room >= len(p) {
		c.buf.Write(p)
		return len(p), nil
	}
	if room > 0 {
		c.buf.Write(p[:room])
	}
	c.dropped += len(p) - max(room, 0)
	return len(p), nil
}

func (c *cappedBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
