package workloads

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProducerConfig configures one producer process. Kafka settings carry Kafka's names (yaml tags and Set keys);
// the rest are the workload's own. Start from DefaultProducerConfig: its values are Kafka's producer defaults.
type ProducerConfig struct {
	// Topic receives every send; Partitions is its partition count: each send picks a partition in
	// [0, Partitions) at random (seeded) and names it explicitly (kgo.ManualPartitioner).
	Topic      string `yaml:"topic"`
	Partitions int32  `yaml:"partitions"`

	// Acks is "0", "1" or "all" ("-1" is read as "all"). Default all.
	Acks string `yaml:"acks"`
	// EnableIdempotence asks the broker to deduplicate retried batches. Default true. Requires acks=all and,
	// because franz-go then always allows 5 requests in flight, max.in.flight.requests.per.connection=5.
	EnableIdempotence bool `yaml:"enable.idempotence"`
	// Retries bounds the attempts per batch (kgo.RecordRetries). Default 2147483647.
	Retries int `yaml:"retries"`
	// MaxInFlight bounds produce requests in flight per broker (kgo.MaxProduceRequestsInflightPerBroker, only
	// without idempotence). Default 5.
	MaxInFlight int `yaml:"max.in.flight.requests.per.connection"`
	// RequestTimeout is how long a broker may hold a produce request waiting for replicas
	// (kgo.ProduceRequestTimeout; the client waits that plus kgo's 10s overhead). Default 30s.
	RequestTimeout time.Duration `yaml:"request.timeout.ms"`
	// DeliveryTimeout bounds the time from send to outcome (kgo.RecordDeliveryTimeout); must be at least
	// linger.ms + request.timeout.ms, as in Kafka. Default 120s.
	DeliveryTimeout time.Duration `yaml:"delivery.timeout.ms"`
	// Linger is how long a partition's batch waits for more records (kgo.ProducerLinger). Default 5ms.
	Linger time.Duration `yaml:"linger.ms"`
	// BatchSize caps a record batch in bytes (kgo.ProducerBatchMaxBytes). Default 16384.
	BatchSize int32 `yaml:"batch.size"`
	// CompressionType is none, gzip, snappy, lz4 or zstd (kgo.ProducerBatchCompression). Default none.
	CompressionType string `yaml:"compression.type"`
	// Backoff is retry.backoff.ms and retry.backoff.max.ms (Kafka's 100ms and 1s by default): how soon a
	// failed produce is retried and metadata refreshed to find a moved leader.
	Backoff `yaml:",inline"`

	// Async lets up to MaxPending sends be outstanding at once; false waits for each outcome before the next
	// send. Default true.
	Async bool `yaml:"async"`
	// MaxPending bounds the sends outstanding in async mode (and the client's buffer, kgo.MaxBufferedRecords).
	// Default 1000.
	MaxPending int `yaml:"max.pending"`
	// Rate is the target sends per second; 0 sends as fast as the client accepts. Default 1000.
	Rate float64 `yaml:"rate"`
	// Count stops each Run after that many sends; 0 sends until stopped. Default 0.
	Count int64 `yaml:"count"`
	// Seed drives the partition choice.
	Seed uint64 `yaml:"seed"`

	// Dial opens connections (nil: net.Dialer); Opts are appended to the client's options (tests add hooks).
	Dial DialFunc  `yaml:"-"`
	Opts []kgo.Opt `yaml:"-"`
}

// DefaultProducerConfig returns Kafka's producer defaults and the workload's own.
func DefaultProducerConfig(topic string, partitions int32) ProducerConfig {
	return ProducerConfig{
		Topic:             topic,
		Partitions:        partitions,
		Acks:              "all",
		EnableIdempotence: true,
		Retries:           math.MaxInt32,
		MaxInFlight:       5,
		RequestTimeout:    30 * time.Second,
		DeliveryTimeout:   120 * time.Second,
		Linger:            5 * time.Millisecond,
		BatchSize:         16384,
		CompressionType:   "none",
		Backoff:           DefaultBackoff(),
		Async:             true,
		MaxPending:        1000,
		Rate:              1000,
	}
}

// maxPendingLimit bounds the async window (and so the memory of outstanding sends).
const maxPendingLimit = 1 << 20

