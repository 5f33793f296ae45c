package checker

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kafkatrial/kafkatrial/history"
)

// The log-side counters: each reads the indexed facts and adds occurrences to one Anomaly. Iteration follows
// partition order and history order so the kept examples are the same on every run.

// lostWrites counts (partition, value) pairs that were acknowledged ok by a send, or read by a consumer poll,
// and are absent from the partition's final read. Partitions without a final read are not judged and are
// listed in Unjudged: absence of evidence is not loss.
func (f *facts) lostWrites(a *Anomaly) {
	seen := make(map[tpVal]bool)
	candidates := make([]bool, len(f.tps))
	for i := range f.sends {
		s := &f.sends[i]
		if s.typ != history.OK {
			continue
		}
		candidates[s.tp] = true
		fr := &f.finals[s.tp]
		key := tpVal{s.tp, s.val}
		if !fr.present || seen[key] {
			continue
		}
		seen[key] = true
		if _, ok := fr.byValue[s.val]; ok {
			continue
		}
		e := Example{
			Topic: f.tps[s.tp].Topic, Partition: f.tps[s.tp].Partition, Values: []string{f.values[s.val]},
			Processes: []int{s.process}, Ops: []int64{s.doneIdx, fr.op}, TimeNs: s.done,
		}
		where := "without an offset"
		if s.offset >= 0 {
			e.Offsets = []int64{s.offset}
			where = fmt.Sprintf("at offset %d", s.offset)
		}
		e.Detail = fmt.Sprintf("value %s sent by process %d was acknowledged %s (%s) and is absent from the final read of %s (%s)",
			f.values[s.val], s.process, where, f.at(s.doneIdx), f.tpName(s.tp), f.at(fr.op))
		a.add(e)
	}
	for _, p := range f.polls {
		for _, r := range p.records {
			candidates[r.tp] = true
			fr := &f.finals[r.tp]
			key := tpVal{r.tp, r.val}
			if !fr.present || seen[key] {
				continue
			}
			seen[key] = true
			if _, ok := fr.byValue[r.val]; ok {
				continue
			}
			a.add(Example{
				Topic: f.tps[r.tp].Topic, Partition: f.tps[r.tp].Partition, Offsets: []int64{r.off},
				Values: []string{f.values[r.val]}, Processes: []int{p.process}, Ops: []int64{p.op, fr.op}, TimeNs: p.ret,
				Detail: fmt.Sprintf("value %s was read at offset %d by process %d (%s) and is absent from the final read of %s (%s)",
					f.values[r.val], r.off, p.process, f.at(p.op), f.tpName(r.tp), f.at(fr.op)),
			})
		}
	}
	for _, tp := range f.tpOrder() {
		if candidates[tp] && !f.finals[tp].present {
			a.Unjudged = append(a.Unjudged, f.tpName(tp))
		}
	}
}

// duplicates counts values observed at more than one offset of one partition, from acks, polls and the final
// read together. Sorts each partition's observations by value.
func (f *facts) duplicates(a *Anomaly) {
	for _, tp := range f.tpOrder() {
		obs := f.obs[tp]
		sort.Slice(obs, func(i, j int) bool {
			x, y := &obs[i], &obs[j]
			if x.val != y.val {
				return x.val < y.val
			}
			if x.off != y.off {
				return x.off < y.off
			}
			if x.kind != y.kind {
				return x.kind < y.kind
			}
			return x.op < y.op
		})
		for i := 0; i < len(obs); {
			j := i + 1
			distinct := 1
			for ; j < len(obs) && obs[j].val == obs[i].val; j++ {
				if obs[j].off != obs[j-1].off {
					distinct++
				}
			}
			if distinct > 1 {
				a.add(f.groupExample(tp, obs[i:j], true))
			}
			i = j
		}
	}
}

// inconsistentOffsets counts offsets of one partition at which two different values were observed.
func (f *facts) inconsistentOffsets(a *Anomaly) {
	for _, tp := range f.tpOrder() {
		obs := f.obs[tp]
		sort.Slice(obs, func(i, j int) bool {
			x, y := &obs[i], &obs[j]
			if x.off != y.off {
				return x.off < y.off
			}
			if x.val != y.val {
				return x.val < y.val
			}
			if x.kind != y.kind {
				return x.kind < y.kind
			}
			return x.op < y.op
		})
		for i := 0; i < len(obs); {
			j := i + 1
			distinct := 1
			for ; j < len(obs) && obs[j].off == obs[i].off; j++ {
				if obs[j].val != obs[j-1].val {
					distinct++
				}
			}
			if distinct > 1 {
				a.add(f.groupExample(tp, obs[i:j], false))
			}
			i = j
		}
	}
}

// maxDetailItems bounds how many observations one example's detail lists.
const maxDetailItems = 8

