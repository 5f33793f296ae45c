package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// recoveryReadBuffer is how much of a segment the recovery scan reads per system call.
const recoveryReadBuffer = 1 << 20

// recover loads the log from its directory. Every segment is scanned in full and every batch checked by CRC
// and offset continuity (there is no clean-shutdown marker or recovery point to skip any: a power loss can
// tear any segment that was never fsynced). The first bad batch ends the log: its segment is cut there and
// later segments are deleted. Indexes are rebuilt from the scan and rewritten when the file differs, and the
// epoch cache is reconciled with what survived. Only I/O failures are errors; bad data is cut and logged.
func (l *Log) recover() error {
	ents, err := l.disk.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var bases []int64
	indexes := make(map[int64]bool)
	for _, e := range ents {
		name := e.Name()
		if strings.Contains(name, ".tmp-") {
			// The leftover of a WriteFileAtomic interrupted before its rename: never the live copy.
			if err := l.disk.Remove(filepath.Join(l.dir, name)); err != nil {
				return err
			}
			continue
		}
		if base, ok := parseSegmentFileName(name, logSuffix); ok {
			bases = append(bases, base)
		} else if base, ok := parseSegmentFileName(name, indexSuffix); ok {
			indexes[base] = true
		}
	}
	slices.Sort(bases)
	for base := range indexes {
		if _, found := slices.BinarySearch(bases, base); !found {
			if err := l.disk.Remove(filepath.Join(l.dir, segmentFileName(base, indexSuffix))); err != nil {
				return err
			}
		}
	}
	epochs, intact, err := l.loadEpochCheckpoint()
	if err != nil {
		return err
	}
	loaded := epochs

	if len(bases) == 0 {
		seg, err := createSegment(l.disk, l.dir, 0)
		if err != nil {
			return err
		}
		l.segs = []*segment{seg}
	}
	var buf []byte
	cut := ""
	for _, base := range bases {
		if cut == "" && len(l.segs) > 0 && base != l.segs[len(l.segs)-1].next {
			cut = fmt.Sprintf("segment %d does not start where the previous one ends (%d)", base, l.segs[len(l.segs)-1].next)
		}
		if cut != "" {
			l.cfg.Logger.Warn("storage: recovery deleted a segment past the end of the recovered log",
				"log", l.dir, "segment", segmentFileName(base, logSuffix), "because", cut)
			for _, suffix := range []string{logSuffix, indexSuffix} {
				if err := l.disk.Remove(filepath.Join(l.dir, segmentFileName(base, suffix))); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
			continue
		}
		seg, reason, err := l.recoverSegment(base, &epochs, &buf)
		if err != nil {
			return err
		}
		l.segs = append(l.segs, seg)
		cut = reason
	}
	l.start.Store(l.segs[0].base)
	end := l.segs[len(l.segs)-1].next
	l.end.Store(end)

	epochs, _ = truncateEntries(epochs, end)
	if !intact || !slices.Equal(epochs, loaded) {
		if err := l.epochs.replace(epochs); err != nil {
			return err
		}
		l.cfg.Logger.Info("storage: recovery reconciled the leader epoch cache with the log", "log", l.dir,
			"end", end, "before", loaded, "after", epochs)
	} else {
		l.epochs.entries = epochs
	}
	return nil
}

// recoverSegment scans the segment at base, cutting it at the first torn or corrupt batch (reason says why;
// empty when the whole file was good), assigns epochs newer than *epochs from the batches, and rebuilds its
// index. buf is a scratch buffer reused across segments.
func (l *Log) recoverSegment(base int64, epochs *[]EpochEntry, buf *[]byte) (*segment, string, error) {
	logPath := filepath.Join(l.dir, segmentFileName(base, logSuffix))
	f, err := l.disk.OpenFile(logPath, os.O_RDWR, 0)
	if err != nil {
		return nil, "", err
	}
	seg, reason, err := l.scanSegment(f, base, epochs, buf)
	if err == nil {
		err = l.restoreIndex(seg)
	}
	if err != nil {
		_ = f.Close()
		return nil, "", fmt.Errorf("recovering segment %d: %w", base, err)
	}
	return seg, reason, nil
}

func (l *Log) scanSegment(f *File, base int64, epochs *[]EpochEntry, buf *[]byte) (*segment, string, error) {
	size, err := f.Size()
	if err != nil {
		return nil, "", err
	}
	seg := &segment{base: base, next: base, log: f, index: offsetIndex{base: base}, maxTimestamp: -1, dirty: true}
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), recoveryReadBuffer)
	var header [BatchHeaderSize]byte
	reason := ""
	for pos := int64(0); pos < size; {
		if size-pos < BatchHeaderSize {
			reason = fmt.Sprintf("torn tail: %d bytes at byte %d are too few for a batch header", size-pos, pos)
			break
		}
		if _, err := io.ReadFull(r, header[:]); err != nil {
			return nil, "", fmt.Errorf("reading batch header at byte %d: %w", pos, err)
		}
		h, err := decodeHeader(header[:])
		if err != nil {
			reason = fmt.Sprintf("bad batch header at byte %d: %v", pos, err)
			break
		}
		if pos+int64(h.Size()) > size {
			reason = fmt.Sprintf("torn tail: batch at byte %d (offset %d) claims %d bytes, only %d remain",
				pos, h.BaseOffset, h.Size(), size-pos)
			break
		}
		if cap(*buf) < h.Size() {
			*buf = make([]byte, h.Size())
		}
		b := (*buf)[:h.Size()]
		copy(b, header[:])
		if _, err := io.ReadFull(r, b[BatchHeaderSize:]); err != nil {
			return nil, "", fmt.Errorf("reading batch at byte %d: %w", pos, err)
		}
		if _, err := ParseBatch(b); err != nil {
			reason = fmt.Sprintf("bad batch at byte %d: %v", pos, err)
			break
		}
		if h.BaseOffset != seg.next {
			reason = fmt.Sprintf("batch at byte %d has base offset %d, expected %d", pos, h.BaseOffset, seg.next)
			break
		}
		if latest := len(*epochs) - 1; latest < 0 || h.PartitionLeaderEpoch > (*epochs)[latest].Epoch {
			*epochs, _ = assignEntries(*epochs, h.PartitionLeaderEpoch, h.BaseOffset)
		}
		_ = seg.noteAppend(l.cfg.IndexIntervalBytes, h, pos) // no index file yet: cannot fail
		pos += int64(h.Size())
		seg.size, seg.next = pos, h.NextOffset()
	}
	if reason != "" {
		l.cfg.Logger.Warn("storage: recovery cut a torn or corrupt log tail", "log", l.dir,
			"segment", filepath.Base(f.Name()), "byte", seg.size, "of", size, "offset", seg.next, "reason", reason)
		if err := f.Truncate(seg.size); err != nil {
			return nil, "", err
		}
	}
	return seg, reason, nil
}

