package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Disk models one node's disk. Every file a node writes goes through it, so a power loss is exact:
// LoseUnsynced cuts each file back to its last fsynced length. One Disk outlives node restarts in-process:
// the synced lengths are kept per path, not per open handle, so a node may close and reopen its files.
//
// Disk is safe for concurrent use.
type Disk struct {
	root string

	// mu guards files and open. It is never held across a system call that can block for long (fsync);
	// per-path fsync/truncate ordering is kept by pathState.opMu instead.
	mu    sync.Mutex
	files map[string]*pathState // absolute cleaned path -> durability state
	open  map[*File]struct{}    // handles not yet closed, invalidated by LoseUnsynced
}

// pathState is the durability record of one path.
type pathState struct {
	// opMu orders Sync against Truncate on this path, so a truncate can never slip between an fsync's
	// size snapshot and its recording of that size as synced (which would keep unsynced bytes alive).
	opMu sync.Mutex
	// synced is the length the file is known to keep across a power loss. Guarded by Disk.mu.
	synced int64
}

// NewDisk returns a Disk rooted at root, creating the directory if needed. Files already present under root
// are treated as fully synced: they predate anything this Disk saw being written.
func NewDisk(root string) (*Disk, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("storage: resolving disk root %q: %w", root, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("storage: creating disk root %q: %w", abs, err)
	}
	return &Disk{root: abs, files: make(map[string]*pathState), open: make(map[*File]struct{})}, nil
}

// Root is the absolute directory every path of this Disk lives under.
func (d *Disk) Root() string { return d.root }

// resolve turns a path relative to Root (or absolute under it) into a cleaned absolute path, refusing any
// path that escapes the root: a node must never write outside its own disk.
func (d *Disk) resolve(path string) (string, error) {
	p := path
	if !filepath.IsAbs(p) {
		p = filepath.Join(d.root, p)
	}
	p = filepath.Clean(p)
	rel, err := filepath.Rel(d.root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("storage: path %q is outside disk root %q", path, d.root)
	}
	return p, nil
}

// stateLocked returns the durability state of p, creating it on first sight. A file that already exists when
// first seen counts as synced at its current size; a missing one at 0. Caller holds d.mu.
func (d *Disk) stateLocked(p string) *pathState {
	st, ok := d.files[p]
	if ok {
		return st
	}
	st = &pathState{}
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		st.synced = fi.Size()
	}
	d.files[p] = st
	return st
}

// OpenFile opens path (relative to Root or absolute under it) like os.OpenFile. O_TRUNC counts as a truncate
// to 0, so the synced length drops to 0.
func (d *Disk) OpenFile(path string, flag int, perm os.FileMode) (*File, error) {
	p, err := d.resolve(path)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.stateLocked(p)
	of, err := os.OpenFile(p, flag, perm)
	if err != nil {
		return nil, fmt.Errorf("storage: opening %q: %w", p, err)
	}
	if flag&os.O_TRUNC != 0 {
		st.synced = 0
	}
	f := &File{f: of, d: d, path: p, st: st}
	d.open[f] = struct{}{}
	return f, nil
}

// WriteFileAtomic replaces path with data durably: it writes a temporary file in the same directory, fsyncs
// it, renames it over path and fsyncs the directory. Readers see either the old or the new content, and a
// power loss after it returns keeps the new content.
func (d *Disk) WriteFileAtomic(path string, data []byte) error {
	p, err := d.resolve(path)
	if err != nil {
		return err
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return fmt.Errorf("storage: naming temp file for %q: %w", p, err)
	}
	tmp := p + ".tmp-" + hex.EncodeToString(suffix[:])
	if err := writeSynced(tmp, data); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("storage: writing %q atomically: %w", p, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("storage: renaming %q over %q: %w", tmp, p, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return fmt.Errorf("storage: writing %q atomically: %w", p, err)
	}
	d.mu.Lock()
	d.stateLocked(p).synced = int64(len(data))
	d.mu.Unlock()
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %q to fsync it: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsyncing directory %q: %w", dir, err)
	}
	return nil
}

