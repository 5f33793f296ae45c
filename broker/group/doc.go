// Package group is the built-in broker's classic-protocol group coordinator (Kafka's GroupCoordinator
// semantics: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, DescribeGroups,
// ListGroups) and the durable store of committed offsets.
//
// It owns group membership, generations, rebalances, session expiry and the committed offsets of every group
// it coordinates. It takes and returns kmsg requests and responses but never touches the network, the
// partition logs or the metadata quorum: the broker's handlers decode requests, decide whether this node is
// the coordinator, check that topics exist, and call in here.
//
// It must never decide to lose, reorder or duplicate a commit: a commit is acknowledged only after the
// OffsetStore accepted it, and a power loss can drop only what the store never fsynced (FileStore with
// syncEveryCommit=false, like Kafka's __consumer_offsets under a page-cache flush policy).
package group
