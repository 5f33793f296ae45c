package workloads

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kafkatrial/kafkatrial/history"
)

// Recorder hands out process numbers and appends every operation of every workload to one history. A client
// session that dies comes back under a new process number, so a process never invokes anything after its crash.
// It is safe for concurrent use.
type Recorder struct {
	w    *history.Writer
	next atomic.Int64 // the next process number to hand out

	mu  sync.Mutex // guards err
	err error      // the first append error; later appends are still attempted
}

// NewRecorder records into w. Process numbers start at 1.
func NewRecorder(w *history.Writer) *Recorder {
	r := &Recorder{w: w}
	r.next.Store(1)
	return r
}

// NewProcess returns a process number never returned before.
func (r *Recorder) NewProcess() int { return int(r.next.Add(1) - 1) }

// Err returns the first error met while appending to the history, if any. A workload keeps running after a
// failed append (the client's behaviour must not depend on the recorder), so callers check Err at the end.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// append writes op and keeps the first error.
func (r *Recorder) append(op *history.Op) {
	if _, err := r.w.Append(*op); err != nil {
		r.mu.Lock()
		if r.err == nil {
			r.err = fmt.Errorf("recording %s %s of process %d: %w", op.Type, op.F, op.Process, err)
		}
		r.mu.Unlock()
	}
}

// pair appends an invoke of op and, right after it, its completion of type t. Used for operations that the
// client library reports only after the fact (rebalances, auto-commits, processing), where the pair must not be
// split by another op of the same process.
func (r *Recorder) pair(op history.Op, t history.Type) {
	done := op
	op.Type = history.Invoke
	op.Offsets, op.Records, op.Partitions, op.Error = invokeView(op)
	op.Buffered = 0
	r.append(&op)
	done.Type = t
	r.append(&done)
}

// invokeView returns the fields an invoke of op carries: what the caller asked for, never the results.
func invokeView(op history.Op) ([]history.Position, []history.Record, []history.Position, string) {
	switch op.F {
	case history.Commit:
		return op.Offsets, nil, nil, ""
	case history.Process:
		return nil, op.Records, nil, ""
	case history.Assign:
		return nil, nil, op.Partitions, ""
	}
	return nil, nil, nil, ""
}

// session serializes the ops of one consumer process: every op completes before the next begins. A poll is the
// only op left open across a blocking library call; an event the library reports from another goroutine while a
// poll is open (a rebalance callback, an auto-commit callback) closes that poll as an empty ok poll, records the
// event, and reopens the poll, so the history never shows two open ops of one process.
type session struct {
	rec     *Recorder
	process int

	mu       sync.Mutex // guards openPoll, ended and the order of this process's appends
	openPoll bool
	ended    bool // the crash op is recorded: a late callback of the dead client records nothing
}

func newSession(rec *Recorder) *session {
	return &session{rec: rec, process: rec.NewProcess()}
}

// beginPoll records the invoke of a poll.
func (s *session) beginPoll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.append(&history.Op{Process: s.process, Type: history.Invoke, F: history.Poll})
	s.openPoll = true
}

// endPoll completes the open poll with the records it returned (nil for none).
func (s *session) endPoll(records []history.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.openPoll {
		return
	}
	s.rec.append(&history.Op{Process: s.process, Type: history.OK, F: history.Poll, Records: records})
	s.openPoll = false
}

// event records op as an invoke and a completion of type t, splitting an open poll around it.
func (s *session) event(op history.Op, t history.Type) {
	op.Process = s.process
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if s.openPoll {
		s.rec.append(&history.Op{Process: s.process, Type: history.OK, F: history.Poll})
	}
	s.rec.pair(op, t)
	if s.openPoll {
		s.rec.append(&history.Op{Process: s.process, Type: history.Invoke, F: history.Poll})
	}
}

// crash records the process's crash op; nothing of the process is recorded after it.
func (s *session) crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openPoll {
		s.rec.append(&history.Op{Process: s.process, Type: history.OK, F: history.Poll})
		s.openPoll = false
	}
	s.rec.pair(history.Op{Process: s.process, F: history.Crash}, history.OK)
	s.ended = true
}
