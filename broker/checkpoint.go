package broker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The high watermark checkpoint (Kafka's replication-offset-checkpoint): one file per node listing every
// hosted partition's high watermark, rewritten atomically every replica.high.watermark.checkpoint.interval.ms
// and on a clean close. At start-up a partition's high watermark begins at its checkpointed value (capped at
// its log end); for a leader whose ISR is itself it then moves to the log end at once.
const hwCheckpointFile = "replication-offset-checkpoint"

// hwCheckpointVersion is the file format version (Kafka's is 0, with the same layout).
const hwCheckpointVersion = 0

// loadHWCheckpoint reads the checkpoint; a missing or unreadable file gives an empty map (every high
// watermark then starts at its log start and is rebuilt from the ISR), and a corrupt one is logged.
func (n *Node) loadHWCheckpoint() map[topicPartition]int64 {
	b, err := n.disk.ReadFile(n.path(hwCheckpointFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[topicPartition]int64{}
	}
	if err != nil {
		n.log.Warn("reading the high watermark checkpoint failed; starting from log starts", "err", err)
		return map[topicPartition]int64{}
	}
	m, err := decodeHWCheckpoint(b)
	if err != nil {
		n.log.Warn("corrupt high watermark checkpoint ignored", "err", err)
		return map[topicPartition]int64{}
	}
	return m
}

func decodeHWCheckpoint(b []byte) (map[topicPartition]int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	lines := 0
	m := map[topicPartition]int64{}
	want := -1
	for sc.Scan() {
		line := sc.Text()
		switch lines {
		case 0:
			if line != strconv.Itoa(hwCheckpointVersion) {
				return nil, fmt.Errorf("checkpoint version %q, want %d", line, hwCheckpointVersion)
			}
		case 1:
			n, err := strconv.Atoi(line)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("checkpoint entry count %q", line)
			}
			want = n
		default:
			f := strings.Fields(line)
			if len(f) != 3 {
				return nil, fmt.Errorf("checkpoint line %d: %q", lines+1, line)
			}
			p, err1 := strconv.ParseInt(f[1], 10, 32)
			hw, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil || hw < 0 {
				return nil, fmt.Errorf("checkpoint line %d: %q", lines+1, line)
			}
			m[topicPartition{f[0], int32(p)}] = hw
		}
		lines++
	}
	if want != len(m) {
		return nil, fmt.Errorf("checkpoint lists %d entries, header says %d", len(m), want)
	}
	return m, nil
}

func encodeHWCheckpoint(m map[topicPartition]int64) []byte {
	tps := make([]topicPartition, 0, len(m))
	for tp := range m {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b topicPartition) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.partition - b.partition)
	})
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n%d\n", hwCheckpointVersion, len(tps))
	for _, tp := range tps {
		fmt.Fprintf(&b, "%s %d %d\n", tp.topic, tp.partition, m[tp])
	}
	return b.Bytes()
}

// writeHWCheckpoint records every hosted partition's high watermark.
func (n *Node) writeHWCheckpoint() error {
	m := map[topicPartition]int64{}
	n.partsMu.RLock()
	for tp, p := range n.parts {
		m[tp] = p.highWatermark()
	}
	n.partsMu.RUnlock()
	if err := n.disk.WriteFileAtomic(n.path(hwCheckpointFile), encodeHWCheckpoint(m)); err != nil {
		return fmt.Errorf("writing the high watermark checkpoint: %w", err)
	}
	return nil
}

// checkpointLoop writes the checkpoint periodically until the node stops.
func (n *Node) checkpointLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.Timing.HWCheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			if n.gate.wait(n.ctx) != nil {
				return
			}
			if err := n.writeHWCheckpoint(); err != nil {
				n.log.Warn("periodic high watermark checkpoint failed", "err", err)
			}
		}
	}
}
