package faultnet

import (
	"os"
	"sync"
	"time"
)

// deadlineErr is what an expired deadline returns, as the net package does (it reports Timeout() true).
var deadlineErr error = os.ErrDeadlineExceeded

// deadline is a read or write deadline that stalled goroutines can wait on: done() is closed once the
// deadline has passed, and a later set() re-arms it. A stalled wait must see SetReadDeadline and
// SetWriteDeadline calls made while it waits, which the underlying socket's deadline cannot tell it.
type deadline struct {
	mu    sync.Mutex
	gen   uint64 // bumped by every set, so a stale timer never fires a newer deadline
	timer *time.Timer
	ch    chan struct{}
	fired bool
}

func newDeadline() *deadline { return &deadline{ch: make(chan struct{})} }

// set arms the deadline at t; the zero time disarms it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.fired {
		d.ch = make(chan struct{})
		d.fired = false
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.ch)
		d.fired = true
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.gen == gen && !d.fired {
			close(d.ch)
			d.fired = true
		}
	})
}

// done returns a channel closed once the current deadline has passed.
func (d *deadline) done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// stop releases the timer when the connection closes.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
