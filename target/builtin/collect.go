package builtin

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/kafkatrial/kafkatrial/broker/storage"
)

// maxDecompressed bounds one batch's decompressed records in a dump.
const maxDecompressed = 64 << 20

// Collect writes, for every node, dir/node-<id>/broker.log (a copy of the node's log) and a dump of each
// replica it hosts, dir/node-<id>/<topic>-<partition>.txt: one line per record, "offset<TAB>leader
// epoch<TAB>value" (the value Go-quoted, null for a null value), each batch introduced by a "#" line. A node
// that is down has its broker.log copied and no dumps; every problem is reported and the rest still written.
func (t *Target) Collect(ctx context.Context, dir string) error {
	im := t.cluster.Image()
	var errs []error
	for _, id := range t.cluster.IDs() {
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, fmt.Errorf("collecting node logs: %w", err))...)
		}
		nd := filepath.Join(dir, "node-"+strconv.Itoa(int(id)))
		if err := os.MkdirAll(nd, 0o755); err != nil {
			return errors.Join(append(errs, fmt.Errorf("collecting node logs: %w", err))...)
		}
		if src, err := t.cluster.LogPath(id); err != nil {
			errs = append(errs, err)
		} else if err := copyFile(src, filepath.Join(nd, "broker.log")); err != nil {
			errs = append(errs, fmt.Errorf("copying the broker log of %s: %w", NodeName(id), err))
		}
		if im == nil || !t.cluster.Running(id) {
			continue
		}
		for _, tp := range hostedBy(im, id) {
			path := filepath.Join(nd, fmt.Sprintf("%s-%d.txt", tp.topic, tp.partition))
			if err := t.dumpReplica(id, tp.topic, tp.partition, path); err != nil {
				errs = append(errs, fmt.Errorf("dumping %s replica of %s-%d: %w", NodeName(id), tp.topic, tp.partition, err))
			}
		}
	}
	return errors.Join(errs...)
}

type topicPartition struct {
	topic     string
	partition int32
}

