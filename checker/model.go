package checker

import (
	"fmt"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The porcupine model of one topic-partition: an append-only log.
//
// Operations (the Input of a porcupine.Operation; Output is unused):
//   - send: appends its value at its target offset: the acked offset of an ok send, or for a send without one
//     (info, or ok under acks=0) the one offset where reads observed its value, if there is exactly one. A
//     send without a target appends wherever it is linearized. An info send returns at "never" (porcupine
//     issue #8): it may take effect any time after its call, including after everything else, which is the
//     same as not at all. Failed sends are not operations.
//   - read (one poll's records of this partition): legal when the log is longer than the highest offset read and
//     holds, at each offset read, the value read.
//   - final read: a read that also pins the log's length: the log must end exactly at the final read's end.
//
// Offsets that no operation observed (no ack names them, no read returns them) may hold records the history
// does not name: Kafka's control records, or the indefinite sends nobody saw. So a send whose target lies past
// the end of the log is legal when every offset in between is unobserved; the gap is filled with anonymous
// records. The same rule makes an offset missing from the middle of a final read unconstrained, so a record
// dropped from the middle of a log without renumbering is caught by the lost-write counter, not by this
// model. Indefinite sends whose value no read observed are left out of the check: they can only ever have
// filled such gaps, which the model already allows, or landed after everything observed.
//
// An info send is optional (a no-op where it cannot apply) only when its value has other send attempts, one of
// which may be the one stored; otherwise a read observed its value, so it must have been written.
//
// State is a persistent log: a node per appended value, pointing at the node before it, with a skew-binary
// jump pointer (Myers' applicative random-access stack) so that the value at any offset is found in O(log n)
// steps, and a rolling hash so porcupine's cache compares states cheaply. Appending shares the whole prefix,
// so a step allocates one node however long the log (BenchmarkPorcupineModel compares it with copying).

type logOpKind uint8

const (
	opSend logOpKind = iota
	opRead
	opFinal
)

// logOp is one operation on a partition log.
type logOp struct {
	kind   logOpKind
	tp     int32
	val    int32
	offset int64 // send: acked offset, or -1 when unknown (info, acks=0)
	target int64 // send: the offset it must land at, or -1 for anywhere
	// optional: an info send that may be a no-op (its value has other send attempts).
	optional bool
	// pinned: the partition's observed offsets, sorted, shared by all its operations.
	pinned  []int64
	records []offVal
	end     int64 // final read: the log's length
	op      int64 // history index, for the visualization and examples
	process int
	names   []string // value names (facts.values), for descriptions
	info    bool     // send of unknown outcome
}

// logNode is one state of the log: the log of depth values ending in val.
type logNode struct {
	parent *logNode
	jump   *logNode
	depth  int64 // the log's length
	val    int32
	hash   uint64
}

// anonymous is the value of a record the history does not name (see the model's doc).
const anonymous int32 = -1

// unobserved reports whether no offset in [from, to) is in pinned (sorted).
func unobserved(pinned []int64, from, to int64) bool {
	i, _ := slices.BinarySearch(pinned, from)
	return i == len(pinned) || pinned[i] >= to
}

var emptyLog = func() *logNode {
	n := &logNode{hash: 14695981039346656037}
	n.jump = n
	return n
}()

func (n *logNode) push(val int32) *logNode {
	c := &logNode{parent: n, depth: n.depth + 1, val: val, hash: (n.hash ^ uint64(uint32(val)+1)) * 1099511628211}
	if j := n.jump; n.depth-j.depth == j.depth-j.jump.depth && j != n {
		c.jump = j.jump
	} else {
		c.jump = n
	}
	return c
}

// at returns the ancestor of n (or n) whose depth is d; d must be in [0, n.depth].
func (n *logNode) at(d int64) *logNode {
	for n.depth > d {
		if n.jump.depth >= d {
			n = n.jump
		} else {
			n = n.parent
		}
	}
	return n
}

// holds reports whether the log ending at n holds every record, and returns false at the first mismatch.
// Records must be sorted by offset.
func (n *logNode) holds(recs []offVal) bool {
	if len(recs) == 0 {
		return true
	}
	if recs[len(recs)-1].off >= n.depth || recs[0].off < 0 {
		return false
	}
	cur := n
	for i := len(recs) - 1; i >= 0; i-- {
		cur = cur.at(recs[i].off + 1)
		if cur.val != recs[i].val {
			return false
		}
	}
	return true
}

func logEqual(a, b *logNode) bool {
	if a == b {
		return true
	}
	if a.depth != b.depth || a.hash != b.hash {
		return false
	}
	for a != b {
		if a.val != b.val {
			return false
		}
		a, b = a.parent, b.parent
	}
	return true
}

func logStep(state, input, _ interface{}) (bool, interface{}) {
	s := state.(*logNode)
	op := input.(*logOp)
	switch op.kind {
	case opSend:
		k := op.target
		switch {
		case k < 0 || k == s.depth:
			return true, s.push(op.val)
		case k > s.depth && unobserved(op.pinned, s.depth, k):
			n := s
			for n.depth < k {
				n = n.push(anonymous)
			}
			return true, n.push(op.val)
		case op.optional:
			return true, s
		}
		return false, s
	case opRead:
		return s.holds(op.records), s
	default:
		return s.depth == op.end && s.holds(op.records), s
	}
}

// logModel is the porcupine model; names are the value names for descriptions. Partition splits a mixed history by topic-partition, so one check may also
// be given several partitions at once (Check runs one porcupine check per partition to get a result and a
// visualization each).
func logModel(names []string) porcupine.Model {
	return porcupine.Model{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			idx := make(map[int32]int)
			var out [][]porcupine.Operation
			for _, o := range h {
				tp := o.Input.(*logOp).tp
				i, ok := idx[tp]
				if !ok {
					i = len(out)
					idx[tp] = i
					out = append(out, nil)
				}
				out[i] = append(out[i], o)
			}
			return out
		},
		Init:  func() interface{} { return emptyLog },
		Step:  logStep,
		Equal: func(a, b interface{}) bool { return logEqual(a.(*logNode), b.(*logNode)) },
		Hash:  func(s interface{}) uint64 { return s.(*logNode).hash ^ uint64(s.(*logNode).depth) },
		DescribeOperation: func(input, _ interface{}) string {
			return input.(*logOp).describe()
		},
		DescribeState: func(s interface{}) string { return describeLog(s.(*logNode), names) },
	}
}

