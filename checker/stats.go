package checker

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/kafkatrial/kafkatrial/history"
)

// maxBuckets bounds the time series; a longer run gets wider buckets.
const maxBuckets = 10000

// stats fills the reported figures. Latency is invoke to completion of ok sends (a send completed without
// its invoke in the history has none). Throughput is ok sends per second over the span from the first send
// invoke to the last ok completion.
func (f *facts) stats(v *Verdict, threshold, bucket time.Duration) {
	s := &v.Stats
	s.Operations = len(f.ops)
	s.DurationS = seconds(f.end - f.start)
	s.Crashes = f.crashes
	s.UnackedLostInBuffer = f.bufferedLost
	s.Polls = f.pollCount
	s.RecordsPolled = f.recordsPolled
	for tp := range f.finals {
		s.RecordsFinal += len(f.finals[tp].records)
	}
	var lat []int64
	firstCall, lastOK := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range f.sends {
		a := &f.sends[i]
		firstCall = min(firstCall, a.call)
		switch {
		case a.doneIdx < 0:
			s.SendsUnfinished++
			s.SendsInfo++
		case a.typ == history.OK:
			s.SendsOK++
			lastOK = max(lastOK, a.done)
			if a.invokeIdx >= 0 {
				lat = append(lat, a.done-a.call)
			}
		case a.typ == history.Fail:
			s.SendsFail++
		default:
			s.SendsInfo++
		}
	}
	slices.Sort(lat)
	s.LatencyMsP50 = millis(quantile(lat, 0.50))
	s.LatencyMsP99 = millis(quantile(lat, 0.99))
	if len(lat) > 0 {
		s.LatencyMsMax = millis(lat[len(lat)-1])
	}
	if s.SendsOK > 0 && lastOK > firstCall {
		s.ThroughputPerS = float64(s.SendsOK) / seconds(lastOK-firstCall)
	}
	v.Unavailability = f.unavailability(threshold)
	for _, iv := range v.Unavailability {
		s.UnavailableS += iv.EndS - iv.StartS
	}
	v.Series = f.series(bucket)
}

// unavailability returns the intervals in which no send succeeded although sends were being attempted.
//
// Precisely: let A be the attempt window, from the first send invoke to the last send completion (the
// history's end for sends never completed), and S the ok completion times. Take each gap (a, b) between
// consecutive points of A's start, S, and A's end. The gap's unavailable part starts at a if some send was in
// flight at a (invoked at or before a, completed after it), else at the first send invoke after a (an idle
// workload is not an unavailable cluster); it ends at b. It counts when it is longer than threshold, and then
// in full (not only the part beyond threshold).
func (f *facts) unavailability(threshold time.Duration) []Interval {
	out := []Interval{}
	if len(f.sends) == 0 {
		return out
	}
	type span struct{ call, done int64 }
	spans := make([]span, len(f.sends))
	var oks []int64
	winStart, winEnd := int64(math.MaxInt64), int64(math.MinInt64)
	for i := range f.sends {
		a := &f.sends[i]
		spans[i] = span{a.call, a.done}
		winStart = min(winStart, a.call)
		winEnd = max(winEnd, a.done)
		if a.typ == history.OK && a.doneIdx >= 0 {
			oks = append(oks, a.done)
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].call < spans[j].call })
	maxDone := make([]int64, len(spans)) // maxDone[i]: latest completion among spans[:i+1]
	for i, sp := range spans {
		maxDone[i] = sp.done
		if i > 0 {
			maxDone[i] = max(maxDone[i], maxDone[i-1])
		}
	}
	slices.Sort(oks)
	points := make([]int64, 0, len(oks)+2)
	points = append(points, winStart)
	points = append(points, oks...)
	points = append(points, winEnd)
	limit := int64(threshold)
	for i := 1; i < len(points); i++ {
		a, b := points[i-1], points[i]
		if b-a <= limit {
			continue
		}
		n := sort.Search(len(spans), func(k int) bool { return spans[k].call > a }) // spans invoked at or before a
		start := a
		if n == 0 || maxDone[n-1] <= a {
			if n == len(spans) {
				continue
			}
			start = spans[n].call
		}
		if b-start > limit {
			out = append(out, Interval{StartS: seconds(start), EndS: seconds(b)})
		}
	}
	return out
}

// series buckets send completions by time.
func (f *facts) series(bucket time.Duration) Series {
	width := int64(bucket)
	if f.end/width+1 > maxBuckets {
		width = f.end/maxBuckets + 1
	}
	n := int(f.end/width) + 1
	s := Series{
		BucketS: seconds(width), SendsOK: make([]int, n), SendsFail: make([]int, n), SendsInfo: make([]int, n),
		LatencyMsP99: make([]float64, n),
	}
	lat := make([][]int64, n)
	for i := range f.sends {
		a := &f.sends[i]
		if a.doneIdx < 0 || a.done < 0 {
			continue
		}
		b := int(a.done / width)
		switch a.typ {
		case history.OK:
			s.SendsOK[b]++
			if a.invokeIdx >= 0 {
				lat[b] = append(lat[b], a.done-a.call)
			}
		case history.Fail:
			s.SendsFail[b]++
		default:
			s.SendsInfo[b]++
		}
	}
	for b := range lat {
		slices.Sort(lat[b])
		s.LatencyMsP99[b] = millis(quantile(lat[b], 0.99))
	}
	return s
}

// quantile returns the nearest-rank q-quantile of sorted xs (0 if empty).
func quantile(xs []int64, q float64) int64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

func seconds(ns int64) float64 { return float64(ns) / 1e9 }
func millis(ns int64) float64  { return float64(ns) / 1e6 }
