// Package checker owns the judgement of a history: anomaly analyses, the porcupine model of a partition log,
// and the evaluation of a scenario's claims into a verdict.
//
// It imports history (and porcupine) only, never the broker: it must judge a real Kafka cluster the same way.
package checker
