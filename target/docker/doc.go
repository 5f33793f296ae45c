// Package docker is the container target: it runs the cluster under trial as Docker containers, one node per
// container, on a user-defined network made for the run, through testcontainers-go, and carries out the
// nemesis's faults with the Docker engine. It registers itself with scenarios as "docker".
//
// # Nodes and addresses
//
// Node id N runs in a container with hostname and network alias node-N and advertises node-N:9092, which
// resolves inside the network (replication and the controller quorum use it). Each node's 9092 is published
// on a loopback port of this host chosen at Start and fixed for the cluster's life (Docker would pick a new
// ephemeral port at every restart). Bootstrap returns the node-N:9092 names and Dial maps them to
// 127.0.0.1:<port>; the engine's Host() is never used, since on some machines it names an address that
// refuses connections.
//
// # Images (cluster.image)
//
//   - "" (default): kafkatrial's own broker. BuildImage compiles ./cmd/kafkatrial of this module with
//     CGO_ENABLED=0 into an image FROM scratch (plus an empty /tmp) tagged kafkatrial-broker:<hash of the
//     Dockerfile and binary>, kept and reused while the binary is unchanged. Each container runs `kafkatrial
//     broker node --id N --listen 0.0.0.0:9092 --advertise node-N:9092 --controller node-N:9093 --voters
//     1@node-1:9093,... --data /data` (the node requires its controller address to be its voter address).
//     Ready line: "bootstrap: ". The scenario's timing profile and cluster.broker settings follow as --timing
//     and --set key=value (Kafka names), checked with the built-in target's own mapping before any container
//     starts: a setting the broker does not honour is refused, naming it, rather than run ignored.
//   - apache/kafka..., or "kafka=<image>": Apache Kafka in KRaft combined mode (process.roles=broker,
//     controller), configured through the image's KAFKA_* variables: KAFKA_NODE_ID,
//     KAFKA_CONTROLLER_QUORUM_VOTERS, KAFKA_LISTENERS (PLAINTEXT :9092, CONTROLLER :9093),
//     KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://node-N:9092, CLUSTER_ID (drawn from the seed), internal topics'
//     replication at min(nodes, 3), the trial timing profile's shorter failure detection unless
//     cluster.timing is "kafka", and every broker setting as KAFKA_<NAME> ('.'→'_', '_'→'__', '-'→'___').
//     Ready line: "Kafka Server started". The controller is the KRaft quorum leader (DescribeQuorum).
//   - redpandadata/redpanda..., or "redpanda=<image>": `redpanda start` with --node-id, --kafka-addr,
//     --advertise-kafka-addr node-N:9092, --rpc-addr/--advertise-rpc-addr node-N:33145, --seeds, one core and
//     1G per node, and not dev-container mode (it enables write caching, which changes the durability under
//     trial). The few broker settings with a Redpanda equivalent go through --set redpanda.<property>;
//     min.insync.replicas, log.flush.* and unclean.leader.election.enable=true are refused (Raft has no
//     equivalent). Ready line: "Successfully started Redpanda!".
//   - any other reference, or "kafkatrial=<image>": a prebuilt kafkatrial broker image.
//
// The Kafka and Redpanda images were NOT run on the machine this target was written on (it cannot pull
// images): their container requests are unit-tested, their behaviour is not.
//
// # Faults
//
// Kill is docker kill (SIGKILL); Stop is docker stop (SIGTERM, then SIGKILL after the node's stop timeout);
// Restart is docker start of a stopped container followed by a wait for the ready line (a running node is
// left alone); Pause and Resume are docker pause and unpause (the cgroup freezer). A partition that isolates
// nodes completely (every link to and from them, other nodes and clients alike) is docker network
// disconnect, healed by reconnecting under the same alias; every other shape (one-way, a leader cut from its
// followers only, a minority still reachable by clients), lost responses, latency and connection resets are
// refused with nemesis.ErrUnsupported naming the fault. (So bundled scenarios that cut a leader from its
// followers or its clients only, and the unclean-election and retry-storm rows, cannot run here as written;
// freezing the followers with pause, briefer than the broker session timeout, is the docker way to make them
// lag while they stay in the ISR.) Power loss is the node's own
// lose-unsynced hook: kafkatrial's node reads SIGUSR1 as "cut every file back to what was fsynced, then
// exit"; Kafka and Redpanda have no such hook, and power loss is unsupported for them.
//
// Leader, Replicas, ISR, Controller and Healthy ask the nodes over the Kafka protocol (Metadata,
// DescribeCluster, DescribeQuorum) through the mapped ports, skipping nodes the target left down, paused or
// disconnected. Collect copies each container's log to nodes/node-N/broker.log; replica dumps are not
// available from containers.
//
// # Lifecycle
//
// TESTCONTAINERS_RYUK_DISABLED=true is set when unset (the reaper container cannot run with every engine);
// instead the target removes its containers and network itself: in Close (which the runner calls at the end
// and on Ctrl-C), and in Start when it fails halfway. Every engine call, start and wait is bounded, and
// errors name the node, the container and the step, with the end of the node's log when it failed to start.
// If the process running the target is killed outright, its containers and network stay behind; they carry
// the labels org.kafkatrial.node and org.kafkatrial.network (docker ps -a --filter label=org.kafkatrial.node).
//
// The package must never decide to lose, duplicate or reorder data itself: faults act only through the
// engine's process and network controls (and the node's own power-loss hook), and it never edits a node's
// files.
package docker
