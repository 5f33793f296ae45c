package checker

import (
	"fmt"
	"math"
	"sort"

	"github.com/kafkatrial/kafkatrial/history"
)

// never is the return time of an operation whose outcome is unknown: porcupine's advice (issue #8) is to let
// such an operation "return" after everything else, so it may be linearized anywhere after its call.
const never = math.MaxInt64

// facts is a history indexed for the analyses: values and topic-partitions interned to dense ids, invokes
// paired with their completions, and every observation of a (partition, offset, value) collected per
// partition. It is built in one pass and read-only afterwards.
type facts struct {
	ops []history.Op

	tps   []history.TopicPartition
	tpIDs map[history.TopicPartition]int32

	values   []string
	valueIDs map[string]int32

	sends  []sendAttempt
	byTPV  map[tpVal][]int32 // send attempts per (partition, value)
	obs    [][]observation   // per partition: acks, poll records, final-read records
	finals []finalRead       // per partition
	polls  []pollRead        // ok polls in history order

	crashes       int
	bufferedLost  int
	pollCount     int
	recordsPolled int
	start, end    int64 // times of the first and last op
	topicFilter   map[string]bool
	positions     map[int64]int // history index -> position in ops, built only if they differ
}

// tpVal names a value within one partition.
type tpVal struct {
	tp  int32
	val int32
}

// sendAttempt is one send op: an invoke and its completion (or none, if the history ended first).
type sendAttempt struct {
	tp        int32
	val       int32
	process   int
	invokeIdx int64 // history index of the invoke, -1 if the completion had none
	doneIdx   int64 // history index of the completion, -1 if none
	call, ret int64 // ret is never for info and unfinished sends
	done      int64 // completion time (or the last op's time if unfinished)
	typ       history.Type
	offset    int64 // acked offset; -1 if not ok or acked without one (acks=0)
}

// Observation kinds, in the order examples name them.
const (
	obsAck uint8 = iota
	obsPoll
	obsFinal
)

// observation is one piece of evidence that value val sits at offset off of a partition.
type observation struct {
	off     int64
	val     int32
	kind    uint8
	process int32
	op      int64 // history index
}

// finalRead is the union of ok final-read ops of one partition.
type finalRead struct {
	present bool
	op      int64              // history index of the first final read of this partition
	call    int64              // invoke time of that read
	records []offVal           // sorted by offset; a value may repeat (duplicates)
	byValue map[int32][]int64  // offsets of each value
	offsets map[int64]struct{} // offsets present
	reads   []finalReadOp      // one per final-read op, for the linearizability model
}

// finalReadOp is one final-read op's view of one partition.
type finalReadOp struct {
	op        int64
	process   int
	call, ret int64
	records   []offVal
}

type offVal struct {
	off int64
	val int32
}

// pollRead is one ok poll.
type pollRead struct {
	op        int64
	process   int
	call, ret int64
	records   []tpRecord
}

type tpRecord struct {
	tp  int32
	off int64
	val int32
}

// buildFacts indexes ops. Only topics in filter are kept (all when filter is empty).
func buildFacts(ops []history.Op, filter []string) *facts {
	f := &facts{
		ops:      ops,
		tpIDs:    make(map[history.TopicPartition]int32),
		valueIDs: make(map[string]int32, len(ops)/4),
		byTPV:    make(map[tpVal][]int32, len(ops)/4),
	}
	if len(filter) > 0 {
		f.topicFilter = make(map[string]bool, len(filter))
		for _, t := range filter {
			f.topicFilter[t] = true
		}
	}
	if len(ops) > 0 {
		f.start, f.end = ops[0].Time, ops[len(ops)-1].Time
	}
	pendingSend := make(map[sendKey][]int32)
	pendingOp := make(map[int]int) // process -> position in ops of its open non-send invoke
	for i := range ops {
		o := &ops[i]
		if o.Time < f.start {
			f.start = o.Time
		}
		if o.Time > f.end {
			f.end = o.Time
		}
		if o.F == history.Send {
			f.addSend(o, pendingSend)
			continue
		}
		if o.Type == history.Invoke {
			pendingOp[o.Process] = i
			continue
		}
		call := o.Time
		if j, ok := pendingOp[o.Process]; ok && ops[j].F == o.F {
			call = ops[j].Time
			delete(pendingOp, o.Process)
		}
		switch o.F {
		case history.Poll:
			if o.Type == history.OK {
				f.addPoll(o, call)
			}
		case history.FinalRead:
			if o.Type == history.OK {
				f.addFinal(o, call)
			}
		case history.Crash:
			f.crashes++
			f.bufferedLost += o.Buffered
		}
	}
	for i := range f.sends {
		s := &f.sends[i]
		if s.doneIdx < 0 {
			s.typ, s.ret, s.done = history.Info, never, f.end
		}
	}
	for tp := range f.finals {
		fr := &f.finals[tp]
		sort.Slice(fr.records, func(a, b int) bool { return fr.records[a].off < fr.records[b].off })
	}
	return f
}

