package storage

import (
	"fmt"
	"os"
	"sync/atomic"
)

// File is one open file of a Disk. It behaves like *os.File (io.Writer, io.ReaderAt, WriteAt) and reports
// its fsyncs and truncations to the Disk, which is what makes a simulated power loss exact.
//
// Like os.File, Truncate does not move the offset Write uses: code that truncates should write with WriteAt.
type File struct {
	f    *os.File
	d    *Disk
	path string
	st   *pathState
	lost atomic.Bool // set by Disk.LoseUnsynced: the handle belongs to a dead process
}

// Name is the absolute path of the file.
func (f *File) Name() string { return f.path }

// Write appends at the file's current offset.
func (f *File) Write(p []byte) (int, error) {
	if f.lost.Load() {
		return 0, ErrPowerLost
	}
	return f.f.Write(p)
}

// WriteAt writes p at off.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if f.lost.Load() {
		return 0, ErrPowerLost
	}
	return f.f.WriteAt(p, off)
}

// ReadAt reads len(p) bytes at off (io.ReaderAt).
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if f.lost.Load() {
		return 0, ErrPowerLost
	}
	return f.f.ReadAt(p, off)
}

// Size is the current length of the file (synced or not).
func (f *File) Size() (int64, error) {
	if f.lost.Load() {
		return 0, ErrPowerLost
	}
	fi, err := f.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("storage: stat %q: %w", f.path, err)
	}
	return fi.Size(), nil
}

// Sync fsyncs the file and records its size at the start of the fsync as synced: every byte written before
// the fsync began is durable once it returns. Writes racing with the fsync are not counted (conservative).
func (f *File) Sync() error {
	if f.lost.Load() {
		return ErrPowerLost
	}
	f.st.opMu.Lock()
	defer f.st.opMu.Unlock()
	fi, err := f.f.Stat()
	if err != nil {
		return fmt.Errorf("storage: stat %q before fsync: %w", f.path, err)
	}
	if err := f.f.Sync(); err != nil {
		return fmt.Errorf("storage: fsync %q: %w", f.path, err)
	}
	f.d.mu.Lock()
	f.st.synced = fi.Size()
	f.d.mu.Unlock()
	return nil
}

// Truncate changes the file's length. The synced length drops to min(synced, size): cutting a file is
// treated as durable at once (like the directory operations, see the package doc), growing it is not.
func (f *File) Truncate(size int64) error {
	if f.lost.Load() {
		return ErrPowerLost
	}
	f.st.opMu.Lock()
	defer f.st.opMu.Unlock()
	if err := f.f.Truncate(size); err != nil {
		return fmt.Errorf("storage: truncating %q to %d: %w", f.path, size, err)
	}
	f.d.mu.Lock()
	f.st.synced = min(f.st.synced, size)
	f.d.mu.Unlock()
	return nil
}

// Close releases the handle without fsyncing: a process that exits leaves its writes in the page cache,
// where they survive everything but a power loss.
func (f *File) Close() error {
	f.d.mu.Lock()
	delete(f.d.open, f)
	f.d.mu.Unlock()
	if f.lost.Load() {
		return nil
	}
	if err := f.f.Close(); err != nil {
		return fmt.Errorf("storage: closing %q: %w", f.path, err)
	}
	return nil
}