// restoreIndex makes the segment's index file match the entries the scan rebuilt, rewriting it (atomically)
// when it is missing or differs, and opens it for appends.
func (l *Log) restoreIndex(seg *segment) error {
	path := filepath.Join(l.dir, segmentFileName(seg.base, indexSuffix))
	want := encodeIndex(seg.base, seg.index.entries)
	intact := false
	if fi, err := l.disk.Stat(path); err == nil && fi.Size() == int64(len(want)) {
		have, err := l.disk.ReadFile(path)
		if err != nil {
			return err
		}
		intact = bytes.Equal(have, want)
	}
	if !intact {
		l.cfg.Logger.Info("storage: recovery rebuilt a missing or inconsistent offset index", "log", l.dir,
			"index", filepath.Base(path), "entries", len(seg.index.entries))
		if err := l.disk.WriteFileAtomic(path, want); err != nil {
			return err
		}
	}
	f, err := l.disk.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	seg.index.file = f
	seg.index.written = len(seg.index.entries)
	return nil
}

// loadEpochCheckpoint reads the leader-epoch checkpoint. A missing one is empty; an unreadable one is logged
// and treated as empty (intact false, so it gets rewritten), since the scan re-derives the epochs from the
// batches.
func (l *Log) loadEpochCheckpoint() (entries []EpochEntry, intact bool, err error) {
	fi, err := l.disk.Stat(l.epochs.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if fi.Size() > epochCheckpointMaxBytes {
		l.cfg.Logger.Warn("storage: ignoring an oversized leader epoch checkpoint", "log", l.dir, "bytes", fi.Size())
		return nil, false, nil
	}
	b, err := l.disk.ReadFile(l.epochs.path)
	if err != nil {
		return nil, false, err
	}
	entries, err = decodeEpochCheckpoint(b)
	if err != nil {
		l.cfg.Logger.Warn("storage: ignoring a corrupt leader epoch checkpoint; rebuilding it from the log",
			"log", l.dir, "err", err)
		return nil, false, nil
	}
	return entries, true, nil
}
