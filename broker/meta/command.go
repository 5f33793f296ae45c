package meta

// Command is one entry of the metadata log. Exactly one field is set; Apply rejects anything else with
// INVALID_REQUEST so a malformed entry changes nothing on every node alike.
type Command struct {
	RegisterBroker     *RegisterBroker     `json:"register_broker,omitempty"`
	FenceBroker        *FenceBroker        `json:"fence_broker,omitempty"`
	UnfenceBroker      *UnfenceBroker      `json:"unfence_broker,omitempty"`
	ControlledShutdown *ControlledShutdown `json:"controlled_shutdown,omitempty"`
	CreateTopic        *CreateTopic        `json:"create_topic,omitempty"`
	DeleteTopic        *DeleteTopic        `json:"delete_topic,omitempty"`
	AlterConfigs       *AlterConfigs       `json:"alter_configs,omitempty"`
	AlterPartition     *AlterPartition     `json:"alter_partition,omitempty"`
}

// Result is what applying a command produced. ErrorCode is a Kafka error code (0 when the command took
// effect); Message explains a rejection in words naming the offending field.
type Result struct {
	ErrorCode int16  `json:"error_code"`
	Message   string `json:"message,omitempty"`
	// BrokerEpoch is the epoch assigned by RegisterBroker.
	BrokerEpoch int64 `json:"broker_epoch,omitempty"`
	// Partition is the partition as it stands after a successful AlterPartition.
	Partition *Partition `json:"partition,omitempty"`
	// Topic is the topic after CreateTopic or AlterConfigs, or the removed topic after DeleteTopic.
	Topic *Topic `json:"topic,omitempty"`
}

// RegisterBroker records a (re)starting broker. Its new epoch is the command's log offset, so every
// incarnation has a distinct, increasing epoch.
type RegisterBroker struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
}

// FenceBroker is issued by the active controller when a broker's heartbeats lapse. Epoch must be the
// broker's current epoch, so a fence aimed at an old incarnation cannot hit a newly registered one.
type FenceBroker struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// UnfenceBroker is issued by the active controller when a fenced broker heartbeats again with its current
// epoch.
type UnfenceBroker struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// ControlledShutdown is sent by a broker about to stop cleanly: leadership moves away from it first.
type ControlledShutdown struct {
	ID int32 `json:"id"`
}

// CreateTopic creates a topic assigned round-robin over the live brokers.
type CreateTopic struct {
	Name              string            `json:"name"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs,omitempty"`
}

// DeleteTopic removes a topic and all its partitions from the metadata.
type DeleteTopic struct {
	Name string `json:"name"`
}

// AlterConfigs sets and deletes topic-level configs (incremental, as IncrementalAlterConfigs does).
type AlterConfigs struct {
	Topic  string            `json:"topic"`
	Set    map[string]string `json:"set,omitempty"`
	Delete []string          `json:"delete,omitempty"`
}

// AlterPartition is the partition leader's request to change the ISR (shrink a lagging follower out, or
// expand a caught-up one back in). LeaderEpoch and PartitionEpoch must be current, so a deposed leader or a
// racing update is refused instead of overwriting newer state.
type AlterPartition struct {
	Topic          string  `json:"topic"`
	Partition      int32   `json:"partition"`
	LeaderID       int32   `json:"leader_id"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	PartitionEpoch int32   `json:"partition_epoch"`
	NewISR         []int32 `json:"new_isr"`
}

// Kind names the command for logs and errors.
func (c Command) Kind() string {
	switch {
	case c.RegisterBroker != nil:
		return "RegisterBroker"
	case c.FenceBroker != nil:
		return "FenceBroker"
	case c.UnfenceBroker != nil:
		return "UnfenceBroker"
	case c.ControlledShutdown != nil:
		return "ControlledShutdown"
	case c.CreateTopic != nil:
		return "CreateTopic"
	case c.DeleteTopic != nil:
		return "DeleteTopic"
	case c.AlterConfigs != nil:
		return "AlterConfigs"
	case c.AlterPartition != nil:
		return "AlterPartition"
	}
	return "Empty"
}

// count returns how many command fields are set.
func (c Command) count() int {
	n := 0
	for _, set := range []bool{c.RegisterBroker != nil, c.FenceBroker != nil, c.UnfenceBroker != nil,
		c.ControlledShutdown != nil, c.CreateTopic != nil, c.DeleteTopic != nil, c.AlterConfigs != nil,
		c.AlterPartition != nil} {
		if set {
			n++
		}
	}
	return n
}
