package workloads

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Commit strategies (the commit.strategy key).
const (
	// StrategyAuto lets the client auto-commit every auto.commit.interval.ms what earlier polls returned.
	StrategyAuto = "auto"
	// StrategyAfterProcess commits synchronously after processing (at-least-once).
	StrategyAfterProcess = "after-process"
	// StrategyAsync commits asynchronously after processing.
	StrategyAsync = "async"
	// StrategyBeforeProcess commits synchronously before processing (at-most-once).
	StrategyBeforeProcess = "before-process"
	// StrategyDirect stores offsets atomically with the results in the consumer's own ResultStore and
	// resumes from it with a manual assignment; the broker's committed offsets are never used.
	StrategyDirect = "direct"
)

// Processing styles (the processing key).
const (
	// ProcessInline processes each poll's records before the next poll.
	ProcessInline = "inline"
	// ProcessBuffered hands polled records to an in-memory buffer that a worker processes later (the
	// "receiver" style); a crash loses what the buffer holds.
	ProcessBuffered = "buffered"
)

// ConsumerConfig configures one consumer process. Kafka settings carry Kafka's names; commit.strategy,
// processing and the rest are the workload's own. Start from DefaultConsumerConfig.
type ConsumerConfig struct {
	Topics []string `yaml:"topics"`
	// GroupID is the consumer group. Required except with commit.strategy=direct, where it only names the
	// group in the history's commit ops (default "direct").
	GroupID string `yaml:"group.id"`
	// EnableAutoCommit must be true exactly when commit.strategy=auto. Kafka's default is true.
	EnableAutoCommit bool `yaml:"enable.auto.commit"`
	// AutoCommitInterval is the auto-commit period (kgo.AutoCommitInterval). Default 5s.
	AutoCommitInterval time.Duration `yaml:"auto.commit.interval.ms"`
	// IsolationLevel is read_uncommitted or read_committed (kgo.FetchIsolationLevel). Default read_uncommitted.
	IsolationLevel string `yaml:"isolation.level"`
	// AutoOffsetReset is earliest, latest or none (kgo.ConsumeResetOffset). Default earliest: unlike Kafka's
	// latest, a trial consumer must see the records produced before it joined.
	AutoOffsetReset string `yaml:"auto.offset.reset"`
	// SessionTimeout is the group session timeout (kgo.SessionTimeout). Default 45s.
	SessionTimeout time.Duration `yaml:"session.timeout.ms"`
	// MaxPollRecords bounds the records of one poll (kgo PollRecords). Default 500.
	MaxPollRecords int `yaml:"max.poll.records"`
	// Backoff is retry.backoff.ms and retry.backoff.max.ms (Kafka's 100ms and 1s by default): how soon a
	// failed fetch or commit is retried and metadata refreshed to find a moved leader or coordinator.
	Backoff `yaml:",inline"`
	// Seed drives the retry jitter.
	Seed uint64 `yaml:"seed"`

	// Strategy is one of the Strategy* constants. Default after-process.
	Strategy string `yaml:"commit.strategy"`
	// Processing is inline or buffered. Default inline.
	Processing string `yaml:"processing"`
	// ProcessTime is the simulated work per processed record (records are processed one at a time). Default 0.
	ProcessTime time.Duration `yaml:"process.time.ms"`
	// BufferPolls bounds the polls the buffered style holds before polling blocks. Default 64.
	BufferPolls int `yaml:"buffer.polls"`

	// Store is the direct strategy's result store (required for it); the same store is handed to the
	// consumer that replaces a crashed one.
	Store *ResultStore `yaml:"-"`
	// Dial opens connections (nil: net.Dialer); Opts are appended to the client's options.
	Dial DialFunc  `yaml:"-"`
	Opts []kgo.Opt `yaml:"-"`
}

// DefaultConsumerConfig returns Kafka's consumer defaults (auto.offset.reset excepted, see above) and the
// workload's own for a commit-after-process group consumer.
func DefaultConsumerConfig(group string, topics ...string) ConsumerConfig {
	return ConsumerConfig{
		Topics:             topics,
		GroupID:            group,
		EnableAutoCommit:   false,
		AutoCommitInterval: 5 * time.Second,
		IsolationLevel:     "read_uncommitted",
		AutoOffsetReset:    "earliest",
		SessionTimeout:     45 * time.Second,
		MaxPollRecords:     500,
		Backoff:            DefaultBackoff(),
		Strategy:           StrategyAfterProcess,
		Processing:         ProcessInline,
		BufferPolls:        64,
	}
}