// describeTail bounds how much of the log a visualization prints per state.
const describeTail = 6

func (op *logOp) describe() string {
	switch op.kind {
	case opSend:
		switch {
		case op.info:
			return fmt.Sprintf("send(%s) -> ? [op %d]", op.names[op.val], op.op)
		case op.offset < 0:
			return fmt.Sprintf("send(%s) -> ok [op %d]", op.names[op.val], op.op)
		}
		return fmt.Sprintf("send(%s) -> @%d [op %d]", op.names[op.val], op.offset, op.op)
	case opRead:
		return fmt.Sprintf("poll -> %s [op %d]", describeRecords(op.records, op.names), op.op)
	}
	return fmt.Sprintf("final-read -> end %d %s [op %d]", op.end, describeRecords(op.records, op.names), op.op)
}

func describeRecords(recs []offVal, names []string) string {
	parts := make([]string, 0, 2*describeTail+1)
	for i, r := range recs {
		if len(recs) > 2*describeTail && i == describeTail {
			parts = append(parts, fmt.Sprintf("... %d more ...", len(recs)-2*describeTail))
		}
		if len(recs) > 2*describeTail && i >= describeTail && i < len(recs)-describeTail {
			continue
		}
		parts = append(parts, fmt.Sprintf("%d:%s", r.off, names[r.val]))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func valueName(v int32, names []string) string {
	if v == anonymous {
		return "(unnamed)"
	}
	return names[v]
}

// describeLog prints the log's length and its last few values.
func describeLog(n *logNode, names []string) string {
	var parts []string
	for c := n; c.depth > 0 && len(parts) < describeTail; c = c.parent {
		parts = append(parts, fmt.Sprintf("%d:%s", c.depth-1, valueName(c.val, names)))
	}
	slices.Reverse(parts)
	prefix := ""
	if n.depth > describeTail {
		prefix = "... "
	}
	return fmt.Sprintf("len %d [%s%s]", n.depth, prefix, strings.Join(parts, " "))
}
