package meta

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Apply returns the image after command c, logged at offset, and what the command produced. It is pure and
// deterministic and never changes im: every node applying the same log reaches the same image. A rejected
// command leaves the state unchanged except Offset, which always advances to offset (the entry was applied,
// it just had no effect).
func Apply(im *Image, offset int64, c Command) (*Image, Result) {
	if c.count() != 1 {
		return unchanged(im, offset), fail(kerr.InvalidRequest, "command must set exactly one kind, got %d", c.count())
	}
	next := im.Clone()
	next.Offset = offset
	var res Result
	switch {
	case c.RegisterBroker != nil:
		res = next.registerBroker(offset, *c.RegisterBroker)
	case c.FenceBroker != nil:
		res = next.fenceBroker(*c.FenceBroker)
	case c.UnfenceBroker != nil:
		res = next.unfenceBroker(*c.UnfenceBroker)
	case c.ControlledShutdown != nil:
		res = next.controlledShutdown(*c.ControlledShutdown)
	case c.CreateTopic != nil:
		res = next.createTopic(*c.CreateTopic)
	case c.DeleteTopic != nil:
		res = next.deleteTopic(*c.DeleteTopic)
	case c.AlterConfigs != nil:
		res = next.alterConfigs(*c.AlterConfigs)
	case c.AlterPartition != nil:
		res = next.alterPartition(*c.AlterPartition)
	}
	if res.ErrorCode != 0 {
		return unchanged(im, offset), res
	}
	return next, res
}

// unchanged returns im but for Offset. The copy is shallow: images are immutable, so sharing maps is safe.
func unchanged(im *Image, offset int64) *Image {
	n := *im
	n.Offset = offset
	return &n
}

func fail(err *kerr.Error, format string, args ...any) Result {
	return Result{ErrorCode: err.Code, Message: fmt.Sprintf(format, args...)}
}

// Eligible reports whether broker id may lead or join an ISR: registered, unfenced and not shutting down.
func (im *Image) Eligible(id int32) bool {
	b, ok := im.Brokers[id]
	return ok && !b.Fenced && !b.ShuttingDown
}

// EligibleBrokers returns the eligible broker ids in increasing order.
func (im *Image) EligibleBrokers() []int32 {
	var ids []int32
	for id := range im.Brokers {
		if im.Eligible(id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// Partition returns the partition of a topic, or false when either does not exist.
func (im *Image) Partition(topic string, partition int32) (Partition, bool) {
	t, ok := im.Topics[topic]
	if !ok || partition < 0 || int(partition) >= len(t.Partitions) {
		return Partition{}, false
	}
	return t.Partitions[partition], true
}

// registerBroker gives the broker a new epoch. A broker already registered is a new incarnation of it: the
// old incarnation is fenced first (its memory is gone, so it must not stay leader or in-sync under the new
// epoch; this is what KIP-903 achieves with broker epochs in the ISR). Simplification: the new incarnation
// starts unfenced, as if it had caught up with the metadata log already (Kafka waits for that).
func (im *Image) registerBroker(offset int64, r RegisterBroker) Result {
	if r.ID < 0 {
		return fail(kerr.InvalidRequest, "broker id %d is negative", r.ID)
	}
	if _, ok := im.Brokers[r.ID]; ok {
		im.fence(r.ID)
	}
	im.Brokers[r.ID] = Broker{ID: r.ID, Host: r.Host, Port: r.Port, Epoch: offset}
	im.electOffline("", r.ID)
	return Result{BrokerEpoch: offset}
}

func (im *Image) fenceBroker(f FenceBroker) Result {
	b, ok := im.Brokers[f.ID]
	if !ok {
		return fail(kerr.BrokerIDNotRegistered, "fence: broker %d is not registered", f.ID)
	}
	if b.Epoch != f.Epoch {
		return fail(kerr.StaleBrokerEpoch, "fence: broker %d has epoch %d, not %d", f.ID, b.Epoch, f.Epoch)
	}
	im.fence(f.ID)
	return Result{BrokerEpoch: b.Epoch}
}

// fence marks the broker fenced, drops it from every ISR where it is not the last member, and re-elects the
// partitions it led.
func (im *Image) fence(id int32) {
	b := im.Brokers[id]
	b.Fenced = true
	im.Brokers[id] = b
	im.leave(id)
}

// leave removes broker id from ISRs (keeping a last member, so a clean election can still find it when it
// returns) and moves its leaderships elsewhere. The broker must already be ineligible in im.
func (im *Image) leave(id int32) {
	for _, t := range im.Topics {
		unclean := im.uncleanEnabled(t.Name)
		for i := range t.Partitions {
			p := &t.Partitions[i]
			changed := false
			if slices.Contains(p.ISR, id) && len(p.ISR) > 1 {
				p.ISR = slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return r == id })
				changed = true
			}
			if p.Leader == id {
				im.elect(p, unclean)
				changed = true
			}
			if changed {
				p.PartitionEpoch++
			}
		}
	}
}

// elect picks a new leader for p, whose current leader is ineligible or absent: the first eligible ISR member
// in replica order (clean); else, if unclean is allowed, the first eligible replica with ISR=[it]; else none.
// It bumps LeaderEpoch when the leader changes; the caller bumps PartitionEpoch.
func (im *Image) elect(p *Partition, unclean bool) {
	leader := NoLeader
	for _, r := range p.Replicas {
		if slices.Contains(p.ISR, r) && im.Eligible(r) {
			leader = r
			break
		}
	}
	if leader == NoLeader && unclean {
		for _, r := range p.Replicas {
			if im.Eligible(r) {
				leader = r
				p.ISR = []int32{r}
				break
			}
		}
	}
	if leader != p.Leader {
		p.Leader = leader
		p.LeaderEpoch++
	}
}

// electOffline elects leaders for offline partitions (of one topic, or all when topic is ""), after a broker
// became eligible or a config allowed unclean elections. Only partitions that have broker `only` as a
// replica are considered when only >= 0.
func (im *Image) electOffline(topic string, only int32) {
	for _, t := range im.Topics {
		if topic != "" && t.Name != topic {
			continue
		}
		unclean := im.uncleanEnabled(t.Name)
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.Leader != NoLeader || (only >= 0 && !slices.Contains(p.Replicas, only)) {
				continue
			}
			im.elect(p, unclean)
			if p.Leader != NoLeader {
				p.PartitionEpoch++
			}
		}
	}
}

