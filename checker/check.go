package checker

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/kafkatrial/kafkatrial/history"
)

// Defaults of Options.
const (
	DefaultLinearizabilityTimeout = 60 * time.Second
	DefaultUnavailableThreshold   = time.Second
	DefaultBucket                 = time.Second
)

// Options configure one check.
type Options struct {
	// Scenario and Seed are copied into the verdict.
	Scenario string
	Seed     int64
	// Expect maps anomaly names to none, some or any; each entry becomes a claim. Empty: anomalies only.
	Expect map[string]string
	// LinearizabilityTimeout is the time budget of the whole porcupine check, shared by all partitions
	// (0: DefaultLinearizabilityTimeout; negative: not checked, result Unknown).
	LinearizabilityTimeout time.Duration
	// VisualizeDir is the run directory: porcupine pages go to VisualizeDir/linearizability/. Empty: none.
	VisualizeDir string
	// Topics restricts the judgement to these topics (empty: all).
	Topics []string
	// UnavailableThreshold is the shortest gap without a successful send that counts as unavailability
	// (0: DefaultUnavailableThreshold).
	UnavailableThreshold time.Duration
	// Bucket is the width of the time series buckets (0: DefaultBucket).
	Bucket time.Duration
}

// Check judges a history: every anomaly of claims.md with examples, the reported figures, porcupine's
// linearizability verdict, and the scenario's claims. An error means the inputs were unusable (an unknown
// anomaly or expectation in Expect, or a history that breaks contract.md's rules between ops: see
// history.Validate) or a visualization could not be written; anomalies are never errors. A bad history is
// refused rather than judged, so a corrupt file is never charged to the broker as an anomaly.
func Check(ops []history.Op, opts Options) (*Verdict, error) {
	if err := ValidateExpect(opts.Expect); err != nil {
		return nil, err
	}
	if err := history.Validate(ops); err != nil {
		return nil, fmt.Errorf("not judged: the history breaks the contract: %w", err)
	}
	if opts.LinearizabilityTimeout == 0 {
		opts.LinearizabilityTimeout = DefaultLinearizabilityTimeout
	}
	v, f := analyze(ops, opts)
	if err := f.linearizability(v, v.Anomalies[Nonlinearizable], opts.LinearizabilityTimeout, opts.VisualizeDir); err != nil {
		return nil, err
	}
	judgeClaims(v, opts.Expect)
	return v, nil
}

// analyze runs everything but porcupine and the claims: the counters and the stats.
func analyze(ops []history.Op, opts Options) (*Verdict, *facts) {
	if opts.UnavailableThreshold <= 0 {
		opts.UnavailableThreshold = DefaultUnavailableThreshold
	}
	if opts.Bucket <= 0 {
		opts.Bucket = DefaultBucket
	}
	v := newVerdict(opts)
	f := buildFacts(ops, opts.Topics)
	an := v.Anomalies
	f.lostWrites(an[LostWrite])
	f.duplicates(an[Duplicate])
	f.inconsistentOffsets(an[InconsistentOffset])
	f.reorders(an[Reorder])
	f.phantoms(an[Phantom])
	f.pollOrder(an[PollSkip], an[NonmonotonicPoll])
	v.Notes = append(v.Notes, f.consumerGroups(an[ProcessedLoss], an[DuplicateProcessing])...)
	f.stats(v, opts.UnavailableThreshold, opts.Bucket)
	if missing := f.noFinalRead(); len(missing) > 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("no final read of %s: lost-write, reorder and poll-skip are not judged there",
			strings.Join(missing, ", ")))
	}
	return v, f
}

// ValidateExpect checks that every key of expect is an anomaly name and every value none, some or any.
func ValidateExpect(expect map[string]string) error {
	known := make(map[string]bool, len(AnomalyNames))
	for _, n := range AnomalyNames {
		known[n] = true
	}
	names := make([]string, 0, len(expect))
	for n := range expect {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if !known[n] {
			return fmt.Errorf("expect: unknown anomaly %q (want one of %s)", n, strings.Join(AnomalyNames, ", "))
		}
		switch expect[n] {
		case ExpectNone, ExpectSome, ExpectAny:
		default:
			return fmt.Errorf("expect: %s: %q is not none, some or any", n, expect[n])
		}
	}
	return nil
}

// judgeClaims turns the expectations into claims, in AnomalyNames order, and sets Valid.
//
// A zero count is only evidence when the anomaly was fully judged: when linearizability came out Unknown (for
// nonlinearizable) or some partition could not be judged (no final read, for lost-write, reorder and
// poll-skip), a zero count gives status unknown, with held false, for none and some alike. A nonzero count is
// decisive either way.
//
// Valid is contract.md's "no guarantee violated": false exactly when some claim is violated. An unknown claim
// (guarantee or demonstration alike) leaves Valid true, since nothing was violated, but it is never a pass:
// Outcome says Undecided, the claim says unknown with its reason, and the exit code is 3.
func judgeClaims(v *Verdict, expect map[string]string) {
	v.Valid = true
	for _, name := range AnomalyNames {
		exp, ok := expect[name]
		if !ok {
			continue
		}
		a := v.Anomalies[name]
		c := Claim{Anomaly: name, Expect: exp, Observed: a.Count}
		incomplete := ""
		if name == Nonlinearizable && v.Linearizability.Result == ResultUnknown {
			incomplete = "the linearizability check did not finish (Unknown)"
		} else if len(a.Unjudged) > 0 {
			incomplete = "not judged on " + strings.Join(a.Unjudged, ", ") + " (no final read)"
		}
		switch {
		case exp == ExpectAny:
			c.Status = StatusReported
		case a.Count > 0 && exp == ExpectNone:
			c.Status = StatusViolated
		case a.Count > 0:
			c.Status, c.Held = StatusReproduced, true
		case incomplete != "":
			c.Status, c.Reason = StatusUnknown, incomplete
		case exp == ExpectNone:
			c.Status, c.Held = StatusHeld, true
		default:
			c.Status = StatusNotReproduced
		}
		if c.Status == StatusViolated {
			v.Valid = false
		}
		v.Claims = append(v.Claims, c)
	}
}
