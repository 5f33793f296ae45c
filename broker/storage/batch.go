package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// ErrCorruptBatch reports bytes that are not a well-formed Kafka record batch v2 (truncated, oversized, bad
// magic, bad CRC, impossible counts, or offsets that do not follow on). Always wrapped with what is wrong.
var ErrCorruptBatch = errors.New("corrupt record batch")

// Layout of the record batch v2 header (all big-endian). The CRC-32C covers attributes to the batch end.
const (
	offBaseOffset           = 0
	offLength               = 8
	offPartitionLeaderEpoch = 12
	offMagic                = 16
	offCRC                  = 17
	offAttributes           = 21
	offLastOffsetDelta      = 23
	offBaseTimestamp        = 27
	offMaxTimestamp         = 35
	offProducerID           = 43
	offProducerEpoch        = 51
	offBaseSequence         = 53
	offNumRecords           = 57

	// BatchHeaderSize is the size of the v2 header, from the base offset to the record count inclusive.
	BatchHeaderSize = 61
	// batchLogOverhead is what precedes the length-counted part: base offset and the length itself.
	batchLogOverhead = 12
	// MaxBatchBytes bounds one batch (header included). Larger length fields are rejected as corrupt
	// before anything is allocated for them.
	MaxBatchBytes = 64 << 20
)