// Validate rejects bad values with a message naming the key.
func (c *ConsumerConfig) Validate() error {
	if len(c.Topics) == 0 {
		return fmt.Errorf("topics: none given")
	}
	switch c.Strategy {
	case StrategyAuto, StrategyAfterProcess, StrategyAsync, StrategyBeforeProcess, StrategyDirect:
	default:
		return fmt.Errorf("commit.strategy: %q, want auto, after-process, async, before-process or direct", c.Strategy)
	}
	switch {
	case c.Strategy == StrategyAuto && !c.EnableAutoCommit:
		return fmt.Errorf("commit.strategy=auto requires enable.auto.commit=true")
	case c.Strategy != StrategyAuto && c.EnableAutoCommit:
		return fmt.Errorf("enable.auto.commit=true requires commit.strategy=auto (got %s)", c.Strategy)
	case c.Strategy != StrategyDirect && c.GroupID == "":
		return fmt.Errorf("group.id: required with commit.strategy=%s", c.Strategy)
	case c.Strategy == StrategyDirect && c.Store == nil:
		return fmt.Errorf("commit.strategy=direct needs a result store")
	case c.Processing != ProcessInline && c.Processing != ProcessBuffered:
		return fmt.Errorf("processing: %q, want inline or buffered", c.Processing)
	case c.AutoCommitInterval <= 0:
		return fmt.Errorf("auto.commit.interval.ms: %v, want positive", c.AutoCommitInterval)
	case c.SessionTimeout <= 0:
		return fmt.Errorf("session.timeout.ms: %v, want positive", c.SessionTimeout)
	case c.MaxPollRecords < 1 || c.MaxPollRecords > 1<<20:
		return fmt.Errorf("max.poll.records: %d, want 1..%d", c.MaxPollRecords, 1<<20)
	case c.ProcessTime < 0:
		return fmt.Errorf("process.time.ms: %v, want at least 0", c.ProcessTime)
	case c.BufferPolls < 1 || c.BufferPolls > 1<<16:
		return fmt.Errorf("buffer.polls: %d, want 1..%d", c.BufferPolls, 1<<16)
	}
	if err := c.Backoff.validate(); err != nil {
		return err
	}
	if _, err := c.isolation(); err != nil {
		return err
	}
	if _, err := c.reset(); err != nil {
		return err
	}
	return nil
}

// Set assigns one setting by its name (for `--set key=value`); *.ms keys take milliseconds.
func (c *ConsumerConfig) Set(key, value string) error {
	if ok, err := c.Backoff.set(key, value); ok {
		if err != nil {
			return fmt.Errorf("%s=%q: %w", key, value, err)
		}
		return nil
	}
	var err error
	switch key {
	case "topics":
		c.Topics = strings.Split(value, ",")
	case "group.id":
		c.GroupID = value
	case "enable.auto.commit":
		c.EnableAutoCommit, err = strconv.ParseBool(value)
	case "auto.commit.interval.ms":
		err = setMillis(&c.AutoCommitInterval, value)
	case "isolation.level":
		c.IsolationLevel = value
	case "auto.offset.reset":
		c.AutoOffsetReset = value
	case "session.timeout.ms":
		err = setMillis(&c.SessionTimeout, value)
	case "max.poll.records":
		c.MaxPollRecords, err = strconv.Atoi(value)
	case "commit.strategy":
		c.Strategy = value
	case "processing":
		c.Processing = value
	case "process.time.ms":
		err = setMillis(&c.ProcessTime, value)
	case "buffer.polls":
		c.BufferPolls, err = strconv.Atoi(value)
	case "seed":
		c.Seed, err = strconv.ParseUint(value, 10, 64)
	default:
		return fmt.Errorf("unknown consumer setting %q", key)
	}
	if err != nil {
		return fmt.Errorf("%s=%q: %w", key, value, err)
	}
	return nil
}

func (c *ConsumerConfig) isolation() (kgo.IsolationLevel, error) {
	switch c.IsolationLevel {
	case "read_uncommitted", "":
		return kgo.ReadUncommitted(), nil
	case "read_committed":
		return kgo.ReadCommitted(), nil
	}
	return kgo.IsolationLevel{}, fmt.Errorf("isolation.level: %q, want read_uncommitted or read_committed", c.IsolationLevel)
}

func (c *ConsumerConfig) reset() (kgo.Offset, error) {
	switch c.AutoOffsetReset {
	case "earliest":
		return kgo.NewOffset().AtStart(), nil
	case "latest":
		return kgo.NewOffset().AtEnd(), nil
	case "none":
		// Only a committed offset is used; a partition without one reports an error from polls.
		return kgo.NewOffset().AtCommitted(), nil
	}
	return kgo.Offset{}, fmt.Errorf("auto.offset.reset: %q, want earliest, latest or none", c.AutoOffsetReset)
}

// group returns the group name the history's commit ops carry.
func (c *ConsumerConfig) group() string {
	if c.GroupID == "" {
		return StrategyDirect
	}
	return c.GroupID
}
