package meta

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// currentEpoch in a test command's Epoch is replaced by the broker's epoch in the image it is applied to.
const currentEpoch = -1

func reg(id int32) Command {
	return Command{RegisterBroker: &RegisterBroker{ID: id, Host: "127.0.0.1", Port: 9000 + id}}
}
func fence(id int32) Command { return Command{FenceBroker: &FenceBroker{ID: id, Epoch: currentEpoch}} }
func unfence(id int32) Command {
	return Command{UnfenceBroker: &UnfenceBroker{ID: id, Epoch: currentEpoch}}
}
func shutdown(id int32) Command {
	return Command{ControlledShutdown: &ControlledShutdown{ID: id}}
}
func topic(name string, parts int32, rf int16, kv ...string) Command {
	cfg := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		cfg[kv[i]] = kv[i+1]
	}
	return Command{CreateTopic: &CreateTopic{Name: name, Partitions: parts, ReplicationFactor: rf, Configs: cfg}}
}
func setConfig(name string, kv ...string) Command {
	set := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		set[kv[i]] = kv[i+1]
	}
	return Command{AlterConfigs: &AlterConfigs{Topic: name, Set: set}}
}
func alterISR(name string, part, leader, le, pe int32, isr ...int32) Command {
	return Command{AlterPartition: &AlterPartition{Topic: name, Partition: part, LeaderID: leader, LeaderEpoch: le,
		PartitionEpoch: pe, NewISR: isr}}
}

// resolve fills currentEpoch placeholders from im.
func resolve(im *Image, c Command) Command {
	if c.FenceBroker != nil && c.FenceBroker.Epoch == currentEpoch {
		f := *c.FenceBroker
		f.Epoch = im.Brokers[f.ID].Epoch
		c.FenceBroker = &f
	}
	if c.UnfenceBroker != nil && c.UnfenceBroker.Epoch == currentEpoch {
		u := *c.UnfenceBroker
		u.Epoch = im.Brokers[u.ID].Epoch
		c.UnfenceBroker = &u
	}
	return c
}

// part is the expected state of partition t-<n>.
type part struct {
	leader, le, pe int32
	isr            []int32
}

// run applies setup (each must succeed) then cmd, checks Apply left its input untouched, and returns the
// result and image.
func run(t *testing.T, setup []Command, cmd Command) (*Image, Result) {
	t.Helper()
	im := Empty()
	for i, c := range setup {
		var res Result
		im, res = Apply(im, int64(i+1), resolve(im, c))
		if res.ErrorCode != 0 {
			t.Fatalf("setup %d (%s) failed: %d %s", i, c.Kind(), res.ErrorCode, res.Message)
		}
	}
	before, _ := json.Marshal(im)
	next, res := Apply(im, int64(len(setup)+1), resolve(im, cmd))
	after, _ := json.Marshal(im)
	if string(before) != string(after) {
		t.Fatalf("Apply(%s) mutated its input image", cmd.Kind())
	}
	if next.Offset != int64(len(setup)+1) {
		t.Fatalf("offset = %d, want %d", next.Offset, len(setup)+1)
	}
	return next, res
}

var three = []Command{reg(1), reg(2), reg(3)}

func with(base []Command, more ...Command) []Command { return append(slices.Clone(base), more...) }