// hostedBy lists the partitions assigned to node id, sorted.
func hostedBy(im *meta.Image, id int32) []topicPartition {
	var out []topicPartition
	for name, tp := range im.Topics {
		for _, p := range tp.Partitions {
			if slices.Contains(p.Replicas, id) {
				out = append(out, topicPartition{name, p.Partition})
			}
		}
	}
	slices.SortFunc(out, func(a, b topicPartition) int {
		if a.topic != b.topic {
			if a.topic < b.topic {
				return -1
			}
			return 1
		}
		return int(a.partition - b.partition)
	})
	return out
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// dumpReplica writes one replica's records as text.
func (t *Target) dumpReplica(id int32, topic string, partition int32, path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriter(f)
	defer func() {
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
	}()
	st, err := t.cluster.Replica(id, topic, partition)
	if err != nil {
		fmt.Fprintf(w, "# %v\n", err)
		return err
	}
	fmt.Fprintf(w, "# %s replica of %s-%d: log start %d, log end %d, high watermark %d, leader %d at epoch %d\n",
		NodeName(id), topic, partition, st.LogStartOffset, st.LogEndOffset, st.HighWatermark, st.Leader, st.LeaderEpoch)
	fmt.Fprintf(w, "# offset\tleader-epoch\tvalue\n")
	return t.cluster.ReadReplica(id, topic, partition, func(batch []byte, h storage.BatchHeader) error {
		recs, codec, err := decodeRecords(batch)
		fmt.Fprintf(w, "# batch base %d last %d epoch %d producer %d/%d sequence %d records %d codec %s",
			h.BaseOffset, h.LastOffset(), h.PartitionLeaderEpoch, h.ProducerID, h.ProducerEpoch, h.BaseSequence,
			h.NumRecords, codec)
		if h.IsTransactional() {
			fmt.Fprint(w, " transactional")
		}
		if h.IsControl() {
			fmt.Fprint(w, " control")
		}
		if err != nil {
			// A batch the dump cannot decode is shown, not fatal: the broker stores batches it never decodes.
			fmt.Fprintf(w, " undecodable: %v\n", err)
			return nil
		}
		fmt.Fprintln(w)
		for _, r := range recs {
			v := "null"
			if r.Value != nil {
				v = strconv.Quote(string(r.Value))
			}
			fmt.Fprintf(w, "%d\t%d\t%s\n", h.BaseOffset+int64(r.OffsetDelta), h.PartitionLeaderEpoch, v)
		}
		return nil
	})
}

// codecNames are the compression codecs of a batch's attributes (low three bits).
var codecNames = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// decodeRecords decodes every record of one raw batch, decompressing as needed (off the hot path: dumps only).
func decodeRecords(batch []byte) ([]kmsg.Record, string, error) {
	var b kmsg.RecordBatch
	if err := b.ReadFrom(batch); err != nil {
		return nil, "?", fmt.Errorf("reading the batch: %w", err)
	}
	codec := int(b.Attributes & 0x07)
	name := "unknown(" + strconv.Itoa(codec) + ")"
	if codec < len(codecNames) {
		name = codecNames[codec]
	}
	raw, err := decompress(codec, b.Records)
	if err != nil {
		return nil, name, err
	}
	var out []kmsg.Record
	for i := int32(0); i < b.NumRecords; i++ {
		l, n := binary.Varint(raw)
		if n <= 0 || l < 0 || l > int64(len(raw)-n) {
			return out, name, fmt.Errorf("record %d: bad length", i)
		}
		var r kmsg.Record
		if err := r.ReadFrom(raw[:n+int(l)]); err != nil {
			return out, name, fmt.Errorf("record %d: %w", i, err)
		}
		out = append(out, r)
		raw = raw[n+int(l):]
	}
	return out, name, nil
}

// xerialMagic starts snappy data framed the way the Java client's xerial library does.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

func decompress(codec int, src []byte) ([]byte, error) {
	switch codec {
	case 0:
		return src, nil
	case 1:
		r, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return readBounded(r, "gzip")
	case 2:
		if bytes.HasPrefix(src, xerialMagic) && len(src) >= 16 {
			return unframeXerial(src[16:])
		}
		return snappyBlock(src)
	case 3:
		return readBounded(lz4.NewReader(bytes.NewReader(src)), "lz4")
	case 4:
		d, err := zstd.NewReader(bytes.NewReader(src), zstd.WithDecoderMaxMemory(maxDecompressed), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer d.Close()
		return readBounded(d, "zstd")
	}
	return nil, fmt.Errorf("unknown compression codec %d", codec)
}

func readBounded(r io.Reader, codec string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDecompressed+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", codec, err)
	}
	if len(b) > maxDecompressed {
		return nil, fmt.Errorf("%s: decompressed records exceed %d bytes", codec, maxDecompressed)
	}
	return b, nil
}

func snappyBlock(src []byte) ([]byte, error) {
	n, err := s2.DecodedLen(src)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	if n > maxDecompressed {
		return nil, fmt.Errorf("snappy: decompressed records exceed %d bytes", maxDecompressed)
	}
	out, err := s2.Decode(nil, src)
	if err != nil {
		return nil, fmt.Errorf("snappy: %w", err)
	}
	return out, nil
}

// unframeXerial decodes xerial chunks: each a big-endian int32 length and a snappy block.
func unframeXerial(src []byte) ([]byte, error) {
	var out []byte
	for len(src) > 0 {
		if len(src) < 4 {
			return nil, errors.New("snappy: truncated xerial chunk length")
		}
		n := int(binary.BigEndian.Uint32(src))
		src = src[4:]
		if n < 0 || n > len(src) {
			return nil, errors.New("snappy: truncated xerial chunk")
		}
		b, err := snappyBlock(src[:n])
		if err != nil {
			return nil, err
		}
		if len(out)+len(b) > maxDecompressed {
			return nil, fmt.Errorf("snappy: decompressed records exceed %d bytes", maxDecompressed)
		}
		out = append(out, b...)
		src = src[n:]
	}
	return out, nil
}
