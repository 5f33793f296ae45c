package broker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batchOfSize builds a one-record batch v2 (as a non-idempotent producer writes it, CRC-32C set) whose
// whole size is exactly size bytes, padding the value.
func batchOfSize(t *testing.T, size int) []byte {
	t.Helper()
	// The record's own overhead (length, attributes, deltas, key and value lengths, header count) is a few
	// varints: the value that fits lies within 20 bytes below size minus the batch header.
	for n := max(size-61-20, 0); n <= size-61; n++ {
		r := kmsg.Record{Value: bytes.Repeat([]byte{'x'}, n)}
		body := r.AppendTo(nil)
		r.Length = int32(len(body) - 1)
		records := r.AppendTo(nil)
		rb := kmsg.RecordBatch{Length: int32(49 + len(records)), PartitionLeaderEpoch: -1, Magic: 2,
			FirstTimestamp: 1, MaxTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
			NumRecords: 1, Records: records}
		b := rb.AppendTo(nil)
		if len(b) == size {
			binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
			return b
		}
	}
	t.Fatalf("no one-record batch is exactly %d bytes", size)
	return nil
}

// produceRaw sends one batch to partition 0 with acks=all and returns the partition's answer.
func produceRaw(t *testing.T, cl *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = 0, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(testCtx(t), cl)
	if err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	return resp.Topics[0].Partitions[0]
}

// A batch above the topic's max.message.bytes (Kafka compares the whole batch's size, log overhead
// included) is refused with MESSAGE_TOO_LARGE and not appended; one exactly at the limit is appended
// (acceptance report item 5: neither limit was enforced).
func TestProduceEnforcesMaxMessageBytes(t *testing.T) {
	tn := startTestNode(t)
	limit := "1000"
	tn.createTopic("mm", 1, map[string]*string{"max.message.bytes": &limit})
	cl := tn.client()

	if sp := produceRaw(t, cl, "mm", batchOfSize(t, 1000)); sp.ErrorCode != 0 || sp.BaseOffset != 0 {
		t.Fatalf("a 1000-byte batch at max.message.bytes=1000: error %d base %d; want appended at 0", sp.ErrorCode, sp.BaseOffset)
	}
	sp := produceRaw(t, cl, "mm", batchOfSize(t, 1001))
	if sp.ErrorCode != kerr.MessageTooLarge.Code || sp.BaseOffset != -1 {
		t.Fatalf("a 1001-byte batch at max.message.bytes=1000: error %d base %d; want MESSAGE_TOO_LARGE (%d)",
			sp.ErrorCode, sp.BaseOffset, kerr.MessageTooLarge.Code)
	}
	if sp.ErrorMessage == nil || !strings.Contains(*sp.ErrorMessage, "1001 bytes") || !strings.Contains(*sp.ErrorMessage, "max.message.bytes") {
		t.Fatalf("error message %v does not name the size and the setting", sp.ErrorMessage)
	}
	if _, end := tn.offsets(t, "mm"); end != 1 {
		t.Fatalf("log end %d after a refused batch, want 1", end)
	}

	// franz-go sees the error as a failed record (its own batch limit is raised so the broker decides, and
	// compression is off: a compressed batch is judged by its compressed size, as in Kafka).
	big := tn.client(kgo.ProducerBatchMaxBytes(8<<20), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.DefaultProduceTopic("mm"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	err := big.ProduceSync(testCtx(t), &kgo.Record{Value: bytes.Repeat([]byte{'y'}, 5000)}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("franz-go producing 5000 bytes to max.message.bytes=1000: %v, want MESSAGE_TOO_LARGE", err)
	}
}

// Without a topic setting the limit is Kafka's message.max.bytes default, 1048588; raising the topic's
// max.message.bytes (at creation or later, IncrementalAlterConfigs) lets the same record in.
func TestProduceDefaultMaxMessageBytesAndDynamicChange(t *testing.T) {
	tn := startTestNode(t)
	tn.createTopic("dflt", 1, nil)
	cl := tn.client(kgo.ProducerBatchMaxBytes(8<<20), kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.DefaultProduceTopic("dflt"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))

	if sp := produceRaw(t, cl, "dflt", batchOfSize(t, defaultMaxMessageBytes)); sp.ErrorCode != 0 {
		t.Fatalf("a batch of exactly 1048588 bytes: error %d, want appended", sp.ErrorCode)
	}
	if sp := produceRaw(t, cl, "dflt", batchOfSize(t, defaultMaxMessageBytes+1)); sp.ErrorCode != kerr.MessageTooLarge.Code {
		t.Fatalf("a batch of 1048589 bytes: error %d, want MESSAGE_TOO_LARGE", sp.ErrorCode)
	}
	twoMiB := &kgo.Record{Value: bytes.Repeat([]byte{'z'}, 2<<20)}
	if err := cl.ProduceSync(testCtx(t), twoMiB).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("a 2 MiB record under the default limit: %v, want MESSAGE_TOO_LARGE", err)
	}

	adm := kadm.NewClient(cl)
	raise := "3000000"
	resp, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &raise}}, "dflt")
	if err == nil {
		err = resp[0].Err
	}
	if err != nil {
		t.Fatalf("raising max.message.bytes: %v", err)
	}
	repWait(t, 30*time.Second, "the raised limit to apply", func() error {
		twoMiB := &kgo.Record{Value: bytes.Repeat([]byte{'z'}, 2<<20)}
		return cl.ProduceSync(testCtx(t), twoMiB).FirstErr()
	})
	if _, end := tn.offsets(t, "dflt"); end != 2 {
		t.Fatalf("log end %d, want 2 (the exact-limit batch and the 2 MiB record)", end)
	}
}