// Batch attribute bits this package needs to know about.
const (
	attrTransactional = 1 << 4
	attrControl       = 1 << 5
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the decoded header of one record batch v2. The records themselves are never decoded.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // bytes after the length field: Size() == 12 + Length
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// LastOffset is the offset of the batch's last record.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset right after the batch.
func (h BatchHeader) NextOffset() int64 { return h.LastOffset() + 1 }

// Size is the whole batch's size in bytes.
func (h BatchHeader) Size() int { return batchLogOverhead + int(h.Length) }

// IsTransactional reports the transactional attribute bit.
func (h BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports the control-batch attribute bit (transaction markers).
func (h BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// DeclaredSize is the size in bytes the batch at the start of b declares for itself (base offset, length
// field and the length it counts: what Kafka compares with max.message.bytes), nothing else checked. ok is
// false when b is too short to hold the length field.
func DeclaredSize(b []byte) (size int64, ok bool) {
	if len(b) < batchLogOverhead {
		return 0, false
	}
	return batchLogOverhead + int64(int32(binary.BigEndian.Uint32(b[offLength:]))), true
}

// ParseBatch decodes and validates the batch at the start of b: length in bounds and present, magic 2,
// CRC-32C, sane offset delta and record count. Bytes after the batch (b[h.Size():]) are ignored.
func ParseBatch(b []byte) (BatchHeader, error) {
	h, err := parseHeader(b)
	if err != nil {
		return h, err
	}
	if got := crc32.Checksum(b[offAttributes:h.Size()], castagnoli); got != h.CRC {
		return h, fmt.Errorf("%w: CRC-32C mismatch at base offset %d: header says %#08x, bytes give %#08x",
			ErrCorruptBatch, h.BaseOffset, h.CRC, got)
	}
	return h, nil
}

// parseHeader is ParseBatch without the CRC: it checks everything the header alone can tell, and that the
// whole batch is present in b.
func parseHeader(b []byte) (BatchHeader, error) {
	h, err := decodeHeader(b)
	if err != nil {
		return h, err
	}
	if len(b) < h.Size() {
		return h, fmt.Errorf("%w: truncated batch at base offset %d: %d of %d bytes",
			ErrCorruptBatch, h.BaseOffset, len(b), h.Size())
	}
	return h, nil
}

// decodeHeader decodes and checks the 61 byte header at the start of b; the rest of the batch need not be
// present (the log reads headers alone to find batches).
func decodeHeader(b []byte) (BatchHeader, error) {
	var h BatchHeader
	if len(b) < batchLogOverhead {
		return h, fmt.Errorf("%w: %d bytes cannot hold a base offset and length (need %d)",
			ErrCorruptBatch, len(b), batchLogOverhead)
	}
	h.BaseOffset = int64(binary.BigEndian.Uint64(b[offBaseOffset:]))
	h.Length = int32(binary.BigEndian.Uint32(b[offLength:]))
	if h.Length < BatchHeaderSize-batchLogOverhead {
		return h, fmt.Errorf("%w: length %d is below the v2 header minimum %d",
			ErrCorruptBatch, h.Length, BatchHeaderSize-batchLogOverhead)
	}
	if h.Length > MaxBatchBytes-batchLogOverhead {
		return h, fmt.Errorf("%w: length %d exceeds the %d byte batch limit", ErrCorruptBatch, h.Length, MaxBatchBytes)
	}
	if len(b) < BatchHeaderSize {
		return h, fmt.Errorf("%w: truncated header: %d of %d bytes", ErrCorruptBatch, len(b), BatchHeaderSize)
	}
	h.PartitionLeaderEpoch = int32(binary.BigEndian.Uint32(b[offPartitionLeaderEpoch:]))
	h.Magic = int8(b[offMagic])
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d at base offset %d (only v2 batches are supported)",
			ErrCorruptBatch, h.Magic, h.BaseOffset)
	}
	h.CRC = binary.BigEndian.Uint32(b[offCRC:])
	h.Attributes = int16(binary.BigEndian.Uint16(b[offAttributes:]))
	h.LastOffsetDelta = int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:]))
	h.BaseTimestamp = int64(binary.BigEndian.Uint64(b[offBaseTimestamp:]))
	h.MaxTimestamp = int64(binary.BigEndian.Uint64(b[offMaxTimestamp:]))
	h.ProducerID = int64(binary.BigEndian.Uint64(b[offProducerID:]))
	h.ProducerEpoch = int16(binary.BigEndian.Uint16(b[offProducerEpoch:]))
	h.BaseSequence = int32(binary.BigEndian.Uint32(b[offBaseSequence:]))
	h.NumRecords = int32(binary.BigEndian.Uint32(b[offNumRecords:]))
	if h.LastOffsetDelta < 0 {
		return h, fmt.Errorf("%w: negative last offset delta %d at base offset %d",
			ErrCorruptBatch, h.LastOffsetDelta, h.BaseOffset)
	}
	if h.NumRecords < 0 {
		return h, fmt.Errorf("%w: negative record count %d at base offset %d",
			ErrCorruptBatch, h.NumRecords, h.BaseOffset)
	}
	if h.BaseOffset < 0 || h.BaseOffset > math.MaxInt64-int64(h.LastOffsetDelta)-1 {
		return h, fmt.Errorf("%w: base offset %d with last offset delta %d is out of range",
			ErrCorruptBatch, h.BaseOffset, h.LastOffsetDelta)
	}
	return h, nil
}

// SplitBatches walks a blob of concatenated batches (as a produce request or fetch response carries them),
// validating each with ParseBatch, and calls fn with each batch's bytes (a sub-slice of b, not a copy) and
// header. A trailing partial batch is an error, as is any garbage. It stops at the first error from
// validation or from fn and returns it. An empty blob is valid and calls fn never.
func SplitBatches(b []byte, fn func(batch []byte, h BatchHeader) error) error {
	for pos := 0; pos < len(b); {
		h, err := ParseBatch(b[pos:])
		if err != nil {
			return fmt.Errorf("batch at byte %d of %d: %w", pos, len(b), err)
		}
		end := pos + h.Size()
		if err := fn(b[pos:end:end], h); err != nil {
			return err
		}
		pos = end
	}
	return nil
}

// PatchBaseOffset writes off into the batch's base offset field. The field is outside the CRC.
func PatchBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// PatchLeaderEpoch writes epoch into the batch's partition leader epoch field. The field is outside the CRC.
func PatchLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offPartitionLeaderEpoch:], uint32(epoch))
}
