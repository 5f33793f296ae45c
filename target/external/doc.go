// Package external is the "external" target: the same workloads, nemesis and checker against a Kafka cluster
// kafkatrial did not start (a real multi-host Kafka), reached through bootstrap seeds.
//
// It owns two things. Topology: Nodes, Leader, Replicas, ISR, Controller and Healthy are read from the
// cluster itself (Metadata, DescribeCluster, an ApiVersions probe per broker). Faults: each fault kind runs a
// shell command the user configures (Config, a strict YAML file), once per broker, with the broker named by
// its id through placeholders ({id}, {node}, {host}, {port}, {peers}; {mode} in isolate; {latency_ms} and
// {jitter_ms} in latency; {fraction} in corrupt). A kind without a command is refused at validation (Supports false); a partition
// shape the isolate command cannot carry out exactly is refused with nemesis.ErrUnsupported.
//
// The config file is named by the scenario's cluster.external_config (--external-config), else by the environment
// variable KAFKATRIAL_EXTERNAL_CONFIG; with neither, the target runs with no commands (fault-free trials
// only).
//
// It must never reconfigure, stop or otherwise change the cluster beyond the faults it is asked for: Close
// only undoes what it did (heal, resume, restart what it took down). It must never claim a fault it cannot
// carry out exactly: a shape it cannot cut is an error, not an approximation. It never reads broker state
// beyond what any Kafka client may ask.
package external