// groupExample describes a run of observations sharing a value (byValue) or an offset: one entry per distinct
// (offset, value), naming its first source.
func (f *facts) groupExample(tp int32, obs []observation, byValue bool) Example {
	e := Example{Topic: f.tps[tp].Topic, Partition: f.tps[tp].Partition, TimeNs: f.timeOf(obs[0].op)}
	var parts []string
	for k := range obs {
		o := &obs[k]
		if k > 0 && o.off == obs[k-1].off && o.val == obs[k-1].val {
			continue
		}
		if byValue || k == 0 {
			e.Offsets = append(e.Offsets, o.off)
		}
		if !byValue || k == 0 {
			e.Values = append(e.Values, f.values[o.val])
		}
		e.Ops = append(e.Ops, o.op)
		if len(parts) < maxDetailItems {
			parts = append(parts, fmt.Sprintf("%s at offset %d by %s of process %d, %s",
				f.values[o.val], o.off, kindName(o.kind), o.process, f.at(o.op)))
		}
	}
	if byValue {
		e.Detail = fmt.Sprintf("value %s is stored at %d offsets of %s: %s", f.values[obs[0].val], len(e.Offsets),
			f.tpName(tp), strings.Join(parts, "; "))
	} else {
		e.Detail = fmt.Sprintf("offset %d of %s holds %d different values: %s", obs[0].off, f.tpName(tp),
			len(e.Values), strings.Join(parts, "; "))
	}
	return e
}

func kindName(k uint8) string {
	switch k {
	case obsAck:
		return "the ack"
	case obsPoll:
		return "a poll"
	}
	return "the final read"
}

// reorders counts, per partition's final read, values stored after a value of the same producer with a higher
// sequence number: the producer sent them in the opposite order. Only the first copy of a value counts (a
// second copy is a duplicate, counted there). Values not made by history.Value are ignored.
func (f *facts) reorders(a *Anomaly) {
	type high struct {
		seq int64
		val int32
		off int64
	}
	for _, tp := range f.tpOrder() {
		fr := &f.finals[tp]
		if !fr.present {
			if len(f.obs[tp]) > 0 {
				a.Unjudged = append(a.Unjudged, f.tpName(tp))
			}
			continue
		}
		first := make(map[int32]bool, len(fr.records))
		highest := make(map[int]*high)
		for _, r := range fr.records {
			if first[r.val] {
				continue
			}
			first[r.val] = true
			proc, seq, ok := history.ParseValue(f.values[r.val])
			if !ok {
				continue
			}
			h := highest[proc]
			if h == nil {
				highest[proc] = &high{seq, r.val, r.off}
				continue
			}
			if seq > h.seq {
				*h = high{seq, r.val, r.off}
				continue
			}
			a.add(Example{
				Topic: f.tps[tp].Topic, Partition: f.tps[tp].Partition, Offsets: []int64{h.off, r.off},
				Values: []string{f.values[h.val], f.values[r.val]}, Processes: []int{proc}, Ops: []int64{fr.op},
				TimeNs: f.timeOf(fr.op),
				Detail: fmt.Sprintf("producer %d's value %s (seq %d) is stored at offset %d, after its later value %s at offset %d, in the final read of %s (%s)",
					proc, f.values[r.val], seq, r.off, f.values[h.val], h.off, f.tpName(tp), f.at(fr.op)),
			})
		}
	}
}

// phantoms counts (partition, value) pairs read by a poll or the final read that no send to that partition
// carried, or whose every send failed definitely. A value whose send was indefinite (info) or never completed
// may have been written and is not a phantom.
func (f *facts) phantoms(a *Anomaly) {
	for _, tp := range f.tpOrder() {
		seen := make(map[int32]bool)
		// Observations are sorted by offset after inconsistentOffsets; walk them in that order.
		for _, o := range f.obs[tp] {
			if o.kind == obsAck || seen[o.val] {
				continue
			}
			seen[o.val] = true
			attempts := f.byTPV[tpVal{tp, o.val}]
			e := Example{
				Topic: f.tps[tp].Topic, Partition: f.tps[tp].Partition, Offsets: []int64{o.off},
				Values: []string{f.values[o.val]}, Processes: []int{int(o.process)}, Ops: []int64{o.op},
				TimeNs: f.timeOf(o.op),
			}
			if len(attempts) == 0 {
				e.Detail = fmt.Sprintf("value %s was read at offset %d of %s by %s of process %d (%s), and no one sent it there",
					f.values[o.val], o.off, f.tpName(tp), kindName(o.kind), o.process, f.at(o.op))
				a.add(e)
				continue
			}
			failed := true
			for _, id := range attempts {
				if f.sends[id].typ != history.Fail {
					failed = false
					break
				}
			}
			if !failed {
				continue
			}
			for _, id := range attempts {
				e.Ops = append(e.Ops, f.sends[id].doneIdx)
			}
			e.Detail = fmt.Sprintf("value %s was read at offset %d of %s by %s of process %d (%s), but its send failed definitely (%s)",
				f.values[o.val], o.off, f.tpName(tp), kindName(o.kind), o.process, f.at(o.op), f.at(f.sends[attempts[0]].doneIdx))
			a.add(e)
		}
	}
}
