package nemesis

import (
	"context"
	"errors"
	"time"
)

// Cluster is what the nemesis needs from a target (the built-in cluster, containers, or an external cluster
// driven by user commands). Nodes are named "node-<broker id>". Every method acts the way the fault acts in
// life; a target that cannot perform a fault says so in Supports, and the scenario is refused at validation.
type Cluster interface {
	// Nodes lists every node's name, running or not.
	Nodes() []string
	// Supports reports whether the target can perform fault kind k (composites are built from the basics).
	Supports(k Kind) bool

	// Kill hard-kills nodes: memory gone, files keep what was written. Restart brings them back from disk only.
	Kill(ctx context.Context, nodes []string) error
	// Stop stops nodes cleanly (controlled shutdown); Restart starts those of nodes that are not running (a
	// running node is left alone, so Restart is safe to call on every node).
	Stop(ctx context.Context, nodes []string) error
	Restart(ctx context.Context, nodes []string) error
	// PowerLoss kills nodes and cuts every file back to what was fsynced.
	PowerLoss(ctx context.Context, nodes []string) error
	// Pause freezes nodes (SIGSTOP-like: no work, connections stall); Resume thaws them (a node that is not
	// paused is left alone).
	Pause(ctx context.Context, nodes []string) error
	Resume(ctx context.Context, nodes []string) error

	// Partition blocks every link; Client is the pseudo-node of all clients. It returns a function that heals
	// exactly this partition.
	Partition(ctx context.Context, links []Link, mode Mode) (heal func() error, err error)
	// LoseResponses makes responses from nodes to clients vanish after the broker applied the request, and the
	// connection break, until healed.
	LoseResponses(ctx context.Context, nodes []string) (heal func() error, err error)
	// ResetConnections breaks every connection to nodes once.
	ResetConnections(ctx context.Context, nodes []string) error
	// Latency adds delay with jitter on every link touching nodes, until healed.
	Latency(ctx context.Context, nodes []string, mean, jitter time.Duration) (heal func() error, err error)
	// Corrupt makes a share (0 < fraction <= 1) of the produce requests clients send to nodes arrive with one
	// byte flipped anywhere after the API key, until healed.
	Corrupt(ctx context.Context, nodes []string, fraction float64) (heal func() error, err error)
	// HealNetwork removes every network fault.
	HealNetwork(ctx context.Context) error

	// Leader returns the node leading topic/partition ("" when offline); Replicas its assignment and ISR its
	// in-sync replicas, as the cluster's metadata says now.
	Leader(ctx context.Context, topic string, partition int32) (string, error)
	Replicas(ctx context.Context, topic string, partition int32) ([]string, error)
	ISR(ctx context.Context, topic string, partition int32) ([]string, error)
	// Controller returns the active controller's node.
	Controller(ctx context.Context) (string, error)
	// Healthy reports nil when every node runs, every partition of topics is led and its ISR is complete.
	Healthy(ctx context.Context, topics []string) error
}

// Client is the pseudo-node standing for every client in a Link.
const Client = "client"

// Link is one direction of traffic: bytes sent by From toward To.
type Link struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Plane limits the cut: "" cuts all traffic between the two; PlaneData cuts broker traffic (replication and
	// clients) but leaves the controller quorum connected, as when brokers and controllers run apart (a target
	// that cannot tell them apart cuts everything and says so in Supports).
	Plane string `json:"plane,omitempty"`
}

// PlaneData is the broker (data) plane of a node: replication and client traffic, not the controller quorum.
const PlaneData = "data"

// ErrUnsupported is returned for a fault the target cannot perform.
var ErrUnsupported = errors.New("fault not supported by this target")
