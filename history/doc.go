// Package history owns the operation types every trial records and the JSONL codec for history.jsonl
// (see shared/design/contract.md). It is the shared vocabulary between workloads (which write histories),
// the checker (which judges them) and results (which stores them).
//
// It must never import any other package of this module: a history written by any client against any cluster
// (ours, real Kafka, Redpanda) must be judged the same way.
package history
