package history

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// goodOps is a contract-abiding history: two sends in flight at once under process 1, a poll and a commit
// under process 2, and a last send left open (the run was interrupted before its completion).
func goodOps() []Op {
	return dense([]Op{
		{Process: 1, Type: Invoke, F: Send, Topic: "t", Partition: 0, Value: "1-0"},
		{Process: 2, Type: Invoke, F: Poll},
		{Process: 1, Type: Invoke, F: Send, Topic: "t", Partition: 0, Value: "1-1"},
		{Process: 1, Type: OK, F: Send, Topic: "t", Partition: 0, Value: "1-1", Offset: 0},
		{Process: 1, Type: Info, F: Send, Topic: "t", Partition: 0, Value: "1-0", Error: "timed out"},
		{Process: 2, Type: OK, F: Poll, Records: []Record{{Topic: "t", Offset: 0, Value: "1-1"}}},
		{Process: 2, Type: Invoke, F: Commit, Group: "g", Offsets: []Position{{Topic: "t", Offset: 1}}},
		{Process: 2, Type: OK, F: Commit, Group: "g", Offsets: []Position{{Topic: "t", Offset: 1}}},
		{Process: 1, Type: Invoke, F: Send, Topic: "t", Partition: 0, Value: "1-2"},
	})
}

// dense numbers ops 0, 1, 2, ... at 10 ns apart, as Writer would.
func dense(ops []Op) []Op {
	for i := range ops {
		ops[i].Index, ops[i].Time = int64(i), int64(i+1)*10
	}
	return ops
}

func encode(ops []Op) string {
	var b []byte
	for i := range ops {
		b = AppendJSON(b, &ops[i])
		b = append(b, '\n')
	}
	return string(b)
}

func TestReadAcceptsOpenInvokesAtTheEnd(t *testing.T) {
	ops := goodOps()
	res, err := Read(strings.NewReader(encode(ops)))
	if err != nil || len(res.Ops) != len(ops) || res.TornTail {
		t.Fatalf("good history: %d ops, torn %v, err %v", len(res.Ops), res.TornTail, err)
	}
	if err := Validate(ops); err != nil {
		t.Fatalf("Validate of a good history: %v", err)
	}
	// An application may send a value again once its earlier attempt has completed: a new attempt.
	again := dense(append(goodOps(), Op{Process: 1, Type: Invoke, F: Send, Topic: "t", Value: "1-1"},
		Op{Process: 1, Type: OK, F: Send, Topic: "t", Value: "1-1", Offset: 2}))
	if err := Validate(again); err != nil {
		t.Fatalf("a value sent again after its first attempt completed: %v", err)
	}
	// A torn last line is still dropped with a note, even when it would have been a completion.
	text := encode(ops[:4]) + `{"index":4,"time":50,"process":1,"type":"ok","f":"se`
	res, err = Read(strings.NewReader(text))
	if err != nil || !res.TornTail || len(res.Ops) != 4 {
		t.Fatalf("torn tail: %d ops, torn %v, err %v", len(res.Ops), res.TornTail, err)
	}
}

