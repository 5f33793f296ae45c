package checker

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/kafkatrial/kafkatrial/history"
)

// MaxVisualizedOps bounds the operations of a partition whose porcupine visualization is written: the page
// embeds every operation and its computation replays every partial linearization.
const MaxVisualizedOps = 20000

// maxOkVisualizations is how many Ok partitions get a sample visualization.
const maxOkVisualizations = 2

// partitionCheck is the porcupine input and result of one topic-partition.
type partitionCheck struct {
	tp      int32
	ops     []porcupine.Operation
	result  porcupine.CheckResult
	info    porcupine.LinearizationInfo
	verbose bool
	seconds float64
	skipped bool // the budget ran out before it started
	// aborted is set by the heap watchdog: from then on every step fails, porcupine unwinds quickly, and its
	// answer is discarded for Unknown.
	aborted atomic.Bool
}

// MaxCheckHeap bounds the Go heap while porcupine runs. Porcupine keeps every (linearized set, state) it has
// seen, so a hard partition can grow without limit before its timeout; past this the check is stopped and the
// partition is Unknown.
var MaxCheckHeap uint64 = 2 << 30

// heapWatch calls over, once, if the live heap exceeds limit: now, and then every interval until stop is
// closed. The first look is synchronous, so a check never starts above the limit.
func heapWatch(limit uint64, interval time.Duration, stop <-chan struct{}, over func()) {
	if heapAbove(limit) {
		over()
		return
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if heapAbove(limit) {
					over()
					return
				}
			}
		}
	}()
}

func heapAbove(limit uint64) bool {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Kind() == metrics.KindUint64 && sample[0].Value.Uint64() > limit
}

// linearizability runs porcupine on every partition, concurrently, within one shared time budget, fills
// v.Linearizability and counts each Illegal partition as one nonlinearizable anomaly. A partition not decided
// within the budget is Unknown, and so is the whole result unless some partition is Illegal. With visDir
// set, Illegal partitions and up to two Ok ones get an HTML visualization in visDir/linearizability/.
func (f *facts) linearizability(v *Verdict, a *Anomaly, budget time.Duration, visDir string) error {
	lin := &v.Linearizability
	if budget < 0 {
		lin.Result = ResultUnknown
		v.Notes = append(v.Notes, "linearizability was not checked (disabled by a negative timeout)")
		return nil
	}
	start := time.Now()
	deadline := start.Add(budget)
	var checks []*partitionCheck
	for _, tp := range f.tpOrder() {
		if ops := f.partitionOps(tp); len(ops) > 0 {
			checks = append(checks, &partitionCheck{tp: tp, ops: ops, verbose: visDir != "" && len(ops) <= MaxVisualizedOps})
		}
	}
	model := logModel(f.values)
	stopWatch := make(chan struct{})
	var heapExceeded atomic.Bool
	heapWatch(MaxCheckHeap, 100*time.Millisecond, stopWatch, func() {
		heapExceeded.Store(true)
		for _, c := range checks {
			c.aborted.Store(true)
		}
	})
	work := make(chan *partitionCheck)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), max(1, len(checks))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				remaining := time.Until(deadline)
				if remaining <= 0 || c.aborted.Load() {
					c.result, c.skipped = porcupine.Unknown, true
					continue
				}
				m := model
				m.Step = func(state, input, output interface{}) (bool, interface{}) {
					if c.aborted.Load() {
						return false, state
					}
					return logStep(state, input, output)
				}
				t0 := time.Now()
				if c.verbose {
					c.result, c.info = porcupine.CheckOperationsVerbose(m, c.ops, remaining)
				} else {
					c.result = porcupine.CheckOperationsTimeout(m, c.ops, remaining)
				}
				if c.aborted.Load() {
					c.result, c.info = porcupine.Unknown, porcupine.LinearizationInfo{}
				}
				c.seconds = time.Since(t0).Seconds()
			}
		}()
	}
	for _, c := range checks {
		work <- c
	}
	close(work)
	wg.Wait()
	close(stopWatch)
	if heapExceeded.Load() {
		v.Notes = append(v.Notes, fmt.Sprintf("linearizability stopped: the heap passed %d MiB; unfinished partitions are Unknown", MaxCheckHeap>>20))
	}
	lin.Seconds = time.Since(start).Seconds()
	lin.PartitionsChecked = len(checks)

	lin.Result = ResultOk
	okShown := 0
	var unknown []string
	for _, c := range checks {
		t := f.tps[c.tp]
		pl := PartitionLinearized{Topic: t.Topic, Partition: t.Partition, Result: string(c.result), Operations: len(c.ops), Seconds: c.seconds}
		switch c.result {
		case porcupine.Illegal:
			lin.Result = ResultIllegal
		case porcupine.Unknown:
			if lin.Result == ResultOk {
				lin.Result = ResultUnknown
			}
			unknown = append(unknown, f.tpName(c.tp))
		}
		wantPage := c.verbose && (c.result == porcupine.Illegal || (c.result == porcupine.Ok && okShown < maxOkVisualizations))
		if wantPage {
			if c.result == porcupine.Ok {
				okShown++
			}
			rel := filepath.Join("linearizability", pageName(t))
			if err := os.MkdirAll(filepath.Join(visDir, "linearizability"), 0o755); err != nil {
				return fmt.Errorf("writing linearizability visualization: %w", err)
			}
			if err := porcupine.VisualizePath(model, c.info, filepath.Join(visDir, rel)); err != nil {
				return fmt.Errorf("writing linearizability visualization of %s: %w", f.tpName(c.tp), err)
			}
			pl.Visualization = filepath.ToSlash(rel)
		}
		if c.result == porcupine.Illegal {
			a.add(f.illegalExample(c, pl.Visualization))
		}
		if c.result == porcupine.Illegal && !c.verbose && visDir != "" {
			v.Notes = append(v.Notes, fmt.Sprintf("no visualization of %s: %d operations exceed %d", f.tpName(c.tp), len(c.ops), MaxVisualizedOps))
		}
		lin.Partitions = append(lin.Partitions, pl)
	}
	if len(unknown) > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("linearizability undecided within %s on %s: the result is Unknown, not a pass",
			budget, strings.Join(unknown, ", ")))
	}
	return nil
}

