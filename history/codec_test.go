package history

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	ops := []Op{
		{Process: 3, Type: Invoke, F: Send, Topic: "trial", Partition: 2, Value: "3-17"},
		{Process: 3, Type: Invoke, F: Send, Topic: "trial", Partition: 1, Value: "3-18"},
		{Process: 3, Type: OK, F: Send, Topic: "trial", Partition: 2, Value: "3-17", Offset: 0},
		{Process: 3, Type: Info, F: Send, Topic: "trial", Partition: 1, Value: "3-18", Error: "timed out \"x\""},
		{Process: 7, Type: Invoke, F: Poll},
		{Process: 7, Type: OK, F: Poll, Records: []Record{{Topic: "trial", Partition: 2, Offset: 41, Value: "3-17"}}},
		{Process: 7, Type: Invoke, F: Commit, Group: "g", Offsets: []Position{{Topic: "trial", Partition: 2, Offset: 42}}},
		{Process: 7, Type: OK, F: Commit, Group: "g", Offsets: []Position{{Topic: "trial", Partition: 2, Offset: 42}}},
		{Process: 7, Type: Invoke, F: Assign, Partitions: []Position{{Topic: "trial", Partition: 0}}},
		{Process: 7, Type: OK, F: Assign, Partitions: []Position{{Topic: "trial", Partition: 0}}},
		{Process: 7, Type: Invoke, F: Subscribe, Topics: []string{"trial"}},
		{Process: 7, Type: OK, F: Subscribe, Topics: []string{"trial"}},
		{Process: 9, Type: Invoke, F: Crash},
		{Process: 9, Type: Info, F: Crash, Buffered: 12},
		{Process: 12, Type: Invoke, F: FinalRead},
		{Process: 12, Type: OK, F: FinalRead, Records: []Record{}},
	}
	var buf bytes.Buffer
	w := NewWriter(&buf, time.Now())
	for _, op := range ops {
		if _, err := w.Append(op); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"type":"invoke","f":"send","topic":"trial","partition":2,"value":"3-17"}`) {
		t.Fatalf("invoke line not as contract.md shows:\n%s", buf.String())
	}
	res, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ops) != len(ops) || res.TornTail {
		t.Fatalf("read %d ops (torn %v), want %d", len(res.Ops), res.TornTail, len(ops))
	}
	for i, got := range res.Ops {
		want := ops[i]
		want.Index = int64(i)
		want.Time = got.Time
		if a, b := string(AppendJSON(nil, &got)), string(AppendJSON(nil, &want)); a != b {
			t.Errorf("op %d: got %s want %s", i, a, b)
		}
		if i > 0 && got.Time < res.Ops[i-1].Time {
			t.Errorf("time went backwards at %d", i)
		}
	}
}

func TestReadTornTailAndCorruptLine(t *testing.T) {
	good := `{"index":0,"time":1,"process":1,"type":"invoke","f":"poll"}` + "\n"
	res, err := Read(strings.NewReader(good + `{"index":1,"time":2,"proc`))
	if err != nil || !res.TornTail || len(res.Ops) != 1 {
		t.Fatalf("torn tail: res=%+v err=%v", res, err)
	}
	_, err = Read(strings.NewReader(good + "not json\n" + good))
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 {
		t.Fatalf("corrupt line: want LineError at line 2, got %v", err)
	}
	_, err = Read(strings.NewReader(good + `{"index":1,"time":2,"process":1,"type":"ok","f":"send","topic":"t","partition":0,"value":"1-1"}` + "\n"))
	if !errors.As(err, &le) || le.Line != 2 || !strings.Contains(err.Error(), "without offset") {
		t.Fatalf("ok send without offset: got %v", err)
	}
	_, err = Read(strings.NewReader(`{"index":0,"time":1,"process":1,"type":"maybe","f":"poll"}` + "\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1") || !strings.Contains(err.Error(), "maybe") {
		t.Fatalf("unknown type: got %v", err)
	}
}

func TestParseValue(t *testing.T) {
	for _, tc := range []struct {
		v    string
		p    int
		s    int64
		okay bool
	}{{"3-17", 3, 17, true}, {"0-0", 0, 0, true}, {"-1", 0, 0, false}, {"3-", 0, 0, false}, {"x-1", 0, 0, false}, {"hello", 0, 0, false}} {
		p, s, ok := ParseValue(tc.v)
		if p != tc.p || s != tc.s || ok != tc.okay {
			t.Errorf("ParseValue(%q) = %d,%d,%v", tc.v, p, s, ok)
		}
	}
	if Value(3, 17) != "3-17" {
		t.Fatal("Value")
	}
}
