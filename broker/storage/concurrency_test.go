package storage

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentAppendReadSync runs leader appends with an fsync per append (group commit), readers and
// truncation-free scans at once; every read must be whole valid contiguous batches and every append must
// end up in the log exactly once.
func TestConcurrentAppendReadSync(t *testing.T) {
	d := newDisk(t)
	size := int64(len(makeBatch(3, 10, 0)))
	l := openLog(t, d, Config{FlushMessages: 1, SegmentBytes: 16 * size, IndexIntervalBytes: 64})
	const writers, perWriter = 4, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWriter; i++ {
				if _, err := l.AppendLeader(makeBatch(3, 10, byte(w)), int32(w%2)); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for off := int64(0); ; {
				select {
				case <-stop:
					return
				default:
				}
				end := l.EndOffset()
				if off >= end {
					off = 0
					continue
				}
				b, err := l.Read(off, 4*int(size), end)
				if err != nil {
					errs <- err
					return
				}
				next := off - off%3
				err = SplitBatches(b, func(_ []byte, h BatchHeader) error {
					if h.BaseOffset != next {
						return fmt.Errorf("read at %d: batch at %d, want %d", off, h.BaseOffset, next)
					}
					next = h.NextOffset()
					return nil
				})
				if err != nil || len(b) == 0 {
					errs <- fmt.Errorf("read at %d: %d bytes, %v", off, len(b), err)
					return
				}
				off = next
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if l.EndOffset() != writers*perWriter*3 {
		t.Fatalf("end %d, want %d", l.EndOffset(), writers*perWriter*3)
	}
	all := readAll(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.LoseUnsynced(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, d, Config{})
	defer l.Close()
	if !bytes.Equal(readAll(t, l), all) {
		t.Fatal("an fsync-per-append log lost data in a power loss")
	}
}