// partitionOps builds the porcupine operations of one partition (see model.go for their meaning).
func (f *facts) partitionOps(tp int32) []porcupine.Operation {
	readAt := make(map[int32][]int64) // offsets where reads observed each value
	pinnedSet := make(map[int64]struct{})
	for _, o := range f.obs[tp] {
		pinnedSet[o.off] = struct{}{}
		if o.kind != obsAck && !containsOffset(readAt[o.val], o.off) {
			readAt[o.val] = append(readAt[o.val], o.off)
		}
	}
	pinned := make([]int64, 0, len(pinnedSet))
	for off := range pinnedSet {
		pinned = append(pinned, off)
	}
	slices.Sort(pinned)
	clients := make(map[int]int)
	client := func(p int) int {
		c, ok := clients[p]
		if !ok {
			c = len(clients)
			clients[p] = c
		}
		return c
	}
	var ops []porcupine.Operation
	for i := range f.sends {
		s := &f.sends[i]
		if s.tp != tp || s.typ == history.Fail {
			continue
		}
		info := s.typ != history.OK
		seen := readAt[s.val]
		if info && len(seen) == 0 {
			continue
		}
		target := s.offset
		if target < 0 && len(seen) == 1 {
			target = seen[0]
		}
		op := &logOp{
			kind: opSend, tp: tp, val: s.val, offset: s.offset, target: target, pinned: pinned, op: s.doneIdx,
			process: s.process, names: f.values, info: info,
			optional: info && f.liveAttempts(tp, s.val) > 1,
		}
		if s.doneIdx < 0 {
			op.op = s.invokeIdx
		}
		ops = append(ops, porcupine.Operation{ClientId: client(s.process), Input: op, Call: s.call, Return: s.ret})
	}
	for _, p := range f.polls {
		var recs []offVal
		for _, r := range p.records {
			if r.tp == tp {
				recs = append(recs, offVal{r.off, r.val})
			}
		}
		if len(recs) == 0 {
			continue
		}
		sort.Slice(recs, func(a, b int) bool { return recs[a].off < recs[b].off })
		op := &logOp{kind: opRead, tp: tp, records: recs, op: p.op, process: p.process, names: f.values}
		ops = append(ops, porcupine.Operation{ClientId: client(p.process), Input: op, Call: p.call, Return: p.ret})
	}
	for _, r := range f.finals[tp].reads {
		end := int64(0)
		if len(r.records) > 0 {
			end = r.records[len(r.records)-1].off + 1
		}
		op := &logOp{kind: opFinal, tp: tp, records: r.records, end: end, op: r.op, process: r.process, names: f.values}
		ops = append(ops, porcupine.Operation{ClientId: client(r.process), Input: op, Call: r.call, Return: r.ret})
	}
	return ops
}

// liveAttempts counts the send attempts of a value to a partition that did not fail.
func (f *facts) liveAttempts(tp, val int32) int {
	n := 0
	for _, id := range f.byTPV[tpVal{tp, val}] {
		if f.sends[id].typ != history.Fail {
			n++
		}
	}
	return n
}

// illegalExample names the partition and, when porcupine kept its partial linearizations, the operation that
// could not be linearized: among those outside the longest partial linearization, the one that returned first.
func (f *facts) illegalExample(c *partitionCheck, page string) Example {
	t := f.tps[c.tp]
	e := Example{Topic: t.Topic, Partition: t.Partition, Ops: []int64{}}
	detail := fmt.Sprintf("porcupine found no linearization of %s (%d operations) against an append-only log", f.tpName(c.tp), len(c.ops))
	if culprit := culpritOp(c); culprit != nil {
		in := culprit.Input.(*logOp)
		e.Ops = append(e.Ops, in.op)
		e.Processes = []int{in.process}
		e.TimeNs = culprit.Call
		if in.kind == opSend {
			e.Values = []string{f.values[in.val]}
			if in.offset >= 0 {
				e.Offsets = []int64{in.offset}
			}
		} else {
			for _, r := range in.records {
				if len(e.Offsets) == maxDetailItems {
					break
				}
				e.Offsets = append(e.Offsets, r.off)
			}
		}
		detail += fmt.Sprintf("; the first operation that cannot be placed is %s, %s", in.describe(), f.at(in.op))
	}
	if page != "" {
		detail += "; see " + page
	}
	e.Detail = detail
	return e
}

func culpritOp(c *partitionCheck) *porcupine.Operation {
	if !c.verbose {
		return nil
	}
	parts := c.info.PartialLinearizations()
	if len(parts) != 1 {
		return nil
	}
	var longest []int
	for _, l := range parts[0] {
		if len(l) > len(longest) {
			longest = l
		}
	}
	in := make([]bool, len(c.ops))
	for _, id := range longest {
		if id >= 0 && id < len(in) {
			in[id] = true
		}
	}
	var best *porcupine.Operation
	for i := range c.ops {
		if !in[i] && (best == nil || c.ops[i].Return < best.Return) {
			best = &c.ops[i]
		}
	}
	return best
}

// pageName is the visualization file of a partition: <topic>-<partition>.html with the topic made file-safe.
func pageName(t history.TopicPartition) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, t.Topic)
	return fmt.Sprintf("%s-%d.html", safe, t.Partition)
}