func TestApplyElections(t *testing.T) {
	rf3 := with(three, topic("t", 1, 3))                // replicas [1 2 3], leader 1
	isrOnly1 := with(rf3, alterISR("t", 0, 1, 0, 0, 1)) // ISR [1], PE 1
	unclean3 := with(three, topic("t", 1, 3, ConfigUncleanLeaderElection, "true"), alterISR("t", 0, 1, 0, 0, 1))
	two := []Command{reg(1), reg(2), topic("t", 1, 2), alterISR("t", 0, 1, 0, 0, 1)} // replicas [1 2], ISR [1]
	cases := []struct {
		name    string
		setup   []Command
		cmd     Command
		code    int16
		want    part
		fenced  map[int32]bool
		message string
	}{
		{name: "fence leader elects next ISR member in replica order", setup: rf3, cmd: fence(1),
			want: part{leader: 2, le: 1, pe: 1, isr: []int32{2, 3}}, fenced: map[int32]bool{1: true}},
		{name: "fence follower shrinks ISR, leader epoch unchanged", setup: rf3, cmd: fence(2),
			want: part{leader: 1, le: 0, pe: 1, isr: []int32{1, 3}}},
		{name: "fence skips fenced ISR members", setup: with(rf3, fence(2)), cmd: fence(1),
			want: part{leader: 3, le: 1, pe: 2, isr: []int32{3}}},
		{name: "fence last ISR member keeps it in ISR, partition offline", setup: isrOnly1, cmd: fence(1),
			want: part{leader: NoLeader, le: 1, pe: 2, isr: []int32{1}}},
		{name: "fence last ISR member with unclean enabled elects live replica", setup: unclean3, cmd: fence(1),
			want: part{leader: 2, le: 1, pe: 2, isr: []int32{2}}},
		{name: "fence with nobody live leaves partition offline even if unclean", setup: with(three,
			topic("t", 1, 1, ConfigUncleanLeaderElection, "true")), cmd: fence(1),
			want: part{leader: NoLeader, le: 1, pe: 1, isr: []int32{1}}},
		{name: "unfence elects offline partition whose ISR holds it", setup: with(isrOnly1, fence(1)), cmd: unfence(1),
			want: part{leader: 1, le: 2, pe: 3, isr: []int32{1}}},
		{name: "unfence does not rejoin ISR", setup: with(rf3, fence(2)), cmd: unfence(2),
			want: part{leader: 1, le: 0, pe: 1, isr: []int32{1, 3}}},
		{name: "unfence of non-ISR replica leaves offline partition offline (clean)", setup: with(two, fence(1), fence(2)),
			cmd: unfence(2), want: part{leader: NoLeader, le: 1, pe: 2, isr: []int32{1}}},
		{name: "unfence of non-ISR replica elects uncleanly when enabled",
			setup: with(two, fence(1), fence(2), setConfig("t", ConfigUncleanLeaderElection, "true")),
			cmd:   unfence(2), want: part{leader: 2, le: 2, pe: 3, isr: []int32{2}}},
		{name: "enabling unclean elects an offline partition at once", setup: with(two, fence(1)),
			cmd: setConfig("t", ConfigUncleanLeaderElection, "true"), want: part{leader: 2, le: 2, pe: 3, isr: []int32{2}}},
		{name: "returning broker re-registering is elected for its offline partition", setup: with(isrOnly1, fence(1)),
			cmd: reg(1), want: part{leader: 1, le: 2, pe: 3, isr: []int32{1}}},
		{name: "re-registration fences the old incarnation first", setup: rf3, cmd: reg(1),
			want: part{leader: 2, le: 1, pe: 1, isr: []int32{2, 3}}, fenced: map[int32]bool{1: false}},
		{name: "re-registration of the only ISR member bumps the leader epoch twice", setup: isrOnly1, cmd: reg(1),
			want: part{leader: 1, le: 2, pe: 3, isr: []int32{1}}},
		{name: "controlled shutdown moves leadership and leaves ISR", setup: rf3, cmd: shutdown(1),
			want: part{leader: 2, le: 1, pe: 1, isr: []int32{2, 3}}},
		{name: "controlled shutdown never elects uncleanly", setup: unclean3, cmd: shutdown(1),
			want: part{leader: NoLeader, le: 1, pe: 2, isr: []int32{1}}},
		{name: "shutting-down broker is not elected", setup: with(rf3, shutdown(2)), cmd: fence(1),
			want: part{leader: 3, le: 1, pe: 2, isr: []int32{3}}},
		{name: "fence with stale epoch is refused", setup: rf3,
			cmd: Command{FenceBroker: &FenceBroker{ID: 1, Epoch: 99}}, code: kerr.StaleBrokerEpoch.Code,
			want: part{leader: 1, le: 0, pe: 0, isr: []int32{1, 2, 3}}},
		{name: "fence of unknown broker is refused", setup: rf3,
			cmd: Command{FenceBroker: &FenceBroker{ID: 7, Epoch: 1}}, code: kerr.BrokerIDNotRegistered.Code,
			want: part{leader: 1, le: 0, pe: 0, isr: []int32{1, 2, 3}}},
		{name: "unfence with stale epoch is refused", setup: with(isrOnly1, fence(1)),
			cmd: Command{UnfenceBroker: &UnfenceBroker{ID: 1, Epoch: 99}}, code: kerr.StaleBrokerEpoch.Code,
			want: part{leader: NoLeader, le: 1, pe: 2, isr: []int32{1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			im, res := run(t, tc.setup, tc.cmd)
			if res.ErrorCode != tc.code {
				t.Fatalf("error code = %d (%s), want %d", res.ErrorCode, res.Message, tc.code)
			}
			got := im.Topics["t"].Partitions[0]
			if got.Leader != tc.want.leader || got.LeaderEpoch != tc.want.le || got.PartitionEpoch != tc.want.pe ||
				!slices.Equal(got.ISR, tc.want.isr) {
				t.Fatalf("partition = leader %d LE %d PE %d ISR %v, want leader %d LE %d PE %d ISR %v",
					got.Leader, got.LeaderEpoch, got.PartitionEpoch, got.ISR,
					tc.want.leader, tc.want.le, tc.want.pe, tc.want.isr)
			}
			for id, f := range tc.fenced {
				if im.Brokers[id].Fenced != f {
					t.Fatalf("broker %d fenced = %v, want %v", id, im.Brokers[id].Fenced, f)
				}
			}
		})
	}
}

func TestApplyClusterDefaultUnclean(t *testing.T) {
	im := Empty()
	im.ClusterDefaults[ConfigUncleanLeaderElection] = "true"
	for i, c := range []Command{reg(1), reg(2), topic("t", 1, 2), alterISR("t", 0, 1, 0, 0, 1)} {
		var res Result
		if im, res = Apply(im, int64(i+1), c); res.ErrorCode != 0 {
			t.Fatalf("setup %d: %s", i, res.Message)
		}
	}
	im, _ = Apply(im, 5, resolve(im, fence(1)))
	if p := im.Topics["t"].Partitions[0]; p.Leader != 2 || !slices.Equal(p.ISR, []int32{2}) {
		t.Fatalf("cluster default unclean: partition %+v, want leader 2 ISR [2]", p)
	}
}

func TestApplyAlterPartition(t *testing.T) {
	rf3 := with(three, topic("t", 1, 3)) // leader 1, LE 0, PE 0
	cases := []struct {
		name  string
		setup []Command
		cmd   Command
		code  int16
		isr   []int32
		pe    int32
	}{
		{name: "shrink", setup: rf3, cmd: alterISR("t", 0, 1, 0, 0, 1, 3), isr: []int32{1, 3}, pe: 1},
		{name: "expand back", setup: with(rf3, alterISR("t", 0, 1, 0, 0, 1)), cmd: alterISR("t", 0, 1, 0, 1, 1, 2),
			isr: []int32{1, 2}, pe: 2},
		{name: "stale leader epoch", setup: with(rf3, fence(1), unfence(1)), cmd: alterISR("t", 0, 1, 0, 1, 1, 2),
			code: kerr.FencedLeaderEpoch.Code},
		{name: "sender not leader", setup: rf3, cmd: alterISR("t", 0, 2, 0, 0, 2, 3), code: kerr.FencedLeaderEpoch.Code},
		{name: "stale partition epoch", setup: with(rf3, alterISR("t", 0, 1, 0, 0, 1, 2, 3)),
			cmd: alterISR("t", 0, 1, 0, 0, 1), code: kerr.InvalidUpdateVersion.Code},
		{name: "fenced broker in new ISR", setup: with(rf3, fence(3)), cmd: alterISR("t", 0, 1, 0, 1, 1, 2, 3),
			code: kerr.IneligibleReplica.Code},
		{name: "shutting-down broker in new ISR", setup: with(rf3, shutdown(3)), cmd: alterISR("t", 0, 1, 0, 1, 1, 2, 3),
			code: kerr.IneligibleReplica.Code},
		{name: "non-replica in new ISR", setup: with(rf3, reg(4)), cmd: alterISR("t", 0, 1, 0, 0, 1, 4),
			code: kerr.IneligibleReplica.Code},
		{name: "unregistered broker in new ISR", setup: rf3, cmd: alterISR("t", 0, 1, 0, 0, 1, 9),
			code: kerr.IneligibleReplica.Code},
		{name: "new ISR without the leader", setup: rf3, cmd: alterISR("t", 0, 1, 0, 0, 2, 3), code: kerr.InvalidRequest.Code},
		{name: "duplicate in new ISR", setup: rf3, cmd: alterISR("t", 0, 1, 0, 0, 1, 1), code: kerr.InvalidRequest.Code},
		{name: "unknown partition", setup: rf3, cmd: alterISR("t", 5, 1, 0, 0, 1), code: kerr.UnknownTopicOrPartition.Code},
		{name: "unknown topic", setup: rf3, cmd: alterISR("u", 0, 1, 0, 0, 1), code: kerr.UnknownTopicOrPartition.Code},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			im, res := run(t, tc.setup, tc.cmd)
			if res.ErrorCode != tc.code {
				t.Fatalf("error code = %d (%s), want %d", res.ErrorCode, res.Message, tc.code)
			}
			if tc.code != 0 {
				if res.Partition != nil {
					t.Fatal("rejected AlterPartition returned a partition")
				}
				return
			}
			p := im.Topics["t"].Partitions[0]
			if !slices.Equal(p.ISR, tc.isr) || p.PartitionEpoch != tc.pe || p.LeaderEpoch != 0 || p.Leader != 1 {
				t.Fatalf("partition = %+v, want ISR %v PE %d, leader 1 at LE 0", p, tc.isr, tc.pe)
			}
			if res.Partition == nil || !reflect.DeepEqual(*res.Partition, p) {
				t.Fatalf("result partition %+v, want %+v", res.Partition, p)
			}
		})
	}
}

