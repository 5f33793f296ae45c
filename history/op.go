package history

import (
	"fmt"
	"strconv"
	"strings"
)

// Type is the phase of an operation: every invoke is followed by exactly one completion (ok, fail or info)
// from the same process.
type Type string

const (
	Invoke Type = "invoke"
	// OK means the operation happened, with the result recorded in the completion.
	OK Type = "ok"
	// Fail means the operation definitely did not happen (Kafka guarantees the record was not written).
	Fail Type = "fail"
	// Info means the outcome is unknown: timeouts, lost connections, NOT_LEADER_OR_FOLLOWER and other
	// indefinite errors. The operation may or may not have taken effect.
	Info Type = "info"
)

// Valid reports whether t is one of the four types.
func (t Type) Valid() bool {
	switch t {
	case Invoke, OK, Fail, Info:
		return true
	}
	return false
}

// F is the function an operation performs.
type F string

const (
	// Send produces one value (Topic, Partition, Value); an ok completion carries the acked Offset.
	Send F = "send"
	// Poll is one consumer poll; an ok completion carries the Records returned.
	Poll F = "poll"
	// Process is the application handling Records it polled earlier (recorded as an ok op after an invoke).
	Process F = "process"
	// Commit commits Offsets (the next offset to read, as Kafka does) for Group.
	Commit F = "commit"
	// Assign records a manual assignment or, for a group member, the partitions it holds after a
	// rebalance (Partitions). Poll order is only judged between two assigns.
	Assign F = "assign"
	// Subscribe records a group subscription to Topics.
	Subscribe F = "subscribe"
	// Crash records that a client session died; Buffered counts records still in its buffer that were never
	// sent, and the process never invokes again (it comes back under a new process number).
	Crash F = "crash"
	// FinalRead is the read of a whole partition after the cluster healed; Records is everything read.
	FinalRead F = "final-read"
)

// Valid reports whether f is a known function.
func (f F) Valid() bool {
	switch f {
	case Send, Poll, Process, Commit, Assign, Subscribe, Crash, FinalRead:
		return true
	}
	return false
}

// Op is one line of history.jsonl. Fields that do not apply to F are left zero and omitted from the JSON.
type Op struct {
	Index   int64 `json:"index"`   // position in the history, from 0, dense
	Time    int64 `json:"time"`    // nanoseconds since the run started, monotonic
	Process int   `json:"process"` // one client session
	Type    Type  `json:"type"`
	F       F     `json:"f"`

	// Send: the destination and the value; Offset on an ok completion.
	Topic     string `json:"topic,omitempty"`
	Partition int32  `json:"partition"`
	Key       string `json:"key,omitempty"`
	Value     string `json:"value,omitempty"`
	Offset    int64  `json:"offset"`

	// Poll, process, final-read: the records returned or handled.
	Records []Record `json:"records,omitempty"`
	// Commit: the committed positions and the group.
	Offsets []Position `json:"offsets,omitempty"`
	Group   string     `json:"group,omitempty"`
	// Assign: the partitions held afterwards (offsets unset). Subscribe: the topics.
	Partitions []Position `json:"partitions,omitempty"`
	Topics     []string   `json:"topics,omitempty"`
	// Crash: records buffered in the client and never handed to a broker.
	Buffered int `json:"buffered,omitempty"`

	// Error is the client's error text on fail and info completions.
	Error string `json:"error,omitempty"`
}

// HasPartition reports whether Partition and Topic are meaningful for this op.
func (o *Op) HasPartition() bool { return o.F == Send }

// HasOffset reports whether Offset is meaningful: an ok completion of a send.
func (o *Op) HasOffset() bool { return o.F == Send && o.Type == OK }

// Record is one record seen by a consumer or the final read.
type Record struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Key       string `json:"key,omitempty"`
	Value     string `json:"value"`
}

// TP returns the record's topic-partition.
func (r Record) TP() TopicPartition { return TopicPartition{r.Topic, r.Partition} }

// Position names a topic-partition and, where it applies, an offset (a committed offset is the next one to read).
type Position struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// TP returns the position's topic-partition.
func (p Position) TP() TopicPartition { return TopicPartition{p.Topic, p.Partition} }

// TopicPartition identifies one partition log.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return tp.Topic + "/" + strconv.Itoa(int(tp.Partition)) }

// Value formats the unique value of a producer's seq-th send: "<process>-<seq>".
func Value(process int, seq int64) string {
	return strconv.Itoa(process) + "-" + strconv.FormatInt(seq, 10)
}

// ParseValue splits a value made by Value. ok is false for anything else (a phantom from outside).
func ParseValue(v string) (process int, seq int64, ok bool) {
	i := strings.IndexByte(v, '-')
	if i <= 0 || i == len(v)-1 {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(v[:i])
	s, err2 := strconv.ParseInt(v[i+1:], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || s < 0 {
		return 0, 0, false
	}
	return p, s, true
}

// validate checks the structural rules of one op (not its relation to other ops).
func (o *Op) validate() error {
	if !o.Type.Valid() {
		return fmt.Errorf("unknown type %q (want invoke, ok, fail or info)", o.Type)
	}
	if !o.F.Valid() {
		return fmt.Errorf("unknown f %q (want send, poll, process, commit, assign, subscribe, crash or final-read)", o.F)
	}
	if o.Index < 0 || o.Time < 0 {
		return fmt.Errorf("negative index or time")
	}
	if o.F == Send && (o.Topic == "" || o.Value == "") {
		return fmt.Errorf("send without topic or value")
	}
	return nil
}
