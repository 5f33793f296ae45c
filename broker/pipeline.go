package broker

// Pipelined acks=all produces. Kafka handles one request per connection at a time, so a producer's next
// request on a connection waits, unread, until the previous acks=all produce is replicated. Here the append
// of an acks=all produce happens in order as always, but its wait for the high watermark moves to a writer
// goroutine, and the connection's next request is read meanwhile if it is a Produce: consecutive acks=all
// produces replicate together instead of one after another. Everything else keeps Kafka's order: a
// non-Produce request is handled only after every pending answer is written, and answers go out in request
// order. What a client can observe is unchanged: each answer still means what it meant (the append happened,
// in order; acks=all answered once the ISR holds the batch), and nothing is answered out of order.

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxPipelinedProduces bounds the answers a connection holds waiting for replication; the connection is not
// read while it is full. Kafka's idempotent producers send at most 5 requests per connection.
const maxPipelinedProduces = 5

// deferredResponse is a handler's response whose last step, finish (waiting for the high watermark), may run
// after the handler returned. finish fills the response; it must honour cc.ctx.
type deferredResponse struct {
	kmsg.Response
	finish func()
}

// pendingAnswer is a deferred response queued for the connection's writer.
type pendingAnswer struct {
	h requestHeader
	d *deferredResponse
}

// answerWriter writes the deferred answers of one connection in order, each once its finish returns.
type answerWriter struct {
	n       *Node
	conn    net.Conn
	cc      *connCtx
	cancel  context.CancelFunc
	queue   chan pendingAnswer
	pending sync.WaitGroup // answers queued and not yet written (or dropped)
	out     []byte
}

// startAnswerWriter starts the writer goroutine of a connection; stop it with close.
func (n *Node) startAnswerWriter(conn net.Conn, cc *connCtx, cancel context.CancelFunc) *answerWriter {
	w := &answerWriter{n: n, conn: conn, cc: cc, cancel: cancel, queue: make(chan pendingAnswer, maxPipelinedProduces)}
	n.wg.Add(1)
	go w.run()
	return w
}

// enqueue queues an answer, blocking while maxPipelinedProduces are pending.
func (w *answerWriter) enqueue(h requestHeader, d *deferredResponse) {
	w.pending.Add(1)
	w.queue <- pendingAnswer{h: h, d: d}
}

// drain waits until every queued answer is written or dropped.
func (w *answerWriter) drain() { w.pending.Wait() }

// close stops the writer once the queued answers are done. The caller enqueues nothing afterwards.
func (w *answerWriter) close() { close(w.queue) }

func (w *answerWriter) run() {
	defer w.n.wg.Done()
	failed := false
	for a := range w.queue {
		if !failed {
			failed = !w.write(a)
			if failed {
				// The connection is unusable: close it so the reader stops too.
				w.cancel()
				w.conn.Close()
			}
		}
		w.pending.Done()
	}
}

// write finishes and sends one answer; false when the connection must close.
func (w *answerWriter) write(a pendingAnswer) bool {
	a.d.finish()
	a.d.Response.SetVersion(a.h.version)
	w.out = appendResponse(w.out[:0], a.h, a.d.Response)
	// A node paused while the request was handled answers only once resumed, as a stopped process would.
	if w.n.gate.wait(w.cc.ctx) != nil {
		return false
	}
	w.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := w.conn.Write(w.out); err != nil {
		if w.cc.ctx.Err() == nil {
			w.n.log.Info("closing client connection: write failed", "remote", w.cc.remote, "err", err)
		}
		return false
	}
	if cap(w.out) > maxKeptBufferBytes {
		w.out = nil
	}
	return true
}
