package storage

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Records are decoded only off the hot path (a ListOffsets search by timestamp), streaming: one record's
// offset and timestamp at a time, its key, value and headers skipped, never the whole batch inflated at
// once (snappy excepted: its blocks decode whole).

// MaxDecompressedRecords bounds the decompressed size of one batch's records. Kafka has no such bound, but a
// batch of a few MiB that claims to inflate past this is a compression bomb, not data.
const MaxDecompressedRecords = 256 << 20

// Batch attribute bits of the records' encoding.
const (
	attrCompressionMask = 0x07
	attrLogAppendTime   = 1 << 3
)

// Compression codecs of the attributes' low three bits (Kafka's numbering).
const (
	codecNone = iota
	codecGzip
	codecSnappy
	codecLZ4
	codecZstd
)

// xerialMagic starts snappy data framed by the xerial library, as the Java client writes it; other
// clients (franz-go, librdkafka) write one raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// xerialHeaderSize is the magic plus two int32 versions before the first chunk.
const xerialHeaderSize = 16

// RecordTimestamp is one record's absolute offset and timestamp.
type RecordTimestamp struct {
	Offset    int64
	Timestamp int64
}

// ForEachRecord calls fn with the offset and timestamp of each record of batch (one whole record batch v2,
// as ParseBatch accepts), in order, until fn returns false. Compressed records (gzip, snappy, lz4, zstd) are
// decompressed as they are read. A record's timestamp is the batch's base timestamp plus its delta, or the
// batch's max timestamp when the batch carries LogAppendTime, as Kafka reads it. Malformed records (lengths
// that do not add up, offsets outside the batch, a record count the data does not hold) are errors wrapping
// ErrCorruptBatch.
func ForEachRecord(batch []byte, fn func(RecordTimestamp) bool) error {
	h, err := parseHeader(batch)
	if err != nil {
		return err
	}
	codec := int(h.Attributes & attrCompressionMask)
	r, closeFn, err := recordsReader(codec, batch[BatchHeaderSize:h.Size()])
	if err != nil {
		return fmt.Errorf("%w: records of the batch at base offset %d: %w", ErrCorruptBatch, h.BaseOffset, err)
	}
	defer closeFn()
	rr := recordReader{r: bufio.NewReader(r), limit: MaxDecompressedRecords}
	for i := int32(0); i < h.NumRecords; i++ {
		rec, err := rr.next(h)
		if err != nil {
			return fmt.Errorf("%w: record %d of %d in the batch at base offset %d (%s): %w", ErrCorruptBatch,
				i, h.NumRecords, h.BaseOffset, codecName(codec), err)
		}
		if !fn(rec) {
			return nil
		}
	}
	return nil
}