type sendKey struct {
	process int
	value   string
}

func (f *facts) keep(topic string) bool { return f.topicFilter == nil || f.topicFilter[topic] }

func (f *facts) tp(t history.TopicPartition) int32 {
	id, ok := f.tpIDs[t]
	if !ok {
		id = int32(len(f.tps))
		f.tpIDs[t] = id
		f.tps = append(f.tps, t)
		f.obs = append(f.obs, nil)
		f.finals = append(f.finals, finalRead{})
	}
	return id
}

func (f *facts) value(v string) int32 {
	id, ok := f.valueIDs[v]
	if !ok {
		id = int32(len(f.values))
		f.valueIDs[v] = id
		f.values = append(f.values, v)
	}
	return id
}

func (f *facts) addSend(o *history.Op, pending map[sendKey][]int32) {
	if !f.keep(o.Topic) {
		return
	}
	key := sendKey{o.Process, o.Value}
	if o.Type == history.Invoke {
		tp := f.tp(history.TopicPartition{Topic: o.Topic, Partition: o.Partition})
		val := f.value(o.Value)
		id := int32(len(f.sends))
		f.sends = append(f.sends, sendAttempt{
			tp: tp, val: val, process: o.Process, invokeIdx: o.Index, doneIdx: -1, call: o.Time, offset: -1,
		})
		pending[key] = append(pending[key], id)
		f.byTPV[tpVal{tp, val}] = append(f.byTPV[tpVal{tp, val}], id)
		return
	}
	var s *sendAttempt
	if q := pending[key]; len(q) > 0 {
		s = &f.sends[q[0]]
		if len(q) == 1 {
			delete(pending, key)
		} else {
			pending[key] = q[1:]
		}
	} else {
		// A completion without its invoke (a history cut at the front): take the completion as the call.
		tp := f.tp(history.TopicPartition{Topic: o.Topic, Partition: o.Partition})
		val := f.value(o.Value)
		id := int32(len(f.sends))
		f.sends = append(f.sends, sendAttempt{
			tp: tp, val: val, process: o.Process, invokeIdx: -1, call: o.Time, offset: -1,
		})
		f.byTPV[tpVal{tp, val}] = append(f.byTPV[tpVal{tp, val}], id)
		s = &f.sends[id]
	}
	s.doneIdx, s.typ, s.done = o.Index, o.Type, o.Time
	s.ret = o.Time
	if o.Type == history.Info {
		s.ret = never
	}
	if o.Type == history.OK && o.Offset >= 0 {
		s.offset = o.Offset
		f.obs[s.tp] = append(f.obs[s.tp], observation{
			off: o.Offset, val: s.val, kind: obsAck, process: int32(o.Process), op: o.Index,
		})
	}
}

func (f *facts) addPoll(o *history.Op, call int64) {
	f.pollCount++
	p := pollRead{op: o.Index, process: o.Process, call: call, ret: o.Time}
	for _, r := range o.Records {
		if !f.keep(r.Topic) {
			continue
		}
		tp, val := f.tp(r.TP()), f.value(r.Value)
		p.records = append(p.records, tpRecord{tp: tp, off: r.Offset, val: val})
		f.obs[tp] = append(f.obs[tp], observation{
			off: r.Offset, val: val, kind: obsPoll, process: int32(o.Process), op: o.Index,
		})
	}
	f.recordsPolled += len(p.records)
	f.polls = append(f.polls, p)
}

