package group

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kafkatrial/kafkatrial/broker/storage"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// waitLong bounds every wait for something that must eventually happen; generous for a loaded machine.
const waitLong = 30 * time.Second

func newTestStore(t *testing.T, disk *storage.Disk, sync bool) *FileStore {
	t.Helper()
	s, err := OpenFileStore(disk, "offsets/commits.log", sync)
	if err != nil {
		t.Fatalf("OpenFileStore: %v", err)
	}
	return s
}

func newTestDisk(t *testing.T) *storage.Disk {
	t.Helper()
	d, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatalf("NewDisk: %v", err)
	}
	if err := d.MkdirAll("offsets"); err != nil {
		t.Fatalf("MkdirAll: %v", err)
	}
	return d
}

func newTestCoordinator(t *testing.T, store OffsetStore) *Coordinator {
	t.Helper()
	// The initial delay is the window in which concurrently started joins land in one generation (it restarts
	// with every new member); generous so a loaded machine does not split the first round.
	c, err := NewCoordinator(Config{Store: store, InitialRebalanceDelay: 500 * time.Millisecond,
		MinSessionTimeout: 10 * time.Millisecond, MaxSessionTimeout: time.Minute})
	if err != nil {
		t.Fatalf("NewCoordinator: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// joiner describes one member's JoinGroup parameters.
type joiner struct {
	group     string
	memberID  string
	session   time.Duration
	rebalance time.Duration
	protocols []string
	meta      string
}

func (j joiner) request(version int16) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = version
	req.Group = j.group
	req.MemberID = j.memberID
	req.SessionTimeoutMillis = int32(j.session / time.Millisecond)
	req.RebalanceTimeoutMillis = int32(j.rebalance / time.Millisecond)
	req.ProtocolType = "consumer"
	protos := j.protocols
	if protos == nil {
		protos = []string{"range"}
	}
	for _, p := range protos {
		req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: []byte(j.meta)})
	}
	return req
}

