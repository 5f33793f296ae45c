// Package builtin is the built-in target: a cluster of the project's own broker (broker.Cluster) running in
// this process, wired through one faultnet.Net so the nemesis's network faults act on real TCP connections.
// It registers itself with scenarios as "builtin".
//
// Node id N is two faultnet nodes: its broker "node-N" at loopback IP 127.0.0.1N (clients and replica
// fetches) and its controller "ctrl-N" at 127.0.0.2N (Raft and forwarded proposals), so a data-plane
// partition can cut brokers apart while the quorum stays connected. Clients dial from 127.0.0.1 (the faultnet
// pseudo-node "client"), so every connection is attributed exactly. The nemesis only ever names node-N; a
// fault on node-N covers both identities unless a link asks for the data plane alone. Process faults go to
// broker.Cluster (kill, clean stop, restart from disk, power loss); metadata questions (leader, ISR,
// controller) are answered from the freshest metadata image among running nodes.
//
// It owns the mapping of scenario broker settings (Kafka names) onto broker.Config: a setting the broker has
// no field for is an error naming it, never silently ignored. It must never decide to lose, duplicate or
// reorder data itself: faults act only through the cluster's process hooks and the network layer.
package builtin
