package checker

import (
	"math/rand"
	"sort"
	"time"

	"github.com/kafkatrial/kafkatrial/history"
)

// genConfig shapes a generated history of a correct cluster: producers append to partition logs at an instant
// inside each send's interval, consumers poll what is visible at an instant inside each poll, process it and
// commit after processing, and a final read returns every log. Nothing is lost, duplicated or reordered.
type genConfig struct {
	partitions int
	producers  int
	sends      int // per producer
	inflight   int // sends in flight per producer
	consumers  int
	maxPoll    int     // records per partition per poll
	failRate   float64 // sends that fail definitely (never applied)
	infoRate   float64 // sends with an unknown outcome (applied half the time)
}

type genEvent struct {
	t  int64
	k  int
	op history.Op
}

type genApplied struct {
	ta   int64
	val  string
	send int // index in events of the completion, to patch the acked offset
}

const genTopic = "trial"

func genHistory(r *rand.Rand, c genConfig) []history.Op {
	var evs []genEvent
	add := func(t int64, op history.Op) int {
		evs = append(evs, genEvent{t: t, k: len(evs), op: op})
		return len(evs) - 1
	}
	ms := int64(time.Millisecond)
	applied := make([][]genApplied, c.partitions)
	var end int64
	for p := 0; p < c.producers; p++ {
		proc := p + 1
		t := r.Int63n(5 * ms)
		var inflight []int64
		lastApply := int64(0)
		for seq := 0; seq < c.sends; seq++ {
			if len(inflight) >= c.inflight {
				sort.Slice(inflight, func(a, b int) bool { return inflight[a] < inflight[b] })
				t = max(t, inflight[0]+1)
				inflight = inflight[1:]
			}
			part := int32(r.Intn(c.partitions))
			val := history.Value(proc, int64(seq))
			ta := max(t+1+r.Int63n(3*ms), lastApply+1) // per-producer order is kept: no reorder
			lastApply = ta
			tc := ta + 1 + r.Int63n(ms)
			inflight = append(inflight, tc)
			add(t, history.Op{Process: proc, Type: history.Invoke, F: history.Send, Topic: genTopic, Partition: part, Value: val})
			done := history.Op{Process: proc, Type: history.OK, F: history.Send, Topic: genTopic, Partition: part, Value: val}
			x := r.Float64()
			apply := true
			switch {
			case x < c.failRate:
				done.Type, done.Error, apply = history.Fail, "NOT_ENOUGH_REPLICAS", false
			case x < c.failRate+c.infoRate:
				done.Type, done.Error, apply = history.Info, "request timed out", r.Intn(2) == 0
			}
			i := add(tc, done)
			if apply {
				applied[part] = append(applied[part], genApplied{ta: ta, val: val, send: i})
			}
			end = max(end, tc)
			t += r.Int63n(ms)
		}
	}
	for part := range applied {
		sort.Slice(applied[part], func(a, b int) bool { return applied[part][a].ta < applied[part][b].ta })
		for off, a := range applied[part] {
			if evs[a.send].op.Type == history.OK {
				evs[a.send].op.Offset = int64(off)
			}
		}
	}
	for cn := 0; cn < c.consumers; cn++ {
		proc := 1000 + cn
		var owned []int32
		for part := cn; part < c.partitions; part += c.consumers {
			owned = append(owned, int32(part))
		}
		pos := make(map[int32]int)
		t := r.Int63n(5 * ms)
		add(t, history.Op{Process: proc, Type: history.Invoke, F: history.Subscribe, Topics: []string{genTopic}, Group: "g"})
		add(t, history.Op{Process: proc, Type: history.OK, F: history.Subscribe, Topics: []string{genTopic}, Group: "g"})
		for t < end+20*ms {
			t += 1 + r.Int63n(4*ms)
			tr := t + r.Int63n(ms)
			ret := tr + 1 + r.Int63n(ms)
			var recs []history.Record
			for _, part := range owned {
				log := applied[part]
				n := 0
				for pos[part]+n < len(log) && n < c.maxPoll && log[pos[part]+n].ta <= tr {
					a := log[pos[part]+n]
					recs = append(recs, history.Record{Topic: genTopic, Partition: part, Offset: int64(pos[part] + n), Value: a.val})
					n++
				}
				pos[part] += n
			}
			add(t, history.Op{Process: proc, Type: history.Invoke, F: history.Poll})
			add(ret, history.Op{Process: proc, Type: history.OK, F: history.Poll, Records: recs})
			t = ret + 1
			if len(recs) == 0 {
				continue
			}
			add(t, history.Op{Process: proc, Type: history.Invoke, F: history.Process})
			add(t+1, history.Op{Process: proc, Type: history.OK, F: history.Process, Records: recs})
			var offs []history.Position
			for _, part := range owned {
				offs = append(offs, history.Position{Topic: genTopic, Partition: part, Offset: int64(pos[part])})
			}
			add(t+2, history.Op{Process: proc, Type: history.Invoke, F: history.Commit, Group: "g"})
			add(t+3, history.Op{Process: proc, Type: history.OK, F: history.Commit, Offsets: offs, Group: "g"})
			t += 4
		}
		end = max(end, t)
	}
	fin := history.Op{Process: 9999, Type: history.OK, F: history.FinalRead, Records: []history.Record{}}
	for part := range applied {
		fin.Partitions = append(fin.Partitions, history.Position{Topic: genTopic, Partition: int32(part)})
		for off, a := range applied[part] {
			fin.Records = append(fin.Records, history.Record{Topic: genTopic, Partition: int32(part), Offset: int64(off), Value: a.val})
		}
	}
	add(end+ms, history.Op{Process: 9999, Type: history.Invoke, F: history.FinalRead})
	add(end+2*ms, fin)
	sort.Slice(evs, func(a, b int) bool {
		if evs[a].t != evs[b].t {
			return evs[a].t < evs[b].t
		}
		return evs[a].k < evs[b].k
	})
	ops := make([]history.Op, len(evs))
	for i, e := range evs {
		ops[i] = e.op
		ops[i].Index, ops[i].Time = int64(i), e.t
	}
	return ops
}

// finalOp returns the final-read op of a generated history.
func finalOp(ops []history.Op) *history.Op {
	for i := len(ops) - 1; i >= 0; i-- {
		if ops[i].F == history.FinalRead && ops[i].Type == history.OK {
			return &ops[i]
		}
	}
	return nil
}

// ackedOffsets maps each (partition, offset) acknowledged by an ok send to its value.
func ackedOffsets(ops []history.Op) map[history.Position]string {
	m := make(map[history.Position]string)
	for _, o := range ops {
		if o.F == history.Send && o.Type == history.OK {
			m[history.Position{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset}] = o.Value
		}
	}
	return m
}

func cloneOps(ops []history.Op) []history.Op {
	out := make([]history.Op, len(ops))
	copy(out, ops)
	for i := range out {
		if out[i].Records != nil {
			out[i].Records = append([]history.Record(nil), out[i].Records...)
		}
	}
	return out
}
