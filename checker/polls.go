package checker

import (
	"fmt"
	"sort"

	"github.com/kafkatrial/kafkatrial/history"
)

// pollOrder judges each consumer's successive reads of each partition. Per process and partition it tracks
// the last offset read; the tracking restarts whenever the process records an assign or subscribe op (a
// rebalance or seek gives it a new position) and ends at its crash. Between those:
//
//   - a record at an offset at or below the last one read is a nonmonotonic-poll (the consumer went back);
//   - a record past last+1 is a poll-skip if the partition's final read holds any offset strictly between the
//     two. Offsets absent from the final read (truncated away, or never written) are not skipped. Partitions
//     without a final read are not judged for skips and are listed in Unjudged.
//
// Records within one poll are judged in the order the poll returned them.
func (f *facts) pollOrder(skip, back *Anomaly) {
	type last struct {
		off int64
		op  int64
	}
	existing := make([][]int64, len(f.tps)) // sorted offsets of the final read, built on first use
	unjudged := make([]bool, len(f.tps))
	state := make(map[int]map[int32]last)
	next := 0
	for i := range f.ops {
		o := &f.ops[i]
		switch o.F {
		case history.Assign, history.Subscribe, history.Crash:
			delete(state, o.Process)
			continue
		case history.Poll:
		default:
			continue
		}
		if o.Type != history.OK || next >= len(f.polls) || f.polls[next].op != o.Index {
			continue
		}
		p := &f.polls[next]
		next++
		st := state[p.process]
		if st == nil {
			st = make(map[int32]last)
			state[p.process] = st
		}
		for _, r := range p.records {
			prev, ok := st[r.tp]
			st[r.tp] = last{r.off, p.op}
			if !ok || r.off == prev.off+1 {
				continue
			}
			tpName := f.tpName(r.tp)
			if r.off <= prev.off {
				back.add(Example{
					Topic: f.tps[r.tp].Topic, Partition: f.tps[r.tp].Partition, Offsets: []int64{prev.off, r.off},
					Values: []string{f.values[r.val]}, Processes: []int{p.process}, Ops: []int64{prev.op, p.op},
					TimeNs: p.ret,
					Detail: fmt.Sprintf("process %d read offset %d of %s (%s) after offset %d (%s), with no assign, subscribe or crash in between",
						p.process, r.off, tpName, f.at(p.op), prev.off, f.at(prev.op)),
				})
				continue
			}
			fr := &f.finals[r.tp]
			if !fr.present {
				unjudged[r.tp] = true
				continue
			}
			if existing[r.tp] == nil {
				existing[r.tp] = uniqueOffsets(fr.records)
			}
			offs := existing[r.tp]
			lo := sort.Search(len(offs), func(k int) bool { return offs[k] > prev.off })
			hi := sort.Search(len(offs), func(k int) bool { return offs[k] >= r.off })
			if hi <= lo {
				continue
			}
			skipped := offs[lo:hi]
			shown := skipped
			if len(shown) > maxDetailItems {
				shown = shown[:maxDetailItems]
			}
			skip.add(Example{
				Topic: f.tps[r.tp].Topic, Partition: f.tps[r.tp].Partition,
				Offsets: append([]int64{prev.off, r.off}, shown...), Processes: []int{p.process},
				Ops: []int64{prev.op, p.op, fr.op}, TimeNs: p.ret,
				Detail: fmt.Sprintf("process %d read offset %d of %s (%s) right after offset %d (%s), skipping %d offsets that exist in the final read (first: %d)",
					p.process, r.off, tpName, f.at(p.op), prev.off, f.at(prev.op), len(skipped), skipped[0]),
			})
		}
	}
	for _, tp := range f.tpOrder() {
		if unjudged[tp] {
			skip.Unjudged = append(skip.Unjudged, f.tpName(tp))
		}
	}
}

// uniqueOffsets returns the distinct offsets of records sorted by offset.
func uniqueOffsets(recs []offVal) []int64 {
	out := make([]int64, 0, len(recs))
	for i, r := range recs {
		if i == 0 || r.off != recs[i-1].off {
			out = append(out, r.off)
		}
	}
	return out
}
