// Package faultnet owns the network fault layer of the built-in target: every connection between nodes
// (broker to broker, controller to controller) and from clients to nodes passes through it, so partitions,
// one-way drops, latency, lost responses and pauses act on real TCP connections.
//
// Each node gets its own loopback IP (node-1 = 127.0.0.11, ...). A node's listeners bind that IP and its
// outgoing connections bind their local address to it, so the accepting side knows who calls by the remote IP;
// any other source is the pseudo-node "client". Only the accepted side of a connection is wrapped, and that
// wrapper enforces faults for both directions of the connection.
//
// It must never parse, drop, duplicate or reorder bytes of a stream it lets through: a stalled stream resumes
// intact, and data is discarded only where a real network discards it (a reset connection, a response lost
// together with its connection). It must never import the broker; the cluster wiring hands Listen and Dial to
// the broker's hooks.
package faultnet