func TestApplyCreateTopicErrors(t *testing.T) {
	cases := []struct {
		name    string
		setup   []Command
		cmd     Command
		code    int16
		mention string
	}{
		{name: "exists", setup: with(three, topic("t", 1, 1)), cmd: topic("t", 2, 1), code: kerr.TopicAlreadyExists.Code},
		{name: "zero partitions", setup: three, cmd: topic("t", 0, 1), code: kerr.InvalidPartitions.Code},
		{name: "too many partitions", setup: three, cmd: topic("t", MaxPartitions+1, 1), code: kerr.InvalidPartitions.Code},
		{name: "replication factor above live brokers", setup: with(three, fence(3)), cmd: topic("t", 1, 3),
			code: kerr.InvalidReplicationFactor.Code},
		{name: "replication factor zero", setup: three, cmd: topic("t", 1, 0), code: kerr.InvalidReplicationFactor.Code},
		{name: "no brokers", cmd: topic("t", 1, 1), code: kerr.InvalidReplicationFactor.Code},
		{name: "bad config value", setup: three, cmd: topic("t", 1, 1, ConfigMinInsyncReplicas, "zero"),
			code: kerr.InvalidConfig.Code, mention: ConfigMinInsyncReplicas},
		{name: "unknown config", setup: three, cmd: topic("t", 1, 1, "retention.bytez", "1"),
			code: kerr.InvalidConfig.Code, mention: "retention.bytez"},
		{name: "bad name", setup: three, cmd: topic("a/b", 1, 1), code: kerr.InvalidTopicException.Code},
		{name: "ok with configs", setup: three, cmd: topic("t", 2, 3, ConfigCleanupPolicy, "delete", ConfigSegmentBytes, "1048576")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			im, res := run(t, tc.setup, tc.cmd)
			if res.ErrorCode != tc.code {
				t.Fatalf("error code = %d (%s), want %d", res.ErrorCode, res.Message, tc.code)
			}
			if !strings.Contains(res.Message, tc.mention) {
				t.Fatalf("message %q does not name %q", res.Message, tc.mention)
			}
			if tc.code != 0 && tc.name != "exists" {
				if _, ok := im.Topics["t"]; ok {
					t.Fatal("rejected CreateTopic created the topic")
				}
			}
		})
	}
}

