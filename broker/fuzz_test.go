package broker

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// FuzzRequestDecoding feeds arbitrary bytes through frame reading, header parsing, body decoding and
// dispatch of a running node: nothing may panic, and every outcome is an answer, no answer (acks=0) or an
// error that closes the connection.
func FuzzRequestDecoding(f *testing.F) {
	for _, seed := range [][]byte{
		{0, 0, 0, 0},
		{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff},
		{0x7f, 0xff, 0xff, 0xff},
	} {
		f.Add(seed)
	}
	tn := startTestNode(f)
	tn.createTopic("fuzz", 2, nil)
	f.Fuzz(func(t *testing.T, data []byte) {
		frame, err := readFrame(bytes.NewReader(data), 1<<20)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		cc := &connCtx{ctx: ctx, remote: "fuzz"}
		out, err := tn.handleFrame(cc, frame, nil)
		if err == nil && len(out) > 0 && len(out) < 8 {
			t.Fatalf("response frame of %d bytes", len(out))
		}
	})
}