// addFinal records a final read. The partitions it covers are those of its records plus those listed in its
// Partitions field, so an empty partition's final read is recorded when the workload lists it there.
func (f *facts) addFinal(o *history.Op, call int64) {
	per := make(map[int32][]offVal)
	var order []int32
	touch := func(tp int32) {
		if _, ok := per[tp]; !ok {
			per[tp] = nil
			order = append(order, tp)
		}
	}
	for _, p := range o.Partitions {
		if f.keep(p.Topic) {
			touch(f.tp(p.TP()))
		}
	}
	for _, r := range o.Records {
		if !f.keep(r.Topic) {
			continue
		}
		tp, val := f.tp(r.TP()), f.value(r.Value)
		touch(tp)
		per[tp] = append(per[tp], offVal{r.Offset, val})
		f.obs[tp] = append(f.obs[tp], observation{
			off: r.Offset, val: val, kind: obsFinal, process: int32(o.Process), op: o.Index,
		})
	}
	for _, tp := range order {
		fr := &f.finals[tp]
		if !fr.present {
			fr.present, fr.op, fr.call = true, o.Index, call
			fr.byValue = make(map[int32][]int64)
			fr.offsets = make(map[int64]struct{})
		}
		recs := per[tp]
		sort.Slice(recs, func(a, b int) bool { return recs[a].off < recs[b].off })
		fr.reads = append(fr.reads, finalReadOp{op: o.Index, process: o.Process, call: call, ret: o.Time, records: recs})
		for _, r := range recs {
			if _, seen := fr.offsets[r.off]; seen && containsOffset(fr.byValue[r.val], r.off) {
				continue // the same record read again by a second final read
			}
			fr.offsets[r.off] = struct{}{}
			fr.records = append(fr.records, r)
			fr.byValue[r.val] = append(fr.byValue[r.val], r.off)
		}
	}
}

func containsOffset(offs []int64, off int64) bool {
	for _, o := range offs {
		if o == off {
			return true
		}
	}
	return false
}

// tpName is the partition as examples and notes print it.
func (f *facts) tpName(tp int32) string { return f.tps[tp].String() }

// noFinalRead lists, sorted, the partitions that were written or read but have no final read.
func (f *facts) noFinalRead() []string {
	var out []string
	for tp := range f.tps {
		if !f.finals[tp].present {
			out = append(out, f.tpName(int32(tp)))
		}
	}
	sort.Strings(out)
	return out
}

// tpOrder returns partition ids sorted by topic then partition, so output does not depend on first appearance.
func (f *facts) tpOrder() []int32 {
	ids := make([]int32, len(f.tps))
	for i := range ids {
		ids[i] = int32(i)
	}
	sort.Slice(ids, func(a, b int) bool {
		x, y := f.tps[ids[a]], f.tps[ids[b]]
		if x.Topic != y.Topic {
			return x.Topic < y.Topic
		}
		return x.Partition < y.Partition
	})
	return ids
}

// at formats an op reference for example details: "op 12 at 1.900s".
func (f *facts) at(op int64) string {
	return fmt.Sprintf("op %d at %.3fs", op, float64(f.timeOf(op))/1e9)
}

// timeOf returns the time of the op with history index op (0 if there is none). Indexes are normally the
// positions in ops; a history that is not dense gets a lookup table on first use.
func (f *facts) timeOf(op int64) int64 {
	if op >= 0 && op < int64(len(f.ops)) && f.ops[op].Index == op {
		return f.ops[op].Time
	}
	if f.positions == nil {
		f.positions = make(map[int64]int, len(f.ops))
		for i := range f.ops {
			f.positions[f.ops[i].Index] = i
		}
	}
	if i, ok := f.positions[op]; ok {
		return f.ops[i].Time
	}
	return 0
}
