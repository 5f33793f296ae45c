// Package group is the built-in broker's classic-protocol group coordinator (Kafka's GroupCoordinator
// semantics: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups,
// ListGroups) and the durable store of committed offsets.
//
// It owns group membership, generations, rebalances, session expiry and the committed offsets of every group
// it coordinates. It takes and returns kmsg requests and responses but never touches the network, the
// partition logs or the metadata quorum: the broker's handlers decode requests, decide whether this node is
// the coordinator, check that topics exist, and call in here.
//
// It must never decide to lose, reorder or duplicate a commit: a commit is acknowledged, and visible to
// OffsetFetch, only after the OffsetStore made it durable, and a power loss can drop only what the store never
// fsynced. The broker gives each coordinator the replicated store of one __consumer_offsets partition
// (broker/offsets_topic_store.go: a commit is durable once the partition's ISR has it); FileStore is a
// single-file store for a coordinator that stands alone (and this package's tests).
package group