func (im *Image) uncleanEnabled(topic string) bool {
	return im.Config(topic, ConfigUncleanLeaderElection, "false") == "true"
}

// unfenceBroker makes a fenced broker eligible again and lets it lead offline partitions whose ISR holds it.
// It does not rejoin ISRs: the leader adds it with AlterPartition once it has caught up.
func (im *Image) unfenceBroker(u UnfenceBroker) Result {
	b, ok := im.Brokers[u.ID]
	if !ok {
		return fail(kerr.BrokerIDNotRegistered, "unfence: broker %d is not registered", u.ID)
	}
	if b.Epoch != u.Epoch {
		return fail(kerr.StaleBrokerEpoch, "unfence: broker %d has epoch %d, not %d", u.ID, b.Epoch, u.Epoch)
	}
	b.Fenced = false
	im.Brokers[u.ID] = b
	im.electOffline("", u.ID)
	return Result{BrokerEpoch: b.Epoch}
}

// controlledShutdown marks the broker shutting down and moves its leaderships away with clean elections only
// (a broker leaving on purpose must not trigger data loss), leaving partitions offline when no in-sync
// replica is left.
func (im *Image) controlledShutdown(s ControlledShutdown) Result {
	b, ok := im.Brokers[s.ID]
	if !ok {
		return fail(kerr.BrokerIDNotRegistered, "controlled shutdown: broker %d is not registered", s.ID)
	}
	b.ShuttingDown = true
	im.Brokers[s.ID] = b
	for _, t := range im.Topics {
		for i := range t.Partitions {
			p := &t.Partitions[i]
			changed := false
			if slices.Contains(p.ISR, s.ID) && len(p.ISR) > 1 {
				p.ISR = slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return r == s.ID })
				changed = true
			}
			if p.Leader == s.ID {
				im.elect(p, false)
				changed = true
			}
			if changed {
				p.PartitionEpoch++
			}
		}
	}
	return Result{BrokerEpoch: b.Epoch}
}

// maxTopicNameLen is Kafka's limit on topic names.
const maxTopicNameLen = 249

func validTopicName(name string) error {
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("topic name %q is not allowed", name)
	}
	if len(name) > maxTopicNameLen {
		return fmt.Errorf("topic name is %d characters, more than %d", len(name), maxTopicNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q has illegal character %q (allowed: ASCII letters, digits, '.', '_', '-')", name, r)
		}
	}
	return nil
}

// createTopic assigns replicas round-robin over the eligible brokers sorted by id, starting at NextTopicSeq so
// successive topics spread their preferred leaders; the first replica leads and all replicas are in sync.
func (im *Image) createTopic(c CreateTopic) Result {
	if err := validTopicName(c.Name); err != nil {
		return fail(kerr.InvalidTopicException, "create topic: %v", err)
	}
	if _, ok := im.Topics[c.Name]; ok {
		return fail(kerr.TopicAlreadyExists, "create topic: topic %q already exists", c.Name)
	}
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		return fail(kerr.InvalidPartitions, "create topic %q: partitions %d not in [1, %d]", c.Name, c.Partitions, MaxPartitions)
	}
	live := im.EligibleBrokers()
	if c.ReplicationFactor < 1 || int(c.ReplicationFactor) > len(live) {
		return fail(kerr.InvalidReplicationFactor, "create topic %q: replication factor %d not in [1, %d live brokers]",
			c.Name, c.ReplicationFactor, len(live))
	}
	for _, k := range sortedKeys(c.Configs) {
		if err := ValidateConfig(k, c.Configs[k]); err != nil {
			return fail(kerr.InvalidConfig, "create topic %q: %v", c.Name, err)
		}
	}
	seq := im.NextTopicSeq
	im.NextTopicSeq++
	t := &Topic{Name: c.Name, ID: topicID(seq), Configs: map[string]string{}, Partitions: make([]Partition, c.Partitions)}
	for k, v := range c.Configs {
		t.Configs[k] = v
	}
	n := uint64(len(live))
	for p := range t.Partitions {
		replicas := make([]int32, c.ReplicationFactor)
		for j := range replicas {
			replicas[j] = live[(seq+uint64(p)+uint64(j))%n]
		}
		t.Partitions[p] = Partition{Partition: int32(p), Replicas: replicas, ISR: slices.Clone(replicas), Leader: replicas[0]}
	}
	im.Topics[c.Name] = t
	return Result{Topic: t.Clone()}
}