// ReadFile reads the whole file at path.
func (d *Disk) ReadFile(path string) ([]byte, error) {
	p, err := d.resolve(path)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("storage: reading %q: %w", p, err)
	}
	return b, nil
}

// ReadDir lists the directory at path, sorted by name.
func (d *Disk) ReadDir(path string) ([]fs.DirEntry, error) {
	p, err := d.resolve(path)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return nil, fmt.Errorf("storage: listing %q: %w", p, err)
	}
	return ents, nil
}

// Stat describes the file at path.
func (d *Disk) Stat(path string) (fs.FileInfo, error) {
	p, err := d.resolve(path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("storage: stat %q: %w", p, err)
	}
	return fi, nil
}

// MkdirAll creates the directory path and its parents.
func (d *Disk) MkdirAll(path string) error {
	p, err := d.resolve(path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("storage: creating directory %q: %w", p, err)
	}
	return nil
}

// Remove deletes one file (or empty directory) and forgets its durability state.
func (d *Disk) Remove(path string) error {
	p, err := d.resolve(path)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("storage: removing %q: %w", p, err)
	}
	delete(d.files, p)
	return nil
}

// RemoveAll deletes path and everything under it and forgets their durability state.
func (d *Disk) RemoveAll(path string) error {
	p, err := d.resolve(path)
	if err != nil {
		return err
	}
	if p == d.root {
		return fmt.Errorf("storage: refusing to remove the disk root %q", p)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := os.RemoveAll(p); err != nil {
		return fmt.Errorf("storage: removing %q: %w", p, err)
	}
	prefix := p + string(filepath.Separator)
	for k := range d.files {
		if k == p || strings.HasPrefix(k, prefix) {
			delete(d.files, k)
		}
	}
	return nil
}

// Rename moves oldpath to newpath (replacing it) and carries the synced length along. Like every directory
// operation here it is durable at once (see the package doc); the contents keep their own synced length.
func (d *Disk) Rename(oldpath, newpath string) error {
	op, err := d.resolve(oldpath)
	if err != nil {
		return err
	}
	np, err := d.resolve(newpath)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.stateLocked(op)
	if err := os.Rename(op, np); err != nil {
		return fmt.Errorf("storage: renaming %q to %q: %w", op, np, err)
	}
	delete(d.files, op)
	d.files[np] = &pathState{synced: st.synced}
	return nil
}

// ErrPowerLost is returned by a File whose handle was invalidated by LoseUnsynced: the process that opened
// it is gone, so nothing it still tries to write may reach the disk.
var ErrPowerLost = errors.New("storage: file handle invalidated by a simulated power loss")

// LoseUnsynced simulates a power loss: every file this Disk tracks is cut back to its synced length (files
// never synced become empty), and every handle still open is closed so a lingering goroutine of the dead
// node cannot write into the new world. Call it only while no node uses the disk (after Kill).
func (d *Disk) LoseUnsynced() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	for f := range d.open {
		f.lost.Store(true)
		_ = f.f.Close()
		delete(d.open, f)
	}
	for p, st := range d.files {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			delete(d.files, p)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("storage: power loss: stat %q: %w", p, err))
			continue
		}
		if fi.Size() > st.synced {
			if err := os.Truncate(p, st.synced); err != nil {
				errs = append(errs, fmt.Errorf("storage: power loss: truncating %q to %d: %w", p, st.synced, err))
			}
		}
	}
	return errors.Join(errs...)
}

// SyncedSize reports the length of path that would survive a power loss now (tests and diagnostics).
func (d *Disk) SyncedSize(path string) (int64, error) {
	p, err := d.resolve(path)
	if err != nil {
		return 0, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stateLocked(p).synced, nil
}
