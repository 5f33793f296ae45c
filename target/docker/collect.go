package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxLogBytes bounds how much of one container's log is read (Collect, readiness counts, error tails).
const maxLogBytes = 256 << 20

// logTailBytes is how much of a failing node's log an error quotes.
const logTailBytes = 2 << 10

// Collect writes each node's container log (stdout and stderr, every incarnation since the container was
// created) to dir/node-<id>/broker.log. Replica dumps are not written: a container's partition files are in
// the broker's own format inside the container, and reading them needs the node's help. Every problem is
// reported and the other nodes still collected.
func (t *Target) Collect(ctx context.Context, dir string) error {
	var errs []error
	for _, n := range t.nodes {
		if n.c == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("docker target: collecting node logs: %w", err))...)
		}
		nd := filepath.Join(dir, n.spec.Name)
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return errors.Join(append(errs, fmt.Errorf("docker target: collecting node logs: %w", err))...)
		}
		if err := t.copyLog(ctx, n, filepath.Join(nd, "broker.log")); err != nil {
			errs = append(errs, fmt.Errorf("docker target: copying the log of %s: %w", n.spec.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (t *Target) copyLog(ctx context.Context, n *node, path string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	rc, err := n.c.Logs(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w, err := io.Copy(f, io.LimitReader(rc, maxLogBytes))
	if err == nil && w == maxLogBytes {
		_, err = fmt.Fprintf(f, "\n[kafkatrial: log cut at %d bytes]\n", maxLogBytes)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// logTail is the end of n's log, formatted to follow an error ("" when there is none to show).
func (t *Target) logTail(n *node) string {
	if n.c == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := n.c.Logs(ctx)
	if err != nil {
		return ""
	}
	defer rc.Close()
	b, _ := io.ReadAll(io.LimitReader(rc, maxLogBytes))
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "; its log is empty"
	}
	return "; the end of its log:\n" + s
}
