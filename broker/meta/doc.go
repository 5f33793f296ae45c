// Package meta owns the cluster metadata model of the built-in broker: brokers, topics, partition assignments,
// leaders, leader epochs and ISRs, and the commands that change them. The controller quorum replicates these
// commands in its Raft log and applies them with Apply, a pure, deterministic function, so every node's image is
// the same after the same commands and the election rules are tested without a network.
//
// The rules follow Kafka's KRaft controller: clean elections pick the first eligible ISR member in replica
// order; unclean ones (only when unclean.leader.election.enable is true) the first eligible replica, with
// ISR=[it]; a fenced broker leaves every ISR except as the last member; every leader change bumps LeaderEpoch
// and every change PartitionEpoch. Deliberate simplifications:
//   - a registering broker starts unfenced (Kafka waits until it has caught up with the metadata log);
//   - re-registration of a known broker first fences its old incarnation (the role of KIP-903's broker
//     epochs in the ISR): a restarted broker must rejoin ISRs through AlterPartition;
//   - no eligible leader replicas (KIP-966) and no broker epoch in AlterPartition (the leader epoch fences).
//
// It must never perform I/O, read clocks or draw random numbers: determinism is what makes the replicated
// metadata agree.
package meta