func TestApplyCreateTopicDeterministic(t *testing.T) {
	log := []Command{reg(3), reg(1), reg(2), reg(4), fence(4), topic("a", 4, 2), topic("b", 2, 3)}
	build := func() *Image {
		im := Empty()
		for i, c := range log {
			var res Result
			if im, res = Apply(im, int64(i+1), resolve(im, c)); res.ErrorCode != 0 {
				t.Fatalf("command %d: %s", i, res.Message)
			}
		}
		return im
	}
	im1, im2 := build(), build()
	if !reflect.DeepEqual(im1, im2) {
		t.Fatal("same log gave different images")
	}
	// Live brokers sorted: [1 2 3] (4 is fenced). Topic a starts at seq 0, topic b at seq 1.
	wantA := [][]int32{{1, 2}, {2, 3}, {3, 1}, {1, 2}}
	for i, p := range im1.Topics["a"].Partitions {
		if !slices.Equal(p.Replicas, wantA[i]) || !slices.Equal(p.ISR, wantA[i]) || p.Leader != wantA[i][0] {
			t.Fatalf("a-%d = %+v, want replicas=ISR=%v leader %d", i, p, wantA[i], wantA[i][0])
		}
	}
	wantB := [][]int32{{2, 3, 1}, {3, 1, 2}}
	for i, p := range im1.Topics["b"].Partitions {
		if !slices.Equal(p.Replicas, wantB[i]) {
			t.Fatalf("b-%d replicas = %v, want %v", i, p.Replicas, wantB[i])
		}
	}
	ida, idb := im1.Topics["a"].ID, im1.Topics["b"].ID
	if ida == ([16]byte{}) || idb == ([16]byte{}) || ida == idb {
		t.Fatalf("topic ids %x %x must be non-zero and distinct", ida, idb)
	}
	// Deleting and recreating gives a new id.
	im3, _ := Apply(im1, 100, Command{DeleteTopic: &DeleteTopic{Name: "a"}})
	im3, res := Apply(im3, 101, topic("a", 1, 1))
	if res.ErrorCode != 0 || im3.Topics["a"].ID == ida {
		t.Fatalf("recreated topic: code %d, id %x (old %x)", res.ErrorCode, im3.Topics["a"].ID, ida)
	}
}

