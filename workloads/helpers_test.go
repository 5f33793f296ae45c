package workloads

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/history"
)

// lockedBuffer is an io.Writer the history writer and the test can share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// testHistory is a recorder over an in-memory history.
type testHistory struct {
	t   *testing.T
	w   *history.Writer
	buf *lockedBuffer
	rec *Recorder
}

func newTestHistory(t *testing.T) *testHistory {
	buf := &lockedBuffer{}
	w := history.NewWriter(buf, time.Now())
	t.Cleanup(func() { _ = w.Close() })
	return &testHistory{t: t, w: w, buf: buf, rec: NewRecorder(w)}
}

// ops flushes and decodes everything recorded so far, and checks the history's structural rules.
func (h *testHistory) ops() []history.Op {
	h.t.Helper()
	if err := h.w.Flush(); err != nil {
		h.t.Fatalf("flushing history: %v", err)
	}
	res, err := history.Read(bytes.NewReader(h.buf.bytes()))
	if err != nil {
		h.t.Fatalf("reading history back: %v", err)
	}
	if err := h.rec.Err(); err != nil {
		h.t.Fatalf("recorder: %v", err)
	}
	checkWellFormed(h.t, res.Ops)
	return res.Ops
}

// checkWellFormed enforces contract.md: every invoke has exactly one completion from the same process; sends
// may overlap within a process, every other op completes before the process's next op begins; nothing follows a
// process's crash.
func checkWellFormed(t *testing.T, ops []history.Op) {
	t.Helper()
	type proc struct {
		open    *history.Op // the open non-send op
		sends   map[string]bool
		crashed bool
	}
	procs := map[int]*proc{}
	for i := range ops {
		op := &ops[i]
		if op.Index != int64(i) {
			t.Fatalf("op %d has index %d", i, op.Index)
		}
		p := procs[op.Process]
		if p == nil {
			p = &proc{sends: map[string]bool{}}
			procs[op.Process] = p
		}
		if p.crashed {
			t.Fatalf("op %d of process %d after its crash: %+v", i, op.Process, *op)
		}
		switch {
		case op.F == history.Send && op.Type == history.Invoke:
			if p.sends[op.Value] || p.open != nil {
				t.Fatalf("op %d: send %s invoked twice or during an open %s", i, op.Value, p.open.F)
			}
			p.sends[op.Value] = true
		case op.F == history.Send:
			if !p.sends[op.Value] {
				t.Fatalf("op %d: completion of send %s never invoked (or completed twice)", i, op.Value)
			}
			delete(p.sends, op.Value)
		case op.Type == history.Invoke:
			if p.open != nil {
				t.Fatalf("op %d: %s invoked while %s (op %d) of process %d is open", i, op.F, p.open.F, p.open.Index, op.Process)
			}
			p.open = op
		default:
			if p.open == nil || p.open.F != op.F {
				t.Fatalf("op %d: %s %s of process %d without its invoke", i, op.Type, op.F, op.Process)
			}
			p.open = nil
			if op.F == history.Crash {
				if len(p.sends) > 0 {
					t.Fatalf("op %d: process %d crashed with %d sends never completed", i, op.Process, len(p.sends))
				}
				p.crashed = true
			}
		}
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sendsByValue indexes send completions by value.
func sendsByValue(ops []history.Op) map[string]history.Op {
	out := map[string]history.Op{}
	for _, op := range ops {
		if op.F == history.Send && op.Type != history.Invoke {
			out[op.Value] = op
		}
	}
	return out
}

// finalValues returns the values of the final read, per value its record.
func finalValues(t *testing.T, res FinalReadResult) map[string]history.Record {
	t.Helper()
	out := map[string]history.Record{}
	for _, recs := range res.Records {
		for _, r := range recs {
			if _, dup := out[r.Value]; dup {
				t.Fatalf("value %s twice in the final read", r.Value)
			}
			out[r.Value] = r
		}
	}
	return out
}
