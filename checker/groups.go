package checker

import (
	"fmt"
	"sort"

	"github.com/kafkatrial/kafkatrial/history"
)

// Consumer-side analyses, per consumer group.
//
// Group membership: a process belongs to the group named by the first of its ops that carries a non-empty
// Group (commit, subscribe, assign, poll or process: whichever the workload records). A process that never
// names one (e.g. it only records process ops, or crashed before its first commit) joins the only group of the
// history if exactly one group is named anywhere, and otherwise the anonymous group "". So a history with
// process ops and no group at all is judged as one anonymous group.
//
// processed-loss: for each group and partition, let C be the highest offset of the group's ok commits (a
// commit offset is the next offset to read, so C covers offsets below it). Commits that ended info or fail are
// not counted: their effect is unknown, and a later ok commit covers the same ground. Every offset o with
// L <= o < C that exists and that no member processed (an ok process op's record with that topic, partition
// and offset) is lost to processing. L is the lowest offset any member polled or processed in that partition
// (the group's starting point; with auto.offset.reset=latest it never saw older records), or the lowest
// commit if it consumed nothing. Existing offsets are those of the final read, or, for a partition without
// one, the offsets observed by acks and polls (and a note says so).
//
// duplicate-processing: a (topic, partition, offset) processed by more than one ok process op of the group.

type groupKey struct {
	group int32
	tp    int32
}

type processedKey struct {
	group int32
	tp    int32
	off   int64
}

type processedInfo struct {
	count     int
	ops       []int64 // first few process ops
	processes []int
	val       int32
}

type commitRec struct {
	off     int64
	op      int64
	process int
}

