package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// MaxLineBytes bounds one history line; a longer line is rejected rather than buffered without limit.
const MaxLineBytes = 64 << 20

// AppendJSON appends op as one JSON object (no newline) to b. Fields that do not apply are omitted, so a send
// invoke carries no offset and a poll carries no partition, as contract.md shows.
func AppendJSON(b []byte, o *Op) []byte {
	b = append(b, `{"index":`...)
	b = strconv.AppendInt(b, o.Index, 10)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, o.Time, 10)
	b = append(b, `,"process":`...)
	b = strconv.AppendInt(b, int64(o.Process), 10)
	b = append(b, `,"type":`...)
	b = appendString(b, string(o.Type))
	b = append(b, `,"f":`...)
	b = appendString(b, string(o.F))
	if o.Topic != "" {
		b = append(b, `,"topic":`...)
		b = appendString(b, o.Topic)
	}
	if o.HasPartition() {
		b = append(b, `,"partition":`...)
		b = strconv.AppendInt(b, int64(o.Partition), 10)
	}
	if o.Key != "" {
		b = append(b, `,"key":`...)
		b = appendString(b, o.Key)
	}
	if o.Value != "" {
		b = append(b, `,"value":`...)
		b = appendString(b, o.Value)
	}
	if o.HasOffset() {
		b = append(b, `,"offset":`...)
		b = strconv.AppendInt(b, o.Offset, 10)
	}
	if o.Records != nil {
		b = append(b, `,"records":[`...)
		for i := range o.Records {
			if i > 0 {
				b = append(b, ',')
			}
			r := &o.Records[i]
			b = append(b, `{"topic":`...)
			b = appendString(b, r.Topic)
			b = append(b, `,"partition":`...)
			b = strconv.AppendInt(b, int64(r.Partition), 10)
			b = append(b, `,"offset":`...)
			b = strconv.AppendInt(b, r.Offset, 10)
			if r.Key != "" {
				b = append(b, `,"key":`...)
				b = appendString(b, r.Key)
			}
			b = append(b, `,"value":`...)
			b = appendString(b, r.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if o.Offsets != nil {
		b = append(b, `,"offsets":`...)
		b = appendPositions(b, o.Offsets, true)
	}
	if o.Group != "" {
		b = append(b, `,"group":`...)
		b = appendString(b, o.Group)
	}
	if o.Partitions != nil {
		b = append(b, `,"partitions":`...)
		b = appendPositions(b, o.Partitions, false)
	}
	if o.Topics != nil {
		b = append(b, `,"topics":[`...)
		for i, t := range o.Topics {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, t)
		}
		b = append(b, ']')
	}
	if o.Buffered != 0 {
		b = append(b, `,"buffered":`...)
		b = strconv.AppendInt(b, int64(o.Buffered), 10)
	}
	if o.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, o.Error)
	}
	return append(b, '}')
}

