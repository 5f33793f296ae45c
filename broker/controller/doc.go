// Package controller runs the metadata quorum of the built-in broker, KRaft-style in combined mode: every
// node is a voter of a hashicorp/raft group whose log holds meta.Commands; each voter's FSM applies them with
// meta.Apply and publishes the resulting *meta.Image to its node. The active controller (the raft leader)
// also tracks broker heartbeats and fences brokers whose session lapses.
//
// It owns the raft log, term/vote and snapshot files under Config.DataDir (fsynced before raft is told they
// are written, so Kill then Start recovers everything acknowledged) and all controller traffic, which goes
// through Config.Listen/Config.Dial so injected network faults hit the quorum.
//
// It must never decide metadata outside meta.Apply (the election rules live there, pure and tested), never
// retry a command whose outcome is unknown (it reports that instead), and never listen beyond the configured
// voter address.
package controller
