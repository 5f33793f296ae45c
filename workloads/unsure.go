package workloads

import "github.com/kafkatrial/kafkatrial/history"

// A record that no produce request had carried when franz-go failed it may still be written afterwards:
// franz-go fails every record it holds for a partition when one batch is rejected or times out, and a request
// it serialized just before may go out to the socket just after (seen here: CORRUPT_MESSAGE on one batch, the
// next batch failed with it and then appended by the broker). So such a failure is held, not recorded, until
// the client can no longer write the record:
//
//   - a connection writes a record invoked after the failure: franz-go writes a connection's requests in the
//     order it serializes them, so every request serialized before the failure went out before that one. Once
//     every connection that carried our records has done so (or closed), the record was never written: fail.
//   - a request carrying the record is written: info (the broker may have it).
//   - the client closes (Close, Crash) or the tap stops trusting its counts: whatever is known then.
//
// Known gap: only connections that have carried our records count. A request serialized before the failure as
// the very first produce request of a new connection (a partition's first write to a new leader) could still go
// out after the others moved on; that needs a non-retriable failure at the moment of a leader change, and would
// show as a phantom of that record.

// unsureFail is a failure held until the client can no longer write its record.
type unsureFail struct {
	seq       int64
	op        history.Op // the completion as it will be recorded (type Fail unless written)
	watermark int64      // the newest sequence number added when the record failed
	written   bool       // a request carried the record after all
}

// release unregisters the send of seq. With held set (the failure of a record no request had carried when
// take looked) it keeps the completion until settle can say whether a request still will; a request written
// since take makes it info.
func (t *produceTap) release(seq int64, held *history.Op) {
	t.mu.Lock()
	s := t.pending[seq]
	delete(t.pending, seq)
	if held == nil {
		t.mu.Unlock()
		return
	}
	u := &unsureFail{seq: seq, op: *held, watermark: t.lastAdded, written: s != nil && s.writes > 0}
	t.unsure[seq] = u
	t.order = append(t.order, u)
	ready := t.settleLocked(t.blind)
	t.mu.Unlock()
	t.emitAll(ready)
}

// closed forgets a connection: it writes nothing more.
func (t *produceTap) closed(c *tapConn) {
	t.mu.Lock()
	delete(t.written, c)
	ready := t.settleLocked(false)
	t.mu.Unlock()
	t.emitAll(ready)
}

// settleAll settles every held failure; called once the client can write nothing more.
func (t *produceTap) settleAll() {
	t.mu.Lock()
	ready := t.settleLocked(true)
	t.mu.Unlock()
	t.emitAll(ready)
}

// settleLocked removes and returns the completions of the held failures that can be settled now (all of them if
// all). Called with t.mu held.
func (t *produceTap) settleLocked(all bool) []history.Op {
	if len(t.order) == 0 {
		return nil
	}
	// Every connection that carries our records has written one added after low (or none carries any yet:
	// then a request may be serialized and not written, so nothing settles but what was written).
	low := int64(-1)
	for _, seq := range t.written {
		if low < 0 || seq < low {
			low = seq
		}
	}
	var ready []history.Op
	kept := t.order[:0]
	for _, u := range t.order {
		if !all && !u.written && u.watermark >= low {
			kept = append(kept, u)
			continue
		}
		if u.written || t.blind {
			u.op.Type = history.Info
		}
		ready = append(ready, u.op)
		delete(t.unsure, u.seq)
	}
	for i := len(kept); i < len(t.order); i++ {
		t.order[i] = nil
	}
	t.order = kept
	return ready
}

func (t *produceTap) emitAll(ops []history.Op) {
	if len(ops) > 0 && t.emit != nil {
		t.emit(ops)
	}
}
