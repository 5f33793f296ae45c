package history

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"time"
)

// Writer appends ops to a history as the run goes. It assigns each op its Index and Time, so the order of
// lines is the order in which Append was called. It is safe for concurrent use. Lines are flushed at least every
// FlushInterval, so a run killed mid-way loses at most that much and leaves at worst one torn last line,
// which Read tolerates.
type Writer struct {
	mu    sync.Mutex // guards everything below
	w     *bufio.Writer
	start time.Time
	next  int64
	buf   []byte
	err   error
	done  chan struct{}
	wg    sync.WaitGroup
}

// FlushInterval bounds how long an appended op may sit in memory before reaching the file.
const FlushInterval = 50 * time.Millisecond

// NewWriter starts a history whose times are measured from start (use the run's start; time.Time carries a
// monotonic reading).
func NewWriter(w io.Writer, start time.Time) *Writer {
	hw := &Writer{w: bufio.NewWriterSize(w, 256<<10), start: start, done: make(chan struct{})}
	hw.wg.Add(1)
	go hw.flushLoop()
	return hw
}

// Append stamps op with the next index and the current time, writes it, and returns the stamped op.
func (hw *Writer) Append(op Op) (Op, error) {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if hw.err != nil {
		return op, hw.err
	}
	op.Index = hw.next
	op.Time = int64(time.Since(hw.start))
	hw.next++
	hw.buf = AppendJSON(hw.buf[:0], &op)
	hw.buf = append(hw.buf, '\n')
	if _, err := hw.w.Write(hw.buf); err != nil {
		hw.err = fmt.Errorf("writing history: %w", err)
	}
	return op, hw.err
}

// Since returns the time of now on the history's clock.
func (hw *Writer) Since() int64 { return int64(time.Since(hw.start)) }

// Flush writes everything appended so far.
func (hw *Writer) Flush() error {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if hw.err == nil {
		if err := hw.w.Flush(); err != nil {
			hw.err = fmt.Errorf("flushing history: %w", err)
		}
	}
	return hw.err
}

// Close flushes and stops the background flusher. It does not close the underlying writer.
func (hw *Writer) Close() error {
	select {
	case <-hw.done:
	default:
		close(hw.done)
	}
	hw.wg.Wait()
	return hw.Flush()
}

func (hw *Writer) flushLoop() {
	defer hw.wg.Done()
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-hw.done:
			return
		case <-t.C:
			_ = hw.Flush()
		}
	}
}
