// Package checker owns the judgement of a history: the anomaly counters of claims.md (lost-write, duplicate,
// inconsistent-offset, reorder, phantom, poll-skip, nonmonotonic-poll, processed-loss, duplicate-processing),
// the porcupine model of a partition log (nonlinearizable), the reported figures (send outcomes, latency,
// throughput, unavailability, time series) and the evaluation of a scenario's claims into a Verdict, whose JSON
// is verdict.json (contract.md).
//
// Entry point: Check(ops, Options) -> *Verdict; Verdict.WriteFile writes verdict.json; Verdict.Outcome maps it
// to pass / fail / undecided for exit codes.
//
// It imports history (and porcupine) only, never the broker: it must judge a real Kafka cluster the same way.
// A history that breaks contract.md's rules between ops (history.Validate: an index gap or repeat, time going
// backwards, a completion without its invoke or a second one) is refused with an error, never judged: a corrupt
// file must not be charged to the broker. It must never guess in a history's favour: a partition without a final read is reported as not judged, a
// linearizability check out of time is Unknown, and neither is shown as a pass. Everything it keeps is bounded
// (MaxExamples per anomaly, MaxVisualizedOps per visualization, the linearizability time budget).
package checker
