package nemesis

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Event is one line of nemesis.jsonl: a fault starting or stopping, with its resolved targets.
//
//	{"time":ns,"fault":"kill","targets":["node-2"],"phase":"start"}
type Event struct {
	Time    int64    `json:"time"` // nanoseconds since the run started (the history's clock)
	Fault   Kind     `json:"fault"`
	Targets []string `json:"targets"`
	Phase   string   `json:"phase"` // start or stop
	Detail  string   `json:"detail,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Event phases.
const (
	PhaseStart = "start"
	PhaseStop  = "stop"
)

// Log appends events to nemesis.jsonl as they happen; safe for concurrent use. Each line is written whole and
// flushed at once: faults are rare and a run killed mid-way must still show which were active.
type Log struct {
	mu    sync.Mutex // guards w and events
	w     io.Writer
	start time.Time
	ev    []Event
}

// NewLog writes to w, timing events from start (the history's start).
func NewLog(w io.Writer, start time.Time) *Log { return &Log{w: w, start: start} }

// Add stamps e with the current time and writes it.
func (l *Log) Add(e Event) (Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.Time = int64(time.Since(l.start))
	if e.Targets == nil {
		e.Targets = []string{}
	}
	l.ev = append(l.ev, e)
	if l.w == nil {
		return e, nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return e, fmt.Errorf("encoding nemesis event: %w", err)
	}
	if _, err := l.w.Write(append(b, '\n')); err != nil {
		return e, fmt.Errorf("writing nemesis.jsonl: %w", err)
	}
	return e, nil
}

// Events returns a copy of every event so far.
func (l *Log) Events() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.ev...)
}

// ReadEvents reads a nemesis.jsonl file; a torn last line is dropped, any other bad line is an error naming it.
func ReadEvents(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading nemesis log: %w", err)
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var pending error
	for line := 1; sc.Scan(); line++ {
		if pending != nil {
			return nil, pending
		}
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// Only the last line may be torn; remember the error and fail if another line follows.
			pending = fmt.Errorf("%s line %d: %w", path, line, err)
			continue
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}

// Intervals pairs start and stop events into fault intervals (in seconds), for report plots. A fault never
// stopped runs to end.
func Intervals(events []Event, end float64) []FaultInterval {
	var out []FaultInterval
	open := map[string][]int{}
	for _, e := range events {
		key := string(e.Fault) + fmt.Sprint(e.Targets)
		switch e.Phase {
		case PhaseStart:
			out = append(out, FaultInterval{Fault: e.Fault, Targets: e.Targets, StartS: float64(e.Time) / 1e9, EndS: end})
			open[key] = append(open[key], len(out)-1)
		case PhaseStop:
			if idx := open[key]; len(idx) > 0 {
				out[idx[0]].EndS = float64(e.Time) / 1e9
				open[key] = idx[1:]
			}
		}
	}
	return out
}

// FaultInterval is one fault's active span.
type FaultInterval struct {
	Fault   Kind     `json:"fault"`
	Targets []string `json:"targets"`
	StartS  float64  `json:"start_s"`
	EndS    float64  `json:"end_s"`
}