func TestApplyTopicAdmin(t *testing.T) {
	base := with(three, topic("t", 1, 1))
	cases := []struct {
		name    string
		cmd     Command
		code    int16
		mention string
		check   func(*Image) bool
	}{
		{name: "delete", cmd: Command{DeleteTopic: &DeleteTopic{Name: "t"}},
			check: func(im *Image) bool { _, ok := im.Topics["t"]; return !ok }},
		{name: "delete unknown", cmd: Command{DeleteTopic: &DeleteTopic{Name: "x"}}, code: kerr.UnknownTopicOrPartition.Code},
		{name: "alter configs set", cmd: setConfig("t", ConfigRetentionMs, "-1", ConfigFlushMessages, "1"),
			check: func(im *Image) bool {
				return im.Config("t", ConfigRetentionMs, "") == "-1" && im.Config("t", ConfigFlushMessages, "") == "1"
			}},
		{name: "alter configs delete", cmd: Command{AlterConfigs: &AlterConfigs{Topic: "t", Delete: []string{ConfigRetentionMs}}},
			check: func(im *Image) bool { return im.Config("t", ConfigRetentionMs, "def") == "def" }},
		{name: "alter configs bad bool", cmd: setConfig("t", ConfigUncleanLeaderElection, "yes"),
			code: kerr.InvalidConfig.Code, mention: ConfigUncleanLeaderElection},
		{name: "alter configs bad policy", cmd: setConfig("t", ConfigCleanupPolicy, "shred"),
			code: kerr.InvalidConfig.Code, mention: ConfigCleanupPolicy},
		{name: "alter configs small segment", cmd: setConfig("t", ConfigSegmentBytes, "13"),
			code: kerr.InvalidConfig.Code, mention: ConfigSegmentBytes},
		{name: "alter configs negative flush ms", cmd: setConfig("t", ConfigFlushMs, "-5"),
			code: kerr.InvalidConfig.Code, mention: ConfigFlushMs},
		{name: "alter configs bad max message", cmd: setConfig("t", ConfigMaxMessageBytes, "1e6"),
			code: kerr.InvalidConfig.Code, mention: ConfigMaxMessageBytes},
		{name: "alter configs unknown key", cmd: setConfig("t", "compression.typo", "lz4"),
			code: kerr.InvalidConfig.Code, mention: "compression.typo"},
		{name: "alter configs unknown topic", cmd: setConfig("x", ConfigRetentionMs, "1"), code: kerr.UnknownTopicOrPartition.Code},
		{name: "empty command", cmd: Command{}, code: kerr.InvalidRequest.Code},
		{name: "two commands at once", cmd: Command{DeleteTopic: &DeleteTopic{Name: "t"}, FenceBroker: &FenceBroker{ID: 1}},
			code: kerr.InvalidRequest.Code, check: func(im *Image) bool { _, ok := im.Topics["t"]; return ok }},
		{name: "negative broker id", cmd: reg(-3), code: kerr.InvalidRequest.Code},
		{name: "controlled shutdown of unknown broker", cmd: shutdown(9), code: kerr.BrokerIDNotRegistered.Code},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			im, res := run(t, base, tc.cmd)
			if res.ErrorCode != tc.code {
				t.Fatalf("error code = %d (%s), want %d", res.ErrorCode, res.Message, tc.code)
			}
			if !strings.Contains(res.Message, tc.mention) {
				t.Fatalf("message %q does not name %q", res.Message, tc.mention)
			}
			if tc.check != nil && !tc.check(im) {
				t.Fatal("image check failed")
			}
		})
	}
}

func TestApplyRegisterEpochIsOffset(t *testing.T) {
	im, res := run(t, three, reg(2))
	if res.BrokerEpoch != 4 || im.Brokers[2].Epoch != 4 || im.Brokers[2].Fenced || im.Brokers[2].ShuttingDown {
		t.Fatalf("re-registered broker %+v result epoch %d, want epoch 4 unfenced", im.Brokers[2], res.BrokerEpoch)
	}
	im, _ = run(t, with(three, shutdown(2)), reg(2))
	if im.Brokers[2].ShuttingDown {
		t.Fatal("registration did not clear ShuttingDown")
	}
}