// joinAll joins every joiner concurrently (doing the MEMBER_ID_REQUIRED dance of v4+) and returns the
// responses in the same order.
func joinAll(t *testing.T, c *Coordinator, version int16, js ...joiner) []*kmsg.JoinGroupResponse {
	t.Helper()
	out := make([]*kmsg.JoinGroupResponse, len(js))
	var wg sync.WaitGroup
	for i, j := range js {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			ctx = WithClientInfo(ctx, ClientInfo{ClientID: fmt.Sprintf("client-%d", i), Host: "127.0.0.1"})
			resp := c.Join(ctx, j.request(version))
			if resp.ErrorCode == kerr.MemberIDRequired.Code {
				j.memberID = resp.MemberID
				resp = c.Join(ctx, j.request(version))
			}
			out[i] = resp
		})
	}
	wg.Wait()
	for i, r := range out {
		if r.ErrorCode != 0 {
			t.Fatalf("join %d: %v", i, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	return out
}

// syncAll sends SyncGroup for every member (the leader with assignment "A:<member>") and returns each
// member's assignment.
func syncAll(t *testing.T, c *Coordinator, group string, joins []*kmsg.JoinGroupResponse) map[string]string {
	t.Helper()
	out := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, j := range joins {
		wg.Go(func() {
			req := kmsg.NewPtrSyncGroupRequest()
			req.Version = 5
			req.Group, req.MemberID, req.Generation = group, j.MemberID, j.Generation
			if j.LeaderID == j.MemberID {
				for _, m := range j.Members {
					req.GroupAssignment = append(req.GroupAssignment,
						kmsg.SyncGroupRequestGroupAssignment{MemberID: m.MemberID, MemberAssignment: []byte("A:" + m.MemberID)})
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			resp := c.Sync(ctx, req)
			mu.Lock()
			defer mu.Unlock()
			if resp.ErrorCode != 0 {
				t.Errorf("sync %s: %v", j.MemberID, kerr.ErrorForCode(resp.ErrorCode))
				return
			}
			out[j.MemberID] = string(resp.MemberAssignment)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

func heartbeat(c *Coordinator, group, member string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = group, member, gen
	return c.Heartbeat(context.Background(), req).ErrorCode
}

func describe(t *testing.T, c *Coordinator, group string) kmsg.DescribeGroupsResponseGroup {
	t.Helper()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Version = 5
	req.Groups = []string{group}
	return c.DescribeGroups(context.Background(), req).Groups[0]
}

// stableGroup forms a Stable group of n members and returns their join responses.
func stableGroup(t *testing.T, c *Coordinator, group string, n int, session time.Duration) []*kmsg.JoinGroupResponse {
	t.Helper()
	js := make([]joiner, n)
	for i := range js {
		js[i] = joiner{group: group, session: session, rebalance: 10 * time.Second, meta: fmt.Sprint(i)}
	}
	joins := joinAll(t, c, 9, js...)
	syncAll(t, c, group, joins)
	return joins
}

func TestJoinSyncThreeMembers(t *testing.T) {
	t.Parallel()
	c := newTestCoordinator(t, newTestStore(t, newTestDisk(t), false))
	js := make([]joiner, 3)
	for i := range js {
		js[i] = joiner{group: "g", session: 10 * time.Second, rebalance: 10 * time.Second, meta: fmt.Sprint(i)}
	}
	joins := joinAll(t, c, 5, js...)
	leader := joins[0].LeaderID
	ids := map[string]bool{}
	for _, j := range joins {
		if j.Generation != 1 || j.LeaderID != leader || *j.Protocol != "range" {
			t.Fatalf("join response gen=%d leader=%s protocol=%v, want gen 1, one leader, range", j.Generation, j.LeaderID, *j.Protocol)
		}
		ids[j.MemberID] = true
		if j.MemberID == leader && len(j.Members) != 3 {
			t.Fatalf("leader got %d members, want 3", len(j.Members))
		}
		if j.MemberID != leader && len(j.Members) != 0 {
			t.Fatalf("follower got %d members, want 0", len(j.Members))
		}
	}
	if len(ids) != 3 || !ids[leader] {
		t.Fatalf("member ids %v (leader %s): want 3 distinct including the leader", ids, leader)
	}
	if got := describe(t, c, "g").State; got != "CompletingRebalance" {
		t.Fatalf("state before sync = %s", got)
	}
	assigned := syncAll(t, c, "g", joins)
	for id := range ids {
		if assigned[id] != "A:"+id {
			t.Fatalf("member %s got assignment %q", id, assigned[id])
		}
	}
	dg := describe(t, c, "g")
	if dg.State != "Stable" || dg.Protocol != "range" || len(dg.Members) != 3 {
		t.Fatalf("describe = %s %q %d members", dg.State, dg.Protocol, len(dg.Members))
	}
	for _, j := range joins {
		if code := heartbeat(c, "g", j.MemberID, j.Generation); code != 0 {
			t.Fatalf("heartbeat: %v", kerr.ErrorForCode(code))
		}
	}
	if code := heartbeat(c, "g", joins[0].MemberID, joins[0].Generation-1); code != kerr.IllegalGeneration.Code {
		t.Fatalf("stale heartbeat: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(code))
	}
	if code := heartbeat(c, "g", "nobody", joins[0].Generation); code != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown heartbeat: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}
	lreq := kmsg.NewPtrListGroupsRequest()
	lreq.Version = 5
	lreq.StatesFilter = []string{"stable"}
	if lg := c.ListGroups(context.Background(), lreq); len(lg.Groups) != 1 || lg.Groups[0].Group != "g" {
		t.Fatalf("ListGroups(stable) = %+v", lg.Groups)
	}
}

func TestProtocolSelection(t *testing.T) {
	t.Parallel()
	c := newTestCoordinator(t, newTestStore(t, newTestDisk(t), false))
	joins := joinAll(t, c, 9,
		joiner{group: "g", session: 10 * time.Second, rebalance: 10 * time.Second, protocols: []string{"sticky", "range"}},
		joiner{group: "g", session: 10 * time.Second, rebalance: 10 * time.Second, protocols: []string{"roundrobin", "range"}},
	)
	if p := *joins[0].Protocol; p != "range" {
		t.Fatalf("selected %q, want the only common protocol range", p)
	}
	bad := joiner{group: "g", session: 10 * time.Second, rebalance: 10 * time.Second, protocols: []string{"sticky"}}
	if r := c.Join(context.Background(), bad.request(3)); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("join with no common protocol: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	tooShort := joiner{group: "g", session: time.Millisecond, rebalance: 10 * time.Second}
	if r := c.Join(context.Background(), tooShort.request(3)); r.ErrorCode != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("join with tiny session: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}

// waitRebalance polls the heartbeat of each survivor until it reports REBALANCE_IN_PROGRESS.
func waitRebalance(t *testing.T, c *Coordinator, group string, survivors []*kmsg.JoinGroupResponse) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for _, s := range survivors {
		for {
			code := heartbeat(c, group, s.MemberID, s.Generation)
			if code == kerr.RebalanceInProgress.Code {
				break
			}
			if code != 0 {
				t.Fatalf("survivor heartbeat: %v", kerr.ErrorForCode(code))
			}
			if time.Now().After(deadline) {
				t.Fatalf("no rebalance within %v", waitLong)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func rejoin(t *testing.T, c *Coordinator, group string, survivors []*kmsg.JoinGroupResponse, session time.Duration) []*kmsg.JoinGroupResponse {
	t.Helper()
	js := make([]joiner, len(survivors))
	for i, s := range survivors {
		js[i] = joiner{group: group, memberID: s.MemberID, session: session, rebalance: 10 * time.Second, meta: fmt.Sprint(i)}
	}
	return joinAll(t, c, 9, js...)
}

func TestSessionExpiryTriggersRebalance(t *testing.T) {
	t.Parallel()
	c := newTestCoordinator(t, newTestStore(t, newTestDisk(t), false))
	const session = 2 * time.Second
	joins := stableGroup(t, c, "g", 3, session)
	survivors := joins[:2]
	// The survivors keep heartbeating; the third member goes silent and must be expired.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, s := range survivors {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(session / 10):
					heartbeat(c, "g", s.MemberID, s.Generation)
				}
			}
		})
	}
	waitRebalance(t, c, "g", survivors)
	close(stop)
	wg.Wait()
	next := rejoin(t, c, "g", survivors, session)
	if next[0].Generation != joins[0].Generation+1 {
		t.Fatalf("generation %d after expiry, want %d", next[0].Generation, joins[0].Generation+1)
	}
	for _, n := range next {
		if n.MemberID == n.LeaderID && len(n.Members) != 2 {
			t.Fatalf("leader sees %d members after expiry, want 2", len(n.Members))
		}
	}
	if code := heartbeat(c, "g", joins[2].MemberID, next[0].Generation); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member heartbeat: %v, want UNKNOWN_MEMBER_ID", kerr.ErrorForCode(code))
	}
}

func TestLeaveTriggersRebalance(t *testing.T) {
	t.Parallel()
	c := newTestCoordinator(t, newTestStore(t, newTestDisk(t), false))
	joins := stableGroup(t, c, "g", 3, 10*time.Second)
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = "g"
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: joins[2].MemberID}, {MemberID: "ghost"}}
	resp := c.Leave(context.Background(), req)
	if resp.ErrorCode != 0 || len(resp.Members) != 2 || resp.Members[0].ErrorCode != 0 ||
		resp.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave response %+v", resp)
	}
	waitRebalance(t, c, "g", joins[:2])
	next := rejoin(t, c, "g", joins[:2], 10*time.Second)
	assigned := syncAll(t, c, "g", next)
	if len(assigned) != 2 || describe(t, c, "g").State != "Stable" {
		t.Fatalf("after leave: %d assignments, state %s", len(assigned), describe(t, c, "g").State)
	}
	// Everyone leaves (v0 style, one at a time): the group becomes Empty with a new generation.
	for _, n := range next {
		old := kmsg.NewPtrLeaveGroupRequest()
		old.Version = 1
		old.Group, old.MemberID = "g", n.MemberID
		if r := c.Leave(context.Background(), old); r.ErrorCode != 0 {
			t.Fatalf("v1 leave: %v", kerr.ErrorForCode(r.ErrorCode))
		}
	}
	deadline := time.Now().Add(waitLong)
	for describe(t, c, "g").State != "Dead" { // no members, no offsets: the group is gone
		if time.Now().After(deadline) {
			t.Fatalf("group state %s after everyone left", describe(t, c, "g").State)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func commitReq(group, member string, gen int32, topic string, offsets ...int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 9
	req.Group, req.MemberID, req.Generation = group, member, gen
	rt := kmsg.OffsetCommitRequestTopic{Topic: topic}
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = int32(p), o
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = []kmsg.OffsetCommitRequestTopic{rt}
	return req
}

func commitCodes(resp *kmsg.OffsetCommitResponse) []int16 {
	var out []int16
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, p.ErrorCode)
		}
	}
	return out
}

func fetchOffsets(t *testing.T, c *Coordinator, group, topic string, parts ...int32) []int64 {
	t.Helper()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 7
	req.Group = group
	req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: topic, Partitions: parts}}
	resp := c.OffsetFetch(context.Background(), req)
	if resp.ErrorCode != 0 {
		t.Fatalf("OffsetFetch: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	var out []int64
	for _, p := range resp.Topics[0].Partitions {
		out = append(out, p.Offset)
	}
	return out
}

func TestOffsetCommitChecks(t *testing.T) {
	t.Parallel()
	c := newTestCoordinator(t, newTestStore(t, newTestDisk(t), true))
	joins := stableGroup(t, c, "g", 2, 10*time.Second)
	m, gen := joins[0].MemberID, joins[0].Generation
	cases := []struct {
		name   string
		req    *kmsg.OffsetCommitRequest
		want   int16
		commit bool
	}{
		{"current generation", commitReq("g", m, gen, "t", 5, 7), 0, true},
		{"stale generation", commitReq("g", m, gen-1, "t", 1, 1), kerr.IllegalGeneration.Code, false},
		{"unknown member", commitReq("g", "ghost", gen, "t", 1, 1), kerr.UnknownMemberID.Code, false},
		{"simple commit on a live group", commitReq("g", "", -1, "t", 1, 1), kerr.UnknownMemberID.Code, false},
		{"simple commit, new group", commitReq("solo", "", -1, "t", 3, 4), 0, true},
		{"generation for a missing group", commitReq("nogroup", "x", 3, "t", 3, 4), kerr.IllegalGeneration.Code, false},
	}
	for _, tc := range cases {
		codes := commitCodes(c.OffsetCommit(context.Background(), tc.req))
		if len(codes) != 2 || codes[0] != tc.want || codes[1] != tc.want {
			t.Errorf("%s: codes %v, want both %v", tc.name, codes, kerr.ErrorForCode(tc.want))
		}
	}
	if got := fetchOffsets(t, c, "g", "t", 0, 1, 2); !slices.Equal(got, []int64{5, 7, -1}) {
		t.Fatalf("g offsets %v, want [5 7 -1] (the rejected commits must not land)", got)
	}
	if got := fetchOffsets(t, c, "solo", "t", 0, 1); !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("solo offsets %v", got)
	}
	// A rebalance: the old generation's commit is refused once the new generation exists.
	lreq := kmsg.NewPtrLeaveGroupRequest()
	lreq.Version = 5
	lreq.Group = "g"
	lreq.Members = []kmsg.LeaveGroupRequestMember{{MemberID: joins[1].MemberID}}
	c.Leave(context.Background(), lreq)
	next := rejoin(t, c, "g", joins[:1], 10*time.Second)
	if codes := commitCodes(c.OffsetCommit(context.Background(), commitReq("g", m, gen, "t", 9, 9))); codes[0] != kerr.IllegalGeneration.Code {
		t.Fatalf("commit of the previous generation: %v, want ILLEGAL_GENERATION", kerr.ErrorForCode(codes[0]))
	}
	if codes := commitCodes(c.OffsetCommit(context.Background(), commitReq("g", m, next[0].Generation, "t", 9, 9))); codes[0] != kerr.RebalanceInProgress.Code {
		t.Fatalf("commit while awaiting sync: %v, want REBALANCE_IN_PROGRESS", kerr.ErrorForCode(codes[0]))
	}
	filtered := c.OffsetCommitFiltered(context.Background(), commitReq("solo", "", -1, "t", 8, 8),
		func(_ string, p int32) bool { return p == 0 })
	if codes := commitCodes(filtered); !slices.Equal(codes, []int16{0, kerr.UnknownTopicOrPartition.Code}) {
		t.Fatalf("filtered commit codes %v", codes)
	}
}

func TestOffsetFetchAllAndMultiGroup(t *testing.T) {
	t.Parallel()
	c := newTestCoordinator(t, newTestStore(t, newTestDisk(t), false))
	c.OffsetCommit(context.Background(), commitReq("a", "", -1, "t1", 1, 2))
	c.OffsetCommit(context.Background(), commitReq("a", "", -1, "t0", 3))
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "a"}, {Group: "missing", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "t1", Partitions: []int32{0}}}}}
	resp := c.OffsetFetch(context.Background(), req)
	if len(resp.Groups) != 2 {
		t.Fatalf("%d groups", len(resp.Groups))
	}
	a := resp.Groups[0]
	if len(a.Topics) != 2 || a.Topics[0].Topic != "t0" || a.Topics[1].Topic != "t1" || a.Topics[1].Partitions[1].Offset != 2 {
		t.Fatalf("all offsets of a: %+v", a.Topics)
	}
	if m := resp.Groups[1]; m.ErrorCode != 0 || m.Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("missing group: %+v", m)
	}
}

