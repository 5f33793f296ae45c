package history

import "fmt"

// Sequence checks the rules of contract.md that relate the ops of a history to one another, which no single
// line can break on its own: indexes run 0, 1, 2, ... with no gap or repeat; time never goes backwards; every
// completion answers an open invoke of its process (a send's by process and value, as an asynchronous producer
// may have several sends in flight; any other op's as the process's one open op), and a process never has two
// sends of one value open at once (values are unique per run; the checker still accepts an application that
// sends a value again after its earlier attempt completed, as a new attempt). A history that breaks them is a
// bad history: judging it would charge a corrupt file to the broker.
//
// Invokes left open at the end are allowed (a run killed mid-way leaves them; the checker reads an unfinished
// send as indefinite). Read applies a Sequence to every line; Validate to ops already in memory.
// A Sequence is not safe for concurrent use.
type Sequence struct {
	n        int   // ops added
	next     int64 // the index the next op must carry
	lastTime int64
	// sends holds the latest send attempt of each process and value.
	sends map[sendKey]*sendState
	// open holds each process's open op other than a send; done the index of its last completed one.
	open map[int]openOp
	done map[int]int64
}

type sendKey struct {
	process int
	value   string
}

type sendState struct {
	topic     string
	partition int32
	invoke    int64 // index of the invoke
	completed int64 // index of the completion; -1 while open
}

type openOp struct {
	f     F
	index int64
}

// NewSequence starts checking a history from its first op.
func NewSequence() *Sequence {
	return &Sequence{sends: make(map[sendKey]*sendState), open: make(map[int]openOp), done: make(map[int]int64)}
}

// Add checks the next op of the history against the ones before it. After an error the Sequence must not be
// used further.
func (s *Sequence) Add(o *Op) error {
	if o.Index != s.next {
		if s.n == 0 {
			return fmt.Errorf("index %d on the first op, want 0 (indexes run 0, 1, 2, ...)", o.Index)
		}
		return fmt.Errorf("index %d after index %d, want %d (indexes run 0, 1, 2, ... with no gap or repeat)",
			o.Index, s.next-1, s.next)
	}
	if o.Time < s.lastTime {
		return fmt.Errorf("time %d is before the previous op's time %d (time must never go backwards)", o.Time, s.lastTime)
	}
	var err error
	switch {
	case o.F == Send && o.Type == Invoke:
		err = s.invokeSend(o)
	case o.F == Send:
		err = s.completeSend(o)
	case o.Type == Invoke:
		err = s.invokeOther(o)
	default:
		err = s.completeOther(o)
	}
	if err != nil {
		return err
	}
	s.n++
	s.next++
	s.lastTime = o.Time
	return nil
}

func (s *Sequence) invokeSend(o *Op) error {
	key := sendKey{o.Process, o.Value}
	if prev, ok := s.sends[key]; ok && prev.completed < 0 {
		return fmt.Errorf("send of value %q by process %d while its send of the same value (index %d) is still open (values are unique per run)",
			o.Value, o.Process, prev.invoke)
	}
	s.sends[key] = &sendState{topic: o.Topic, partition: o.Partition, invoke: o.Index, completed: -1}
	return nil
}

func (s *Sequence) completeSend(o *Op) error {
	st, ok := s.sends[sendKey{o.Process, o.Value}]
	switch {
	case !ok:
		return fmt.Errorf("%s completion of send %q by process %d without an invoke (every completion follows its invoke)",
			o.Type, o.Value, o.Process)
	case st.completed >= 0:
		return fmt.Errorf("second completion (%s) of send %q by process %d: its invoke (index %d) was already completed at index %d",
			o.Type, o.Value, o.Process, st.invoke, st.completed)
	case st.topic != o.Topic || st.partition != o.Partition:
		return fmt.Errorf("%s completion of send %q names %s/%d, but its invoke (index %d) named %s/%d",
			o.Type, o.Value, o.Topic, o.Partition, st.invoke, st.topic, st.partition)
	}
	st.completed = o.Index
	return nil
}

func (s *Sequence) invokeOther(o *Op) error {
	if prev, ok := s.open[o.Process]; ok {
		return fmt.Errorf("invoke of %s by process %d while its %s (index %d) is still open (a process's operations other than sends run one at a time)",
			o.F, o.Process, prev.f, prev.index)
	}
	s.open[o.Process] = openOp{f: o.F, index: o.Index}
	return nil
}

func (s *Sequence) completeOther(o *Op) error {
	prev, ok := s.open[o.Process]
	if !ok {
		if last, ok := s.done[o.Process]; ok {
			return fmt.Errorf("%s completion of %s by process %d without an open invoke: its last op was already completed at index %d (a second completion?)",
				o.Type, o.F, o.Process, last)
		}
		return fmt.Errorf("%s completion of %s by process %d without an invoke (every completion follows its invoke)",
			o.Type, o.F, o.Process)
	}
	if prev.f != o.F {
		return fmt.Errorf("%s completion of %s by process %d, but its open op is a %s (index %d)",
			o.Type, o.F, o.Process, prev.f, prev.index)
	}
	delete(s.open, o.Process)
	s.done[o.Process] = o.Index
	return nil
}

// OpError names the op of an in-memory history that breaks the contract.
type OpError struct {
	Position int // 0-based position in the slice
	Index    int64
	Err      error
}

func (e *OpError) Error() string {
	return fmt.Sprintf("history op %d (index %d): %v", e.Position, e.Index, e.Err)
}
func (e *OpError) Unwrap() error { return e.Err }

// Validate checks a whole in-memory history: each op's own rules (as Read applies to a line) and the Sequence
// rules between them. The error is an *OpError naming the first op that breaks one.
func Validate(ops []Op) error {
	s := NewSequence()
	for i := range ops {
		err := ops[i].validate()
		if err == nil {
			err = s.Add(&ops[i])
		}
		if err != nil {
			return &OpError{Position: i, Index: ops[i].Index, Err: err}
		}
	}
	return nil
}
