// Package broker is the built-in Kafka-protocol cluster: the wire server (one file per API key, named after
// it), partitions and their replication (follower fetch, ISR, high watermark, leader epochs, truncation),
// groups and offsets, and idempotent producer state. Storage lives in broker/storage, the metadata model in
// broker/meta, the controller quorum in broker/controller and the group coordinator in broker/group.
//
// It must never import workloads, checker or nemesis: faults reach a node only through its network hooks
// (Config.Listen and Config.Dial) and its Kill, Restart, Pause and LoseUnsynced methods. No code path may
// consult a setting to decide to lose, duplicate or reorder data: that must come out of the protocol.
package broker
