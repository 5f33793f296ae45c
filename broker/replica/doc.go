// Package replica owns the replication decisions of one partition, the way Kafka makes them: the leader's view
// of its followers (log end offsets, last caught-up times), the in-sync replica set with its pending
// AlterPartition change (Kafka's committed versus "maximal" ISR, KIP-497), the high watermark, the acks=all and
// min.insync.replicas checks, the leader-side divergence check of a follower's Fetch (DivergingEpoch, Fetch v12+)
// and the follower-side choice of where to truncate (by leader epoch, never to the high watermark).
//
// It is a pure state machine in the style of etcd-io/raft: callers feed it inputs (an append, a follower fetch,
// a tick, an AlterPartition answer, a metadata change) and act on the decisions it returns (a new high
// watermark, an AlterPartition to send, an offset to truncate to). It must never perform I/O, start goroutines,
// read clocks or draw random numbers: time arrives as a time.Time argument, so every decision is reproducible
// from its inputs and the scenario files in testdata replay exactly. It is not safe for concurrent use; the
// partition that owns a Leader serializes calls to it (see Leader).
package replica
