// Package broker is the built-in Kafka-protocol cluster: the wire server (one file per API key, named after
// it), partitions and their replication (follower fetch, ISR, high watermark, leader epochs, truncation),
// groups and offsets, and idempotent producer state. Storage lives in broker/storage, the metadata model in
// broker/meta, the controller quorum in broker/controller and the group coordinator in broker/group.
//
// Replication works as Kafka's: the controller elects leaders and records ISR changes; a node becoming leader
// of a partition at a new epoch records the epoch at its log end and starts a replica.Leader (partition.go),
// which decides ISR shrink and expansion (sent as AlterPartition through the quorum, replication.go) and the
// high watermark; followers replicate with Fetch v12 requests over the Kafka protocol, one fetcher per leader
// node (fetcher.go), and truncate by leader epoch when the leader answers DivergingEpoch. The decisions live
// in broker/replica (pure, tested alone); this package carries them out.
//
// It must never import workloads, checker or nemesis: faults reach a node only through its network hooks
// (Config.Listen and Config.Dial) and its Kill, Restart, Pause and LoseUnsynced methods. No code path may
// consult a setting to decide to lose, duplicate or reorder data: that must come out of the protocol.
package broker
