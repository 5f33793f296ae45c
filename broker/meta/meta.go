package meta

import (
	"maps"
	"slices"
)

// NoLeader is the leader id of an offline partition (as in Kafka's metadata).
const NoLeader int32 = -1

// Broker is one registered broker.
type Broker struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	// Epoch changes each time the broker registers (a restart), so stale heartbeats are told apart.
	Epoch int64 `json:"epoch"`
	// Fenced brokers are alive to no one: they lead nothing and are dropped from every ISR.
	Fenced bool `json:"fenced"`
	// ShuttingDown brokers asked for a controlled shutdown: leadership moves away before they stop.
	ShuttingDown bool `json:"shutting_down"`
}

// Partition is the replicated state of one topic-partition.
type Partition struct {
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"` // the assignment, preferred leader first
	ISR       []int32 `json:"isr"`
	Leader    int32   `json:"leader"` // NoLeader when offline
	// LeaderEpoch increases on every leader change (Kafka: bumped on election, not on ISR change).
	LeaderEpoch int32 `json:"leader_epoch"`
	// PartitionEpoch increases on every change of this record; AlterPartition must name the current one.
	PartitionEpoch int32 `json:"partition_epoch"`
}

// Topic is one topic with its partitions and topic-level configs (Kafka names, e.g. min.insync.replicas).
type Topic struct {
	Name       string            `json:"name"`
	ID         [16]byte          `json:"id"`
	Configs    map[string]string `json:"configs"`
	Partitions []Partition       `json:"partitions"`
}

// Image is the whole metadata state at one point of the log. Images are values: Apply returns a new one and
// never changes its input, so a reader may hold an image without locks.
type Image struct {
	// Offset is the index of the last applied command (the Raft index), for ordering and for clients' caching.
	Offset  int64             `json:"offset"`
	Brokers map[int32]Broker  `json:"brokers"`
	Topics  map[string]*Topic `json:"topics"`
	// ClusterDefaults are broker-level defaults for topic configs the topic does not set.
	ClusterDefaults map[string]string `json:"cluster_defaults"`
	// NextTopicSeq seeds deterministic topic ids.
	NextTopicSeq uint64 `json:"next_topic_seq"`
}

// Empty returns an image with no brokers and no topics.
func Empty() *Image {
	return &Image{Brokers: map[int32]Broker{}, Topics: map[string]*Topic{}, ClusterDefaults: map[string]string{}}
}

// Clone returns a deep copy.
func (im *Image) Clone() *Image {
	c := &Image{Offset: im.Offset, Brokers: maps.Clone(im.Brokers), Topics: make(map[string]*Topic, len(im.Topics)),
		ClusterDefaults: maps.Clone(im.ClusterDefaults), NextTopicSeq: im.NextTopicSeq}
	for n, t := range im.Topics {
		c.Topics[n] = t.Clone()
	}
	return c
}

// Clone returns a deep copy.
func (t *Topic) Clone() *Topic {
	c := &Topic{Name: t.Name, ID: t.ID, Configs: maps.Clone(t.Configs), Partitions: make([]Partition, len(t.Partitions))}
	for i, p := range t.Partitions {
		c.Partitions[i] = p.Clone()
	}
	return c
}

// Clone returns a deep copy.
func (p Partition) Clone() Partition {
	p.Replicas = slices.Clone(p.Replicas)
	p.ISR = slices.Clone(p.ISR)
	return p
}

// Config returns the effective value of a topic config: the topic's own, else the cluster default, else def.
func (im *Image) Config(topic, key, def string) string {
	if t, ok := im.Topics[topic]; ok {
		if v, ok := t.Configs[key]; ok {
			return v
		}
	}
	if v, ok := im.ClusterDefaults[key]; ok {
		return v
	}
	return def
}

// Live reports whether broker id is registered and not fenced.
func (im *Image) Live(id int32) bool {
	b, ok := im.Brokers[id]
	return ok && !b.Fenced
}