func TestCloseReleasesWaitingJoin(t *testing.T) {
	t.Parallel()
	c := newTestCoordinator(t, newTestStore(t, newTestDisk(t), false))
	joins := stableGroup(t, c, "g", 2, 10*time.Second)
	// Member 0 rejoins with new metadata (starting a rebalance); member 1 never does, so member 0 waits.
	done := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		j := joiner{group: "g", memberID: joins[0].MemberID, session: 10 * time.Second, rebalance: time.Minute, meta: "changed"}
		done <- c.Join(context.Background(), j.request(9))
	}()
	waitRebalance(t, c, "g", joins[1:])
	c.Close()
	select {
	case r := <-done:
		if r.ErrorCode != kerr.NotCoordinator.Code {
			t.Fatalf("parked join after Close: %v, want NOT_COORDINATOR", kerr.ErrorForCode(r.ErrorCode))
		}
	case <-time.After(waitLong):
		t.Fatal("Close did not release the parked join")
	}
	if code := heartbeat(c, "g", joins[1].MemberID, joins[1].Generation); code != kerr.NotCoordinator.Code {
		t.Fatalf("heartbeat after Close: %v", kerr.ErrorForCode(code))
	}
}

func TestRebalanceTimeoutDropsSilentMember(t *testing.T) {
	t.Parallel()
	c := newTestCoordinator(t, newTestStore(t, newTestDisk(t), false))
	js := []joiner{
		{group: "g", session: 10 * time.Second, rebalance: time.Second},
		{group: "g", session: 10 * time.Second, rebalance: time.Second},
	}
	joins := joinAll(t, c, 9, js...)
	syncAll(t, c, "g", joins)
	// Only the leader rejoins (a leader's rejoin starts a rebalance); the round must finish at the
	// rebalance timeout without the other member.
	again := joiner{group: "g", memberID: joins[0].LeaderID, session: 10 * time.Second, rebalance: time.Second}
	next := joinAll(t, c, 9, again)
	if len(next[0].Members) != 1 || next[0].LeaderID != next[0].MemberID {
		t.Fatalf("after rebalance timeout: leader %s, members %d", next[0].LeaderID, len(next[0].Members))
	}
}

