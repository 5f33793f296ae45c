package scenarios

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// status prints a run's progress: phases, and every second a status line with the phase, elapsed time,
// ok/fail/info sends per second and the active faults. Live rewrites one line in place (a terminal); otherwise
// a plain line is printed every few seconds, with the rates since the previous line, which reads well in CI
// logs.
type status struct {
	mu        sync.Mutex // guards everything below
	w         io.Writer
	live      bool
	start     time.Time
	phaseName string
	last      [3]int64
	lastAt    time.Time
	printed   time.Time
	dirty     bool
}

func newStatus(w io.Writer, live bool) *status {
	return &status{w: w, live: live, start: time.Now(), lastAt: time.Now()}
}

// line prints a whole line (clearing a live status line first).
func (s *status) line(msg string) {
	if s == nil || s.w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clear()
	fmt.Fprintln(s.w, msg)
}

func (s *status) phase(name string) {
	if s == nil || s.w == nil {
		return
	}
	s.mu.Lock()
	s.phaseName = name
	s.mu.Unlock()
	s.line(fmt.Sprintf("[%5.1fs] %s", time.Since(s.start).Seconds(), name))
}

// countFrom starts the rates' clock: call it when the clients start, so set-up time does not dilute the first
// rate.
func (s *status) countFrom() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.last, s.lastAt = [3]int64{}, time.Now()
	s.mu.Unlock()
}

// tick reports the sends so far (cumulative counts) and the active faults.
func (s *status) tick(ok, fail, info int64, faults []string) {
	if s == nil || s.w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	dt := now.Sub(s.lastAt).Seconds()
	if dt <= 0 {
		return
	}
	rate := func(i int, v int64) float64 { return float64(v-s.last[i]) / dt }
	active := "none"
	if len(faults) > 0 {
		active = strings.Join(faults, " ")
	}
	if !s.live && now.Sub(s.printed) < 3*time.Second {
		// A printed line shows the rates since the line before it, not those of its last second alone.
		return
	}
	msg := fmt.Sprintf("[%5.1fs] %-8s ok %6.0f/s  fail %4.0f/s  info %4.0f/s  faults: %s",
		now.Sub(s.start).Seconds(), s.phaseName, rate(0, ok), rate(1, fail), rate(2, info), active)
	s.last, s.lastAt = [3]int64{ok, fail, info}, now
	if s.live {
		fmt.Fprintf(s.w, "\r\x1b[K%s", msg)
		s.dirty = true
		return
	}
	fmt.Fprintln(s.w, msg)
	s.printed = now
}

func (s *status) done(msg string) { s.line(msg) }

// clear erases a live status line; callers hold mu.
func (s *status) clear() {
	if s.dirty {
		fmt.Fprint(s.w, "\r\x1b[K")
		s.dirty = false
	}
}