// recordsReader returns a reader of the decompressed records and what releases it.
func recordsReader(codec int, src []byte) (io.Reader, func(), error) {
	nop := func() {}
	switch codec {
	case codecNone:
		return bytes.NewReader(src), nop, nil
	case codecGzip:
		zr, err := gzip.NewReader(bytes.NewReader(src))
		if err != nil {
			return nil, nop, fmt.Errorf("gzip: %w", err)
		}
		return zr, func() { _ = zr.Close() }, nil
	case codecSnappy:
		b, err := decodeSnappy(src)
		if err != nil {
			return nil, nop, fmt.Errorf("snappy: %w", err)
		}
		return bytes.NewReader(b), nop, nil
	case codecLZ4:
		return lz4.NewReader(bytes.NewReader(src)), nop, nil
	case codecZstd:
		zr, err := zstd.NewReader(bytes.NewReader(src), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(MaxDecompressedRecords))
		if err != nil {
			return nil, nop, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return nil, nop, fmt.Errorf("unknown compression codec %d", codec)
}

func codecName(codec int) string {
	if names := []string{"none", "gzip", "snappy", "lz4", "zstd"}; codec < len(names) {
		return names[codec]
	}
	return fmt.Sprintf("codec %d", codec)
}

// decodeSnappy decodes one raw snappy block, or xerial-framed chunks (each a big-endian int32 length and a
// block), within MaxDecompressedRecords.
func decodeSnappy(src []byte) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) {
		return snappyBlock(nil, src)
	}
	if len(src) < xerialHeaderSize {
		return nil, fmt.Errorf("xerial header of %d bytes, want %d", len(src), xerialHeaderSize)
	}
	var out []byte
	for rest := src[xerialHeaderSize:]; len(rest) > 0; {
		if len(rest) < 4 {
			return nil, errors.New("truncated xerial chunk length")
		}
		n := int64(binary.BigEndian.Uint32(rest))
		rest = rest[4:]
		if n > int64(len(rest)) {
			return nil, fmt.Errorf("xerial chunk of %d bytes, %d remain", n, len(rest))
		}
		var err error
		if out, err = snappyBlock(out, rest[:n]); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	return out, nil
}

// snappyBlock appends the decoded block to dst.
func snappyBlock(dst, block []byte) ([]byte, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if len(dst)+n > MaxDecompressedRecords {
		return nil, fmt.Errorf("decompressed records exceed %d bytes", MaxDecompressedRecords)
	}
	b, err := s2.Decode(nil, block)
	if err != nil {
		return nil, err
	}
	return append(dst, b...), nil
}

// recordReader reads records v2 from the decompressed stream, counting bytes against limit.
type recordReader struct {
	r     *bufio.Reader
	read  int64 // bytes consumed so far
	limit int64
}

func (rr *recordReader) ReadByte() (byte, error) {
	if rr.read >= rr.limit {
		return 0, fmt.Errorf("decompressed records exceed %d bytes", rr.limit)
	}
	b, err := rr.r.ReadByte()
	if err == nil {
		rr.read++
	}
	return b, err
}

// next reads one record: length, attributes, timestamp delta and offset delta; the rest (key, value,
// headers) is skipped.
func (rr *recordReader) next(h BatchHeader) (RecordTimestamp, error) {
	length, err := binary.ReadVarint(rr)
	if err != nil {
		return RecordTimestamp{}, fmt.Errorf("reading the record length: %w", noEOF(err))
	}
	if length < 0 || length > rr.limit-rr.read {
		return RecordTimestamp{}, fmt.Errorf("record length %d is negative or past the %d byte bound", length, rr.limit)
	}
	start := rr.read
	if _, err := rr.ReadByte(); err != nil { // attributes: unused in v2
		return RecordTimestamp{}, fmt.Errorf("reading the record attributes: %w", noEOF(err))
	}
	tsDelta, err := binary.ReadVarint(rr)
	if err != nil {
		return RecordTimestamp{}, fmt.Errorf("reading the timestamp delta: %w", noEOF(err))
	}
	offDelta, err := binary.ReadVarint(rr)
	if err != nil {
		return RecordTimestamp{}, fmt.Errorf("reading the offset delta: %w", noEOF(err))
	}
	used := rr.read - start
	if used > length {
		return RecordTimestamp{}, fmt.Errorf("record length %d is shorter than its first %d bytes", length, used)
	}
	if offDelta < 0 || offDelta > int64(h.LastOffsetDelta) {
		return RecordTimestamp{}, fmt.Errorf("offset delta %d is outside the batch's [0, %d]", offDelta, h.LastOffsetDelta)
	}
	skip := int(length - used)
	if n, err := rr.r.Discard(skip); err != nil {
		return RecordTimestamp{}, fmt.Errorf("record of %d bytes ends after %d: %w", length, used+int64(n), noEOF(err))
	}
	rr.read += int64(skip)
	ts := h.BaseTimestamp + tsDelta
	if h.Attributes&attrLogAppendTime != 0 {
		ts = h.MaxTimestamp
	}
	return RecordTimestamp{Offset: h.BaseOffset + offDelta, Timestamp: ts}, nil
}

// noEOF turns a plain EOF (the data ended where a record needed more) into ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
