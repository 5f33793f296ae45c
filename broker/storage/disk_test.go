package storage

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func mustSynced(t *testing.T, d *Disk, path string, want int64) {
	t.Helper()
	got, err := d.SyncedSize(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("synced size of %s = %d, want %d", path, got, want)
	}
}

func TestDiskTracksSyncedLength(t *testing.T) {
	d := newDisk(t)
	f, err := d.OpenFile("a/f", os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		t.Fatal("opening a file in a missing directory succeeded")
	}
	if err := d.MkdirAll("a"); err != nil {
		t.Fatal(err)
	}
	if f, err = d.OpenFile("a/f", os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		t.Fatal(err)
	}
	mustSynced(t, d, "a/f", 0)
	if _, err := f.Write(make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	mustSynced(t, d, "a/f", 100)
	if _, err := f.WriteAt(make([]byte, 50), 100); err != nil {
		t.Fatal(err)
	}
	mustSynced(t, d, "a/f", 100)
	if err := f.Truncate(80); err != nil {
		t.Fatal(err)
	}
	mustSynced(t, d, "a/f", 80)
	if _, err := f.WriteAt(make([]byte, 70), 80); err != nil {
		t.Fatal(err)
	}
	if size, _ := f.Size(); size != 150 {
		t.Fatalf("Size = %d, want 150", size)
	}
	// The handle goes away (a node restart); the synced length must outlive it.
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g, err := d.OpenFile(filepath.Join(d.Root(), "a", "f"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	mustSynced(t, d, "a/f", 80)

	never, err := d.OpenFile("a/never", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := never.Write([]byte("gone")); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFileAtomic("a/atomic", []byte("kept")); err != nil {
		t.Fatal(err)
	}
	mustSynced(t, d, "a/atomic", 4)

	if err := d.LoseUnsynced(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, filepath.Join(d.Root(), "a/f")); got != 80 {
		t.Fatalf("after power loss a/f is %d bytes, want 80", got)
	}
	if got := fileSize(t, filepath.Join(d.Root(), "a/never")); got != 0 {
		t.Fatalf("after power loss a never-synced file is %d bytes, want 0", got)
	}
	if b, err := d.ReadFile("a/atomic"); err != nil || string(b) != "kept" {
		t.Fatalf("atomic file after power loss = %q, %v", b, err)
	}
	// Handles of the dead process must not write into the new world.
	if _, err := g.Write([]byte("late")); !errors.Is(err, ErrPowerLost) {
		t.Fatalf("write through a handle from before the power loss: err = %v, want ErrPowerLost", err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("closing an invalidated handle: %v", err)
	}
}

func TestDiskTruncOpenAndRemove(t *testing.T) {
	d := newDisk(t)
	if err := d.WriteFileAtomic("f", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	f, err := d.OpenFile("f", os.O_RDWR|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mustSynced(t, d, "f", 0)
	if err := d.Rename("f", "g"); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFileAtomic("dir/x", nil); err == nil {
		t.Fatal("atomic write into a missing directory succeeded")
	}
	if err := d.MkdirAll("dir"); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFileAtomic("dir/x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.RemoveAll("dir"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadFile("dir/x"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ReadFile after RemoveAll: %v", err)
	}
	if err := d.LoseUnsynced(); err != nil {
		t.Fatal(err)
	}
	ents, err := d.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "g" {
		t.Fatalf("disk holds %v, want only g", ents)
	}
}

func TestDiskExistingFilesCountAsSynced(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "old"), make([]byte, 33), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := NewDisk(root)
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.OpenFile("old", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("more"), 33); err != nil {
		t.Fatal(err)
	}
	if err := d.LoseUnsynced(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, filepath.Join(root, "old")); got != 33 {
		t.Fatalf("pre-existing file after power loss is %d bytes, want 33", got)
	}
}

func TestDiskRejectsPathsOutsideRoot(t *testing.T) {
	d := newDisk(t)
	for _, p := range []string{"../escape", "/etc/passwd", "a/../../b"} {
		if _, err := d.OpenFile(p, os.O_RDONLY, 0); err == nil {
			t.Errorf("OpenFile(%q) succeeded", p)
		}
		if err := d.WriteFileAtomic(p, nil); err == nil {
			t.Errorf("WriteFileAtomic(%q) succeeded", p)
		}
	}
	if err := d.RemoveAll("."); err == nil {
		t.Error("RemoveAll of the root succeeded")
	}
}