func appendPositions(b []byte, ps []Position, withOffset bool) []byte {
	b = append(b, '[')
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"topic":`...)
		b = appendString(b, p.Topic)
		b = append(b, `,"partition":`...)
		b = strconv.AppendInt(b, int64(p.Partition), 10)
		if withOffset {
			b = append(b, `,"offset":`...)
			b = strconv.AppendInt(b, p.Offset, 10)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendString appends s as a JSON string. Values and topics are plain ASCII in practice; anything else goes
// through encoding/json so the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// wireOp mirrors Op for decoding, with pointers where absence must be told from zero.
type wireOp struct {
	Index      *int64     `json:"index"`
	Time       *int64     `json:"time"`
	Process    *int       `json:"process"`
	Type       Type       `json:"type"`
	F          F          `json:"f"`
	Topic      string     `json:"topic"`
	Partition  *int32     `json:"partition"`
	Key        string     `json:"key"`
	Value      string     `json:"value"`
	Offset     *int64     `json:"offset"`
	Records    []Record   `json:"records"`
	Offsets    []Position `json:"offsets"`
	Group      string     `json:"group"`
	Partitions []Position `json:"partitions"`
	Topics     []string   `json:"topics"`
	Buffered   int        `json:"buffered"`
	Error      string     `json:"error"`
}

// UnmarshalOp decodes one history line. Unknown fields are allowed (contract.md: extra fields are allowed).
func UnmarshalOp(line []byte) (Op, error) {
	var w wireOp
	if err := json.Unmarshal(line, &w); err != nil {
		return Op{}, err
	}
	if w.Index == nil || w.Time == nil || w.Process == nil {
		return Op{}, errors.New("missing index, time or process")
	}
	o := Op{
		Index: *w.Index, Time: *w.Time, Process: *w.Process, Type: w.Type, F: w.F,
		Topic: w.Topic, Key: w.Key, Value: w.Value, Records: w.Records, Offsets: w.Offsets, Group: w.Group,
		Partitions: w.Partitions, Topics: w.Topics, Buffered: w.Buffered, Error: w.Error,
	}
	if w.Partition != nil {
		o.Partition = *w.Partition
	} else if o.F == Send {
		return Op{}, errors.New("send without partition")
	}
	if w.Offset != nil {
		o.Offset = *w.Offset
	} else if o.F == Send && o.Type == OK {
		return Op{}, errors.New("ok send without offset")
	}
	if err := o.validate(); err != nil {
		return Op{}, err
	}
	return o, nil
}

// LineError names the line of history.jsonl that could not be read.
type LineError struct {
	Line int // 1-based
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("history line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ReadResult is a whole decoded history.
type ReadResult struct {
	Ops []Op
	// TornTail is set when the last line was incomplete (the writer died mid-line) and was dropped.
	TornTail bool
}

// Read decodes a whole history. A torn last line (no newline and not valid JSON, as a crash or Ctrl-C leaves)
// is dropped and reported in TornTail; any other bad line is an error naming its line number. That includes a
// line that breaks the rules between lines (see Sequence): an index gap or repeat, time going backwards, a
// completion without an invoke or a second one for the same invoke, a value sent twice. Invokes still open at
// the end are allowed: an interrupted run leaves them.
func Read(r io.Reader) (ReadResult, error) {
	var res ReadResult
	seq := NewSequence()
	br := bufio.NewReaderSize(r, 1<<20)
	for line := 1; ; line++ {
		b, err := readLine(br)
		if len(b) == 0 && err == io.EOF {
			return res, nil
		}
		if err != nil && err != io.EOF {
			return res, &LineError{line, err}
		}
		complete := err == nil // a line ending in '\n'
		trimmed := bytes.TrimSpace(b)
		if len(trimmed) == 0 {
			if !complete {
				return res, nil
			}
			continue
		}
		op, derr := UnmarshalOp(trimmed)
		if derr != nil {
			if !complete {
				res.TornTail = true
				return res, nil
			}
			return res, &LineError{line, derr}
		}
		if err := seq.Add(&op); err != nil {
			return res, &LineError{line, err}
		}
		res.Ops = append(res.Ops, op)
		if !complete {
			// A last line without newline that parses is still a whole op.
			return res, nil
		}
	}
}

// ReadFile reads a history.jsonl file.
func ReadFile(path string) (ReadResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return ReadResult{}, fmt.Errorf("reading history: %w", err)
	}
	defer f.Close()
	res, err := Read(f)
	if err != nil {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// readLine returns one line without its newline; err is io.EOF when the line had no newline.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > MaxLineBytes {
			return nil, fmt.Errorf("line longer than %d bytes", MaxLineBytes)
		}
		if err == bufio.ErrBufferFull {
			buf = append(buf, chunk...)
			continue
		}
		if err == nil {
			chunk = chunk[:len(chunk)-1]
		}
		if buf == nil {
			return append([]byte(nil), chunk...), err
		}
		return append(buf, chunk...), err
	}
}
