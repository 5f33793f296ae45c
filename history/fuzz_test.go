package history

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzRead feeds arbitrary bytes to the history reader: it must never panic, must either decode or name a
// line, whatever it decodes must keep the contract between lines (Validate), and it must encode and decode back
// to the same ops.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"index":0,"time":1,"process":1,"type":"invoke","f":"send","topic":"t","partition":0,"value":"1-0"}` + "\n"))
	f.Add([]byte(`{"index":0,"time":1,"process":1,"type":"invoke","f":"send","topic":"t","partition":0,"value":"1-0"}` + "\n" +
		`{"index":1,"time":2,"process":1,"type":"ok","f":"send","topic":"t","partition":0,"value":"1-0","offset":3}` + "\n" + `{"index":2,"ti`))
	f.Add([]byte(encode(goodOps())))
	f.Add([]byte(`{"index":0,"time":1,"process":7,"type":"ok","f":"poll","records":[{"topic":"t","partition":2,"offset":41,"value":"3-17"}]}` + "\n"))
	f.Add([]byte("not json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Read(bytes.NewReader(data))
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("error without a line number: %v", err)
			}
			return
		}
		if err := Validate(res.Ops); err != nil {
			t.Fatalf("Read accepted a history that breaks the contract: %v", err)
		}
		var buf bytes.Buffer
		for i := range res.Ops {
			buf.Write(AppendJSON(nil, &res.Ops[i]))
			buf.WriteByte('\n')
		}
		again, err := Read(&buf)
		if err != nil || len(again.Ops) != len(res.Ops) {
			t.Fatalf("re-encoded history does not decode: %v (%d vs %d ops)", err, len(again.Ops), len(res.Ops))
		}
		for i := range res.Ops {
			a, b := AppendJSON(nil, &res.Ops[i]), AppendJSON(nil, &again.Ops[i])
			if !bytes.Equal(a, b) {
				t.Fatalf("op %d changed on round trip:\n%s\n%s", i, a, b)
			}
		}
	})
}