// MaxPartitions bounds a topic's partition count so one command cannot make an image of unbounded size.
const MaxPartitions = 10000

// topicID derives a non-zero id from the topic sequence number: deterministic on every node, and a topic
// deleted and created again under the same name gets a different id (as in Kafka).
func topicID(seq uint64) [16]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	sum := sha256.Sum256(append([]byte("kafkatrial-topic-id:"), b[:]...))
	var id [16]byte
	copy(id[:], sum[:16])
	if id == ([16]byte{}) {
		id[15] = 1
	}
	return id
}

func (im *Image) deleteTopic(d DeleteTopic) Result {
	t, ok := im.Topics[d.Name]
	if !ok {
		return fail(kerr.UnknownTopicOrPartition, "delete topic: topic %q does not exist", d.Name)
	}
	delete(im.Topics, d.Name)
	return Result{Topic: t}
}

// alterConfigs applies sets then deletes; a newly allowed unclean election takes effect at once on offline
// partitions (Kafka does the same when unclean.leader.election.enable turns true).
func (im *Image) alterConfigs(a AlterConfigs) Result {
	t, ok := im.Topics[a.Topic]
	if !ok {
		return fail(kerr.UnknownTopicOrPartition, "alter configs: topic %q does not exist", a.Topic)
	}
	for _, k := range sortedKeys(a.Set) {
		if err := ValidateConfig(k, a.Set[k]); err != nil {
			return fail(kerr.InvalidConfig, "alter configs of topic %q: %v", a.Topic, err)
		}
	}
	for _, k := range a.Delete {
		if _, known := configRules[k]; !known {
			return fail(kerr.InvalidConfig, "alter configs of topic %q: unknown config %q", a.Topic, k)
		}
	}
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	for k, v := range a.Set {
		t.Configs[k] = v
	}
	for _, k := range a.Delete {
		delete(t.Configs, k)
	}
	im.electOffline(a.Topic, -1)
	return Result{Topic: t.Clone()}
}

// alterPartition replaces the ISR on behalf of the current leader. Checks follow Kafka's order: leader epoch
// and leadership (FENCED_LEADER_EPOCH), then the partition epoch (INVALID_UPDATE_VERSION), then the new ISR.
func (im *Image) alterPartition(a AlterPartition) Result {
	t, ok := im.Topics[a.Topic]
	if !ok || a.Partition < 0 || int(a.Partition) >= len(t.Partitions) {
		return fail(kerr.UnknownTopicOrPartition, "alter partition: %s-%d does not exist", a.Topic, a.Partition)
	}
	p := &t.Partitions[a.Partition]
	if a.LeaderEpoch != p.LeaderEpoch || a.LeaderID != p.Leader {
		return fail(kerr.FencedLeaderEpoch, "alter partition %s-%d: sender %d at leader epoch %d, but leader is %d at epoch %d",
			a.Topic, a.Partition, a.LeaderID, a.LeaderEpoch, p.Leader, p.LeaderEpoch)
	}
	if a.PartitionEpoch != p.PartitionEpoch {
		return fail(kerr.InvalidUpdateVersion, "alter partition %s-%d: partition epoch %d is not the current %d",
			a.Topic, a.Partition, a.PartitionEpoch, p.PartitionEpoch)
	}
	seen := map[int32]bool{}
	for _, r := range a.NewISR {
		if seen[r] {
			return fail(kerr.InvalidRequest, "alter partition %s-%d: new ISR %v repeats broker %d", a.Topic, a.Partition, a.NewISR, r)
		}
		seen[r] = true
		if !slices.Contains(p.Replicas, r) {
			return fail(kerr.IneligibleReplica, "alter partition %s-%d: broker %d in new ISR is not a replica %v",
				a.Topic, a.Partition, r, p.Replicas)
		}
		if !im.Eligible(r) {
			return fail(kerr.IneligibleReplica, "alter partition %s-%d: broker %d in new ISR is fenced, shutting down or unregistered",
				a.Topic, a.Partition, r)
		}
	}
	if !seen[p.Leader] {
		return fail(kerr.InvalidRequest, "alter partition %s-%d: new ISR %v does not contain the leader %d",
			a.Topic, a.Partition, a.NewISR, p.Leader)
	}
	p.ISR = slices.Clone(a.NewISR)
	p.PartitionEpoch++
	np := p.Clone()
	return Result{Partition: &np}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