func (f *facts) consumerGroups(loss, dup *Anomaly) (notes []string) {
	groupOf := make(map[int]string)
	named := make(map[string]bool)
	for i := range f.ops {
		o := &f.ops[i]
		if o.Group == "" {
			continue
		}
		named[o.Group] = true
		if _, ok := groupOf[o.Process]; !ok {
			groupOf[o.Process] = o.Group
		}
	}
	fallback := ""
	if len(named) == 1 {
		for g := range named {
			fallback = g
		}
	}
	var groupNames []string
	groupIDs := make(map[string]int32)
	gid := func(process int) int32 {
		g, ok := groupOf[process]
		if !ok {
			g = fallback
		}
		id, ok := groupIDs[g]
		if !ok {
			id = int32(len(groupNames))
			groupIDs[g] = id
			groupNames = append(groupNames, g)
		}
		return id
	}

	processed := make(map[processedKey]*processedInfo)
	commits := make(map[groupKey][]commitRec)
	consumedMin := make(map[groupKey]int64)
	consumed := func(k groupKey, off int64) {
		if m, ok := consumedMin[k]; !ok || off < m {
			consumedMin[k] = off
		}
	}
	next := 0
	for i := range f.ops {
		o := &f.ops[i]
		if o.Type != history.OK {
			continue
		}
		switch o.F {
		case history.Process:
			g := gid(o.Process)
			for _, r := range o.Records {
				if !f.keep(r.Topic) {
					continue
				}
				tp := f.tp(r.TP())
				consumed(groupKey{g, tp}, r.Offset)
				k := processedKey{g, tp, r.Offset}
				pi := processed[k]
				if pi == nil {
					pi = &processedInfo{val: f.value(r.Value)}
					processed[k] = pi
				}
				pi.count++
				if len(pi.ops) < maxDetailItems {
					pi.ops = append(pi.ops, o.Index)
					pi.processes = append(pi.processes, o.Process)
				}
			}
		case history.Commit:
			g := gid(o.Process)
			for _, p := range o.Offsets {
				if !f.keep(p.Topic) {
					continue
				}
				k := groupKey{g, f.tp(p.TP())}
				commits[k] = append(commits[k], commitRec{off: p.Offset, op: o.Index, process: o.Process})
			}
		case history.Poll:
			if next < len(f.polls) && f.polls[next].op == o.Index {
				p := &f.polls[next]
				next++
				g := gid(p.process)
				for _, r := range p.records {
					consumed(groupKey{g, r.tp}, r.off)
				}
			}
		}
	}

	gname := func(g int32) string {
		if groupNames[g] == "" {
			return "(anonymous)"
		}
		return groupNames[g]
	}
	// Judge groups by name, partitions in partition order, so examples are stable.
	order := make([]int32, len(groupNames))
	for i := range order {
		order[i] = int32(i)
	}
	sort.Slice(order, func(a, b int) bool { return groupNames[order[a]] < groupNames[order[b]] })
	tpOrder := f.tpOrder()
	noFinalNoted := make(map[int32]bool)
	for _, g := range order {
		for _, tp := range tpOrder {
			cs := commits[groupKey{g, tp}]
			if len(cs) == 0 {
				continue
			}
			maxC, lo := cs[0].off, cs[0].off
			for _, c := range cs {
				maxC = max(maxC, c.off)
				lo = min(lo, c.off)
			}
			if m, ok := consumedMin[groupKey{g, tp}]; ok {
				lo = m
			}
			offs, vals := f.existingOffsets(tp)
			if !f.finals[tp].present && !noFinalNoted[tp] {
				noFinalNoted[tp] = true
				notes = append(notes, fmt.Sprintf("processed-loss on %s judged against offsets seen by acks and polls: it has no final read", f.tpName(tp)))
			}
			start := sort.Search(len(offs), func(k int) bool { return offs[k] >= lo })
			for k := start; k < len(offs) && offs[k] < maxC; k++ {
				off := offs[k]
				if processed[processedKey{g, tp, off}] != nil {
					continue
				}
				var by commitRec
				for _, c := range cs {
					if c.off > off {
						by = c
						break
					}
				}
				loss.add(Example{
					Topic: f.tps[tp].Topic, Partition: f.tps[tp].Partition, Offsets: []int64{off},
					Values: []string{f.values[vals[k]]}, Processes: []int{by.process}, Group: groupNames[g],
					Ops: []int64{by.op}, TimeNs: f.timeOf(by.op),
					Detail: fmt.Sprintf("group %s committed offset %d of %s (process %d, %s) but no member processed offset %d (value %s)",
						gname(g), by.off, f.tpName(tp), by.process, f.at(by.op), off, f.values[vals[k]]),
				})
			}
		}
	}

	var dups []processedKey
	for k, pi := range processed {
		if pi.count > 1 {
			dups = append(dups, k)
		}
	}
	rank := make([]int, len(f.tps))
	for i, tp := range tpOrder {
		rank[tp] = i
	}
	sort.Slice(dups, func(a, b int) bool {
		x, y := dups[a], dups[b]
		if x.group != y.group {
			return groupNames[x.group] < groupNames[y.group]
		}
		if x.tp != y.tp {
			return rank[x.tp] < rank[y.tp]
		}
		return x.off < y.off
	})
	for _, k := range dups {
		pi := processed[k]
		dup.add(Example{
			Topic: f.tps[k.tp].Topic, Partition: f.tps[k.tp].Partition, Offsets: []int64{k.off},
			Values: []string{f.values[pi.val]}, Processes: pi.processes, Group: groupNames[k.group], Ops: pi.ops,
			TimeNs: f.timeOf(pi.ops[0]),
			Detail: fmt.Sprintf("group %s processed offset %d of %s (value %s) %d times: first by process %d (%s), again by process %d (%s)",
				gname(k.group), k.off, f.tpName(k.tp), f.values[pi.val], pi.count, pi.processes[0], f.at(pi.ops[0]),
				pi.processes[1], f.at(pi.ops[1])),
		})
	}
	return notes
}

// existingOffsets returns the distinct offsets known to exist in a partition with one value each: the final
// read's, or without one, those seen by acks and polls.
func (f *facts) existingOffsets(tp int32) ([]int64, []int32) {
	var recs []offVal
	if fr := &f.finals[tp]; fr.present {
		recs = fr.records
	} else {
		recs = make([]offVal, 0, len(f.obs[tp]))
		for _, o := range f.obs[tp] {
			recs = append(recs, offVal{o.off, o.val})
		}
		sort.Slice(recs, func(a, b int) bool { return recs[a].off < recs[b].off })
	}
	offs := make([]int64, 0, len(recs))
	vals := make([]int32, 0, len(recs))
	for i, r := range recs {
		if i == 0 || r.off != recs[i-1].off {
			offs = append(offs, r.off)
			vals = append(vals, r.val)
		}
	}
	return offs, vals
}