// Validate rejects bad values with a message naming the key.
func (c *ProducerConfig) Validate() error {
	switch {
	case c.Topic == "":
		return fmt.Errorf("topic: must be set")
	case c.Partitions <= 0:
		return fmt.Errorf("partitions: %d, want at least 1", c.Partitions)
	}
	if _, err := c.acks(); err != nil {
		return err
	}
	if _, err := c.compression(); err != nil {
		return err
	}
	if err := c.Backoff.validate(); err != nil {
		return err
	}
	switch {
	case c.EnableIdempotence && c.Acks != "all" && c.Acks != "-1":
		return fmt.Errorf("enable.idempotence=true requires acks=all (got acks=%s): set enable.idempotence=false", c.Acks)
	case c.MaxInFlight < 1:
		return fmt.Errorf("max.in.flight.requests.per.connection: %d, want at least 1", c.MaxInFlight)
	case c.EnableIdempotence && c.MaxInFlight != 5:
		return fmt.Errorf("max.in.flight.requests.per.connection=%d with enable.idempotence=true: franz-go always allows 5 in flight when idempotent; use 5 or set enable.idempotence=false", c.MaxInFlight)
	case c.Retries < 0:
		return fmt.Errorf("retries: %d, want at least 0", c.Retries)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("request.timeout.ms: %v, want positive", c.RequestTimeout)
	case c.Linger < 0:
		return fmt.Errorf("linger.ms: %v, want at least 0", c.Linger)
	case c.DeliveryTimeout < c.Linger+c.RequestTimeout:
		return fmt.Errorf("delivery.timeout.ms: %v, want at least linger.ms + request.timeout.ms (%v)", c.DeliveryTimeout, c.Linger+c.RequestTimeout)
	case c.BatchSize < 1024 || c.BatchSize > 1<<30:
		return fmt.Errorf("batch.size: %d, want 1024..%d", c.BatchSize, 1<<30)
	case c.MaxPending < 1 || c.MaxPending > maxPendingLimit:
		return fmt.Errorf("max.pending: %d, want 1..%d", c.MaxPending, maxPendingLimit)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("rate: %v, want a finite number >= 0", c.Rate)
	case c.Count < 0:
		return fmt.Errorf("count: %d, want at least 0", c.Count)
	}
	return nil
}

// Set assigns one setting by its Kafka name (for `--set key=value`); *.ms keys take milliseconds.
func (c *ProducerConfig) Set(key, value string) error {
	if ok, err := c.Backoff.set(key, value); ok {
		if err != nil {
			return fmt.Errorf("%s=%q: %w", key, value, err)
		}
		return nil
	}
	var err error
	switch key {
	case "topic":
		c.Topic = value
	case "partitions":
		err = setInt32(&c.Partitions, value)
	case "acks":
		c.Acks = value
	case "enable.idempotence":
		c.EnableIdempotence, err = strconv.ParseBool(value)
	case "retries":
		c.Retries, err = strconv.Atoi(value)
	case "max.in.flight.requests.per.connection":
		c.MaxInFlight, err = strconv.Atoi(value)
	case "request.timeout.ms":
		err = setMillis(&c.RequestTimeout, value)
	case "delivery.timeout.ms":
		err = setMillis(&c.DeliveryTimeout, value)
	case "linger.ms":
		err = setMillis(&c.Linger, value)
	case "batch.size":
		err = setInt32(&c.BatchSize, value)
	case "compression.type":
		c.CompressionType = value
	case "async":
		c.Async, err = strconv.ParseBool(value)
	case "max.pending":
		c.MaxPending, err = strconv.Atoi(value)
	case "rate":
		c.Rate, err = strconv.ParseFloat(value, 64)
	case "count":
		c.Count, err = strconv.ParseInt(value, 10, 64)
	case "seed":
		c.Seed, err = strconv.ParseUint(value, 10, 64)
	default:
		return fmt.Errorf("unknown producer setting %q", key)
	}
	if err != nil {
		return fmt.Errorf("%s=%q: %w", key, value, err)
	}
	return nil
}

func (c *ProducerConfig) acks() (kgo.Acks, error) {
	switch c.Acks {
	case "0":
		return kgo.NoAck(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	}
	return kgo.Acks{}, fmt.Errorf("acks: %q, want 0, 1 or all", c.Acks)
}

func (c *ProducerConfig) compression() (kgo.CompressionCodec, error) {
	switch c.CompressionType {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression.type: %q, want none, gzip, snappy, lz4 or zstd", c.CompressionType)
}

// kgoOpts maps every setting onto the client; call after Validate.
func (c *ProducerConfig) kgoOpts() []kgo.Opt {
	acks, _ := c.acks()
	codec, _ := c.compression()
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(c.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(acks),
		kgo.RecordRetries(c.Retries),
		kgo.ProduceRequestTimeout(c.RequestTimeout),
		kgo.RecordDeliveryTimeout(c.DeliveryTimeout),
		kgo.ProducerLinger(c.Linger),
		kgo.ProducerBatchMaxBytes(c.BatchSize),
		kgo.ProducerBatchCompression(codec),
		kgo.MaxBufferedRecords(c.MaxPending),
	}
	opts = append(opts, c.Backoff.kgoOpts(c.Seed)...)
	if !c.EnableIdempotence {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(c.MaxInFlight))
	}
	return opts
}

func setMillis(d *time.Duration, v string) error {
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return err
	}
	*d = time.Duration(ms) * time.Millisecond
	return nil
}

func setInt32(p *int32, v string) error {
	n, err := strconv.ParseInt(v, 10, 32)
	*p = int32(n)
	return err
}
