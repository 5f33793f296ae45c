package checker

import (
	"bytes"
	"math/rand"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/kafkatrial/kafkatrial/history"
)

// Benchmarks on generated histories of a correct 12-partition cluster. The bar (issue 6): every counter and
// stat over 1M operations within 10 s and 2 GB; porcupine over 100k operations within 60 s or an honest
// Unknown. Run:
//
//	go test ./checker -run '^$' -bench . -benchtime 1x -timeout 30m

var (
	benchOnce sync.Once
	bench1M   []history.Op
	bench100k []history.Op
)

func benchHistories() {
	benchOnce.Do(func() {
		bench1M = genHistory(rand.New(rand.NewSource(1)), genConfig{
			partitions: 12, producers: 24, sends: 19500, inflight: 5, consumers: 6, maxPoll: 50,
			failRate: 0.01, infoRate: 0.01,
		})
		bench100k = genHistory(rand.New(rand.NewSource(2)), genConfig{
			partitions: 12, producers: 12, sends: 3900, inflight: 5, consumers: 6, maxPoll: 20,
			failRate: 0.01, infoRate: 0.01,
		})
	})
}

// peakHeap samples the heap while fn runs and returns the highest HeapInuse seen (bytes).
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	fn()
	close(done)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return max(peak.Load(), ms.HeapInuse)
}

func BenchmarkCounters1M(b *testing.B) {
	benchHistories()
	ops := bench1M
	b.ReportAllocs()
	b.ResetTimer()
	var peak uint64
	for range b.N {
		peak = max(peak, peakHeap(func() {
			v, _ := analyze(ops, Options{})
			if firing(v) != nil {
				b.Fatalf("correct history judged anomalous: %v", firing(v))
			}
		}))
	}
	b.ReportMetric(float64(len(ops))*float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(len(ops)), "ops")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

func BenchmarkDecode1M(b *testing.B) {
	benchHistories()
	var buf []byte
	for i := range bench1M {
		buf = history.AppendJSON(buf, &bench1M[i])
		buf = append(buf, '\n')
	}
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for range b.N {
		res, err := history.Read(bytes.NewReader(buf))
		if err != nil || len(res.Ops) != len(bench1M) {
			b.Fatalf("decoded %d ops: %v", len(res.Ops), err)
		}
	}
	b.ReportMetric(float64(len(bench1M))*float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func benchPorcupine(b *testing.B, ops []history.Op, want string) {
	b.ReportAllocs()
	b.ResetTimer()
	var peak uint64
	var v *Verdict
	for range b.N {
		peak = max(peak, peakHeap(func() {
			var f *facts
			v, f = analyze(ops, Options{})
			if err := f.linearizability(v, v.Anomalies[Nonlinearizable], 60*time.Second, ""); err != nil {
				b.Fatal(err)
			}
		}))
	}
	if v.Linearizability.Result != want && v.Linearizability.Result != ResultUnknown {
		b.Fatalf("linearizability %s, want %s", v.Linearizability.Result, want)
	}
	b.ReportMetric(float64(len(ops)), "ops")
	b.ReportMetric(v.Linearizability.Seconds, "porcupine-s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	if v.Linearizability.Result == ResultUnknown {
		b.ReportMetric(1, "unknown")
	}
}

func BenchmarkPorcupine100kOk(b *testing.B) {
	benchHistories()
	benchPorcupine(b, bench100k, ResultOk)
}

func BenchmarkPorcupine100kIllegal(b *testing.B) {
	benchHistories()
	ops := cloneOps(bench100k)
	if !swapAdjacent(rand.New(rand.NewSource(3)), ops) {
		b.Fatal("no place to swap")
	}
	benchPorcupine(b, ops, ResultIllegal)
}

// BenchmarkPorcupine100kInfoHeavy is the hard case: a fifth of the sends end info and there is no final read,
// so offsets no one observed leave holes and every info send must be placed by the search.
func BenchmarkPorcupine100kInfoHeavy(b *testing.B) {
	ops := genHistory(rand.New(rand.NewSource(4)), genConfig{
		partitions: 12, producers: 12, sends: 3900, inflight: 5, consumers: 6, maxPoll: 20,
		failRate: 0.05, infoRate: 0.2,
	})
	noFinal := slices.DeleteFunc(slices.Clone(ops), func(o history.Op) bool { return o.F == history.FinalRead })
	b.Run("no-final-read", func(b *testing.B) { benchPorcupine(b, noFinal, ResultOk) })
	sendsOnly := slices.DeleteFunc(slices.Clone(ops), func(o history.Op) bool { return o.F != history.Send })
	b.Run("sends-only", func(b *testing.B) { benchPorcupine(b, sendsOnly, ResultOk) })
}

func BenchmarkPorcupine100kIllegalVisualized(b *testing.B) {
	benchHistories()
	ops := cloneOps(bench100k)
	if !swapAdjacent(rand.New(rand.NewSource(3)), ops) {
		b.Fatal("no place to swap")
	}
	dir := b.TempDir()
	var v *Verdict
	for range b.N {
		var f *facts
		v, f = analyze(ops, Options{})
		if err := f.linearizability(v, v.Anomalies[Nonlinearizable], 60*time.Second, dir); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(v.Linearizability.Seconds, "porcupine-s")
	if v.Linearizability.Result != ResultIllegal {
		b.Fatalf("result %s", v.Linearizability.Result)
	}
}

// BenchmarkPorcupineModel compares the persistent log state with the obvious one, a copy of the log per
// append, on one partition of the 100k history: the reason model.go keeps a persistent log.
func BenchmarkPorcupineModel(b *testing.B) {
	benchHistories()
	f := buildFacts(bench100k, nil)
	ops := f.partitionOps(0)
	b.Run("persistent", func(b *testing.B) {
		for range b.N {
			if r := porcupine.CheckOperationsTimeout(logModel(f.values), ops, time.Minute); r != porcupine.Ok {
				b.Fatalf("result %s", r)
			}
		}
		b.ReportMetric(float64(len(ops)), "ops")
	})
	b.Run("copy", func(b *testing.B) {
		for range b.N {
			if r := porcupine.CheckOperationsTimeout(copyLogModel(), ops, time.Minute); r != porcupine.Ok {
				b.Fatalf("result %s", r)
			}
		}
		b.ReportMetric(float64(len(ops)), "ops")
	})
}

// copyLogModel is the reference model: the state is the whole log, copied on every append.
func copyLogModel() porcupine.Model {
	return porcupine.Model{
		Init: func() interface{} { return []int32{} },
		Step: func(state, input, _ interface{}) (bool, interface{}) {
			log := state.([]int32)
			op := input.(*logOp)
			holds := func() bool {
				for _, r := range op.records {
					if r.off >= int64(len(log)) || log[r.off] != r.val {
						return false
					}
				}
				return true
			}
			switch op.kind {
			case opSend:
				if op.offset >= 0 && op.offset != int64(len(log)) {
					return false, log
				}
				next := make([]int32, len(log)+1)
				copy(next, log)
				next[len(log)] = op.val
				return true, next
			case opRead:
				return holds(), log
			}
			return int64(len(log)) == op.end && holds(), log
		},
		Equal: func(a, b interface{}) bool { return slices.Equal(a.([]int32), b.([]int32)) },
		Hash: func(s interface{}) uint64 {
			h := uint64(14695981039346656037)
			for _, v := range s.([]int32) {
				h = (h ^ uint64(uint32(v)+1)) * 1099511628211
			}
			return h
		},
	}
}