func TestStaticMemberReplacementFencesOldID(t *testing.T) {
	t.Parallel()
	c := newTestCoordinator(t, newTestStore(t, newTestDisk(t), false))
	inst := "instance-a"
	j := joiner{group: "g", session: 10 * time.Second, rebalance: 10 * time.Second}
	req := j.request(9)
	req.InstanceID = &inst
	first := c.Join(context.Background(), req) // static members skip MEMBER_ID_REQUIRED
	if first.ErrorCode != 0 || first.MemberID == "" {
		t.Fatalf("static join: %v %q", kerr.ErrorForCode(first.ErrorCode), first.MemberID)
	}
	// The same instance restarts: it joins again without a member id and replaces the old one.
	req2 := j.request(9)
	req2.InstanceID = &inst
	again := c.Join(context.Background(), req2)
	if again.ErrorCode != 0 || again.MemberID == first.MemberID {
		t.Fatalf("static rejoin: %v %q", kerr.ErrorForCode(again.ErrorCode), again.MemberID)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Version = 4
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = "g", first.MemberID, again.Generation, &inst
	if code := c.Heartbeat(context.Background(), hb).ErrorCode; code != kerr.FencedInstanceID.Code {
		t.Fatalf("old static member heartbeat: %v, want FENCED_INSTANCE_ID", kerr.ErrorForCode(code))
	}
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Version = 4
	leave.Group = "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: &inst}}
	if r := c.Leave(context.Background(), leave); r.Members[0].ErrorCode != 0 {
		t.Fatalf("leave by instance id: %v", kerr.ErrorForCode(r.Members[0].ErrorCode))
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	d := newTestDisk(t)
	s := newTestStore(t, d, false)
	c, err := NewCoordinator(Config{Store: s, InitialRebalanceDelay: 500 * time.Millisecond,
		MinSessionTimeout: 10 * time.Millisecond, MaxSessionTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	joins := stableGroup(t, c, "g", 3, 2*time.Second) // session timers are pending at Close
	parked := make(chan struct{})
	go func() {
		defer close(parked)
		j := joiner{group: "g", memberID: joins[0].MemberID, session: time.Minute, rebalance: time.Minute, meta: "new"}
		c.Join(context.Background(), j.request(9))
	}()
	c.Close()
	<-parked
	s.Close()
	deadline := time.Now().Add(waitLong)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
