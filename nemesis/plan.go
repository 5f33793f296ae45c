package nemesis

import (
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"time"
)

// Planned is one fault of a plan: start Kind at At on Target; undo it at Until (0: left to the final heal).
// Draw seeds every random choice made when the fault starts (which node "random" means, a majority split),
// so the same plan resolves the same way against the same cluster state.
type Planned struct {
	At     time.Duration `json:"at"`
	Until  time.Duration `json:"until,omitempty"`
	Kind   Kind          `json:"fault"`
	Target string        `json:"target,omitempty"`
	Shape  Shape         `json:"shape,omitempty"`
	Mode   Mode          `json:"mode,omitempty"`
	// Latency faults.
	Latency time.Duration `json:"latency,omitempty"`
	Jitter  time.Duration `json:"jitter,omitempty"`
	// Corrupt faults: the share of produce requests hit.
	Fraction float64 `json:"fraction,omitempty"`
	Draw     uint64  `json:"draw"`
}

// Defaults of a random schedule.
const (
	DefaultRandomInterval = 4 * time.Second
	DefaultRandomDuration = 2 * time.Second
	DefaultRandomStable   = 2 * time.Second
	DefaultHealTimeout    = 60 * time.Second
	// DefaultCorruptFraction is the share of produce requests a corrupt fault hits when the step does not say.
	DefaultCorruptFraction = 0.05
)

// SubSeed derives a named seed from a run's seed, so each subsystem draws from its own stream and adding
// draws to one never shifts another.
func SubSeed(seed int64, name string) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for i := range b {
		b[i] = byte(uint64(seed) >> (8 * i))
	}
	h.Write(b[:])
	h.Write([]byte(name))
	return h.Sum64()
}

// Plan expands a spec into the faults of a run lasting runFor. It is a pure function of its arguments.
func Plan(spec Spec, seed int64, runFor time.Duration) []Planned {
	rng := rand.New(rand.NewPCG(SubSeed(seed, "nemesis"), 0x6b61666b61747269))
	var out []Planned
	for _, st := range spec.Schedule {
		for at := st.At; at <= runFor; at += st.Repeat {
			p := Planned{At: at, Kind: st.Fault, Target: st.Target, Shape: st.Shape, Mode: st.Mode,
				Latency: st.Latency, Jitter: st.Jitter, Fraction: st.Fraction, Draw: rng.Uint64()}
			if st.Duration > 0 {
				p.Until = at + st.Duration
			}
			if p.Shape == RandomShape {
				p.Shape = Shapes[rng.IntN(len(Shapes))]
			}
			out = append(out, p)
			if st.Repeat <= 0 {
				break
			}
		}
	}
	if r := spec.Random; r != nil && len(r.Faults) > 0 {
		interval, duration, stable := orDefault(r.Interval, DefaultRandomInterval), orDefault(r.Duration, DefaultRandomDuration), orDefault(r.Stable, DefaultRandomStable)
		shapes := r.Shapes
		if len(shapes) == 0 {
			shapes = Shapes
		}
		at := r.Start
		for at+duration <= runFor {
			// Jitter the start within the interval so faults do not line up with workload phases.
			start := at + time.Duration(rng.Int64N(int64(interval)/2+1))
			if start+duration > runFor {
				break
			}
			k := r.Faults[rng.IntN(len(r.Faults))]
			p := Planned{At: start, Until: start + duration, Kind: k, Mode: r.Mode, Draw: rng.Uint64()}
			switch k {
			case Partition:
				p.Shape = shapes[rng.IntN(len(shapes))]
			case Latency:
				p.Latency, p.Jitter = 50*time.Millisecond, 20*time.Millisecond
			case Corrupt:
				p.Fraction = DefaultCorruptFraction
			}
			p.Target = "random"
			if len(r.Targets) > 0 {
				p.Target = r.Targets[rng.IntN(len(r.Targets))]
			}
			out = append(out, p)
			at = start + duration + stable
			if at < start+interval {
				at = start + interval
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