// TestReadRejectsContractBreaks checks that every way a history can break the rules between its lines is an
// error naming the line, never a history handed to the checker.
func TestReadRejectsContractBreaks(t *testing.T) {
	tests := []struct {
		name string
		edit func(ops []Op) string
		line int
		want string
	}{
		{"duplicated ok line", func(ops []Op) string {
			return encode(slices.Insert(ops, 4, ops[3]))
		}, 5, "index 3 after index 3, want 4"},
		{"duplicated ok line renumbered", func(ops []Op) string {
			return encode(dense(slices.Insert(ops, 4, ops[3])))
		}, 5, `second completion (ok) of send "1-1" by process 1: its invoke (index 2) was already completed at index 3`},
		{"first invoke deleted", func(ops []Op) string {
			return encode(ops[1:])
		}, 1, "index 1 on the first op, want 0"},
		{"first invoke deleted renumbered", func(ops []Op) string {
			return encode(dense(ops[1:]))
		}, 4, `info completion of send "1-0" by process 1 without an invoke`},
		{"index gap", func(ops []Op) string {
			return encode(slices.Delete(ops, 6, 7))
		}, 7, "index 7 after index 5, want 6"},
		{"time backwards", func(ops []Op) string {
			ops[5].Time = 1
			return encode(ops)
		}, 6, "time 1 is before the previous op's time 50"},
		{"poll completion without invoke", func(ops []Op) string {
			return encode(dense(slices.Delete(ops, 1, 2)))
		}, 5, "ok completion of poll by process 2 without an invoke"},
		{"second commit completion", func(ops []Op) string {
			return encode(dense(slices.Insert(ops, 8, ops[7])))
		}, 9, "ok completion of commit by process 2 without an open invoke: its last op was already completed at index 7"},
		{"two ops of a consumer open at once", func(ops []Op) string {
			return encode(dense(slices.Insert(ops, 2, Op{Process: 2, Type: Invoke, F: Commit, Group: "g"})))
		}, 3, "invoke of commit by process 2 while its poll (index 1) is still open"},
		{"completion of another op", func(ops []Op) string {
			ops[5].F, ops[5].Records = Commit, nil
			return encode(ops)
		}, 6, "ok completion of commit by process 2, but its open op is a poll (index 1)"},
		{"value sent twice at once", func(ops []Op) string {
			ops[2].Value, ops[3].Value = "1-0", "1-0"
			return encode(ops)
		}, 3, `send of value "1-0" by process 1 while its send of the same value (index 0) is still open`},
		{"completion by another process", func(ops []Op) string {
			ops[3].Process = 4
			return encode(ops)
		}, 4, `ok completion of send "1-1" by process 4 without an invoke`},
		{"completion names another partition", func(ops []Op) string {
			ops[3].Partition = 3
			return encode(ops)
		}, 4, `names t/3, but its invoke (index 2) named t/0`},
		{"bad last line without newline", func(ops []Op) string {
			return strings.TrimSuffix(encode(dense(slices.Insert(ops, 4, ops[3]))[:5]), "\n")
		}, 5, "second completion"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.edit(goodOps())
			res, err := Read(strings.NewReader(text))
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("want a LineError, got %v (%d ops read)", err, len(res.Ops))
			}
			if le.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, want line %d and %q", err, tc.line, tc.want)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("history line %d: ", tc.line)) {
				t.Errorf("message %q does not start with the line", err)
			}
			// The same ops in memory fail Validate at the same op.
			var ops []Op
			for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
				o, err := UnmarshalOp([]byte(l))
				if err != nil {
					t.Fatal(err)
				}
				ops = append(ops, o)
			}
			var oe *OpError
			if err := Validate(ops); !errors.As(err, &oe) || oe.Position != tc.line-1 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: got %v, want op %d and %q", err, tc.line-1, tc.want)
			}
		})
	}
}

// TestWriterOutputAlwaysLoads drives Writer the way the workloads do (asynchronous producers with many sends in
// flight, consumers with one op open at a time, all appending concurrently) and stops it at random points, as
// Ctrl-C or a kill would: every prefix the writer leaves on disk, cut at any byte, must load, with at most a
// torn last line dropped.
func TestWriterOutputAlwaysLoads(t *testing.T) {
	var buf lockedBuffer
	w := NewWriter(&buf, time.Now())
	var wg sync.WaitGroup
	const producers, sends, consumers, polls = 4, 300, 2, 200
	for p := 1; p <= producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(p)))
			var inflight []Op
			complete := func() {
				i := r.Intn(len(inflight))
				o := inflight[i]
				inflight = slices.Delete(inflight, i, i+1)
				o.Type, o.Offset = OK, r.Int63n(1000)
				if r.Intn(5) == 0 {
					o.Type, o.Error = Info, "timed out"
				}
				if _, err := w.Append(o); err != nil {
					t.Error(err)
				}
			}
			for s := 0; s < sends; s++ {
				o := Op{Process: p, Type: Invoke, F: Send, Topic: "t", Partition: int32(r.Intn(3)), Value: Value(p, int64(s))}
				if _, err := w.Append(o); err != nil {
					t.Error(err)
				}
				inflight = append(inflight, o)
				for len(inflight) > 5 || (len(inflight) > 0 && r.Intn(3) == 0) {
					complete()
				}
			}
			// Sends still in flight stay open: the run is cut before their completions.
		}(p)
	}
	for c := 0; c < consumers; c++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < polls; i++ {
				for _, f := range []F{Poll, Process, Commit} {
					if _, err := w.Append(Op{Process: p, Type: Invoke, F: f}); err != nil {
						t.Error(err)
					}
					if _, err := w.Append(Op{Process: p, Type: OK, F: f}); err != nil {
						t.Error(err)
					}
				}
			}
			// The last poll stays open.
			if _, err := w.Append(Op{Process: p, Type: Invoke, F: Poll}); err != nil {
				t.Error(err)
			}
		}(100 + c)
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	total := bytes.Count(full, []byte("\n"))
	res, err := Read(bytes.NewReader(full))
	if err != nil || len(res.Ops) != total || res.TornTail {
		t.Fatalf("whole history: %d of %d ops, torn %v, err %v", len(res.Ops), total, res.TornTail, err)
	}
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 40; i++ {
		cut := r.Intn(len(full) + 1)
		res, err := Read(bytes.NewReader(full[:cut]))
		if err != nil {
			t.Fatalf("history cut at byte %d of %d: %v", cut, len(full), err)
		}
		torn := cut > 0 && full[cut-1] != '\n'
		if want := bytes.Count(full[:cut], []byte("\n")); len(res.Ops) != want && !(torn && len(res.Ops) == want+1) {
			t.Fatalf("cut at byte %d: %d ops, want %d", cut, len(res.Ops), want)
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for the writer's flusher and the test to share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.b.Bytes())
}
