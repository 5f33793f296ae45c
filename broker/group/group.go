package group

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// state is a classic group's state (Kafka's GroupState names, shown by DescribeGroups and ListGroups).
type state int8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s state) String() string {
	switch s {
	case stateEmpty:
		return "Empty"
	case statePreparingRebalance:
		return "PreparingRebalance"
	case stateCompletingRebalance:
		return "CompletingRebalance"
	case stateStable:
		return "Stable"
	default:
		return "Dead"
	}
}

// group is one consumer group. Every field is guarded by mu (see Coordinator's doc for the lock order).
type group struct {
	c  *Coordinator
	id string

	mu           sync.Mutex
	state        state
	generation   int32
	protocolType string // set by the first member; "" for groups used only to store offsets
	protocol     string // the protocol chosen at the last completed join ("" when none)
	leader       string
	members      map[string]*member
	static       map[string]string      // instance id -> member id (KIP-345)
	pending      map[string]*time.Timer // member ids handed out with MEMBER_ID_REQUIRED, not yet joined
	joinSeq      uint64                 // orders members by first join, for leader choice
	offsets      map[TP]Committed
	// offsetPos is the store position of the commit each offset came from (absent for loaded offsets).
	offsetPos map[TP]int64
	// pendingCommits counts commits appended to the store and still waiting to be durable.
	pendingCommits int

	// The running join phase: timer fires completeJoin (or extends the initial delay).
	joinTimer      *time.Timer
	joinToken      uint64
	initialJoin    bool          // the first join of an empty group: wait the initial delay, never finish early
	newMemberAdded bool          // a member joined during the initial delay: extend it
	initialRemain  time.Duration // what is left of the rebalance timeout during the initial delay
}

// member is one member of a group.
type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []kmsg.JoinGroupRequestProtocol // in the member's preference order
	assignment       []byte
	seq              uint64
	joinVersion      int16

	joinWait chan *kmsg.JoinGroupResponse // non-nil while a JoinGroup waits for the round to complete
	syncWait chan *kmsg.SyncGroupResponse // non-nil while a SyncGroup waits for the leader's assignment
	syncVer  int16

	session      *time.Timer
	sessionToken uint64
}

func newGroup(c *Coordinator, id string) *group {
	return &group{c: c, id: id, members: map[string]*member{}, static: map[string]string{},
		pending: map[string]*time.Timer{}, offsets: map[TP]Committed{}, offsetPos: map[TP]int64{}}
}

// shutdown stops every timer and releases every waiter with NOT_COORDINATOR. Caller holds g.mu.
func (g *group) shutdown() {
	g.stopJoinTimer()
	for id, t := range g.pending {
		t.Stop()
		delete(g.pending, id)
	}
	for _, m := range g.members {
		g.stopSession(m)
		g.answerJoinErr(m, kerr.NotCoordinator.Code)
		g.answerSyncErr(m, kerr.NotCoordinator.Code)
	}
	g.state = stateDead
}

func (g *group) stopJoinTimer() {
	if g.joinTimer != nil {
		g.joinTimer.Stop()
		g.joinTimer = nil
	}
	g.joinToken++
}

// scheduleJoin arms the join phase's timer; a later arm or stop invalidates earlier ones by token.
func (g *group) scheduleJoin(d time.Duration) {
	g.stopJoinTimer()
	tok := g.joinToken
	g.joinTimer = time.AfterFunc(d, func() { g.onJoinTimer(tok) })
}

func (g *group) onJoinTimer(tok uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if tok != g.joinToken || g.state != statePreparingRebalance {
		return
	}
	g.joinTimer = nil
	if g.initialJoin && g.newMemberAdded && g.initialRemain > 0 {
		// Members are still arriving: wait another initial delay, bounded by the rebalance timeout.
		g.newMemberAdded = false
		d := min(g.c.cfg.InitialRebalanceDelay, g.initialRemain)
		g.initialRemain -= d
		g.scheduleJoin(d)
		return
	}
	g.completeJoin()
}

// heartbeat restarts m's session timer. Caller holds g.mu.
func (g *group) heartbeat(m *member) {
	g.stopSession(m)
	tok := m.sessionToken
	id := m.id
	m.session = time.AfterFunc(m.sessionTimeout, func() { g.onSessionExpired(id, tok) })
}

func (g *group) stopSession(m *member) {
	if m.session != nil {
		m.session.Stop()
		m.session = nil
	}
	m.sessionToken++
}

func (g *group) onSessionExpired(id string, tok uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := g.members[id]
	if g.state == stateDead || m == nil || m.sessionToken != tok {
		return
	}
	if m.joinWait != nil || m.syncWait != nil {
		// A member parked in JoinGroup or SyncGroup is alive by definition (Kafka's hasSatisfiedHeartbeat);
		// the rebalance timeout bounds how long it may stay parked.
		g.heartbeat(m)
		return
	}
	g.c.log.Info("group member session expired", "group", g.id, "member", id, "generation", g.generation)
	g.removeMember(m, kerr.UnknownMemberID.Code)
	g.afterMemberRemoved("session timeout of " + id)
}

// addMember adds m awaiting join and starts (or joins) a rebalance. Caller holds g.mu.
func (g *group) addMember(m *member) {
	if len(g.members) == 0 {
		g.protocolType = m.protocolType
	}
	g.joinSeq++
	m.seq = g.joinSeq
	g.members[m.id] = m
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.state == statePreparingRebalance && g.initialJoin {
		g.newMemberAdded = true
	}
	g.heartbeat(m)
	g.prepareRebalance("member " + m.id + " joined")
}

// removeMember drops m, answering its parked calls with code. Caller holds g.mu.
func (g *group) removeMember(m *member, code int16) {
	g.stopSession(m)
	g.answerJoinErr(m, code)
	g.answerSyncErr(m, code)
	delete(g.members, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
	}
}

// afterMemberRemoved moves the group on after a member left: rebalance, finish a waiting join, or go Empty.
func (g *group) afterMemberRemoved(reason string) {
	switch g.state {
	case stateStable, stateCompletingRebalance:
		g.prepareRebalance(reason)
	case statePreparingRebalance:
		g.maybeCompleteJoin()
	}
}

// prepareRebalance enters PreparingRebalance (if not already there) and arms the join timer.
func (g *group) prepareRebalance(reason string) {
	switch g.state {
	case statePreparingRebalance:
		g.maybeCompleteJoin()
		return
	case stateCompletingRebalance:
		// Members waiting in SyncGroup will never get this generation's assignment: send them back to join.
		for _, m := range g.members {
			g.answerSyncErr(m, kerr.RebalanceInProgress.Code)
		}
	}
	wasEmpty := g.state == stateEmpty
	g.state = statePreparingRebalance
	g.c.log.Info("group preparing rebalance", "group", g.id, "generation", g.generation, "reason", reason)
	rebalanceTimeout := g.maxRebalanceTimeout()
	if wasEmpty {
		g.initialJoin = true
		g.newMemberAdded = false
		d := min(g.c.cfg.InitialRebalanceDelay, rebalanceTimeout)
		g.initialRemain = rebalanceTimeout - d
		g.scheduleJoin(d)
		return
	}
	g.initialJoin = false
	g.scheduleJoin(rebalanceTimeout)
	g.maybeCompleteJoin()
}

func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// maybeCompleteJoin completes the join phase once every known member has rejoined and no member id handed
// out with MEMBER_ID_REQUIRED is still outstanding. The initial join of an empty group always waits its delay.
func (g *group) maybeCompleteJoin() {
	if g.state != statePreparingRebalance || g.initialJoin || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if m.joinWait == nil {
			return
		}
	}
	g.completeJoin()
}

// completeJoin ends the join phase: members that did not rejoin are dropped, the generation advances, a
// protocol and a leader are chosen and every waiting member gets its JoinGroup response.
func (g *group) completeJoin() {
	g.stopJoinTimer()
	g.initialJoin = false
	for _, m := range g.members {
		if m.joinWait == nil {
			g.c.log.Info("group member did not rejoin in time", "group", g.id, "member", m.id)
			g.removeMember(m, kerr.UnknownMemberID.Code)
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.state = stateEmpty
		g.protocol = ""
		g.leader = ""
		g.c.log.Info("group is empty", "group", g.id, "generation", g.generation)
		g.maybeDie()
		return
	}
	g.protocol = g.selectProtocol()
	if g.leader == "" || g.members[g.leader] == nil {
		g.leader = g.firstMember()
	}
	g.state = stateCompletingRebalance
	g.c.log.Info("group completed join", "group", g.id, "generation", g.generation, "protocol", g.protocol,
		"leader", g.leader, "members", len(g.members))
	for _, m := range g.members {
		m.assignment = nil
		resp := g.joinResponse(m, m.joinVersion)
		m.joinWait <- resp
		m.joinWait = nil
		g.heartbeat(m)
	}
}

// joinResponse is the successful JoinGroup response for m in the current generation.
func (g *group) joinResponse(m *member, version int16) *kmsg.JoinGroupResponse {
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = version
	resp.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType = &pt
	resp.Protocol = &p
	resp.LeaderID = g.leader
	resp.MemberID = m.id
	if m.id == g.leader {
		for _, mm := range g.sortedMembers() {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID = mm.id
			rm.InstanceID = mm.instanceID
			rm.ProtocolMetadata = mm.metadataFor(g.protocol)
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

// selectProtocol picks the protocol every member supports that most members prefer (Kafka's vote); ties go
// to the earlier preference of the longest-standing member, so the choice is deterministic.
func (g *group) selectProtocol() string {
	candidates := g.commonProtocols()
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if candidates[p.Name] {
				votes[p.Name]++
				break
			}
		}
	}
	best, bestVotes := "", -1
	for _, p := range g.members[g.firstMember()].protocols {
		if candidates[p.Name] && votes[p.Name] > bestVotes {
			best, bestVotes = p.Name, votes[p.Name]
		}
	}
	return best
}

// commonProtocols is the set of protocol names every member supports.
func (g *group) commonProtocols() map[string]bool {
	var common map[string]bool
	for _, m := range g.members {
		names := map[string]bool{}
		for _, p := range m.protocols {
			if common == nil || common[p.Name] {
				names[p.Name] = true
			}
		}
		common = names
	}
	return common
}

// supports reports whether a member with these protocols may join: same protocol type, and at least one
// protocol in common with every current member.
func (g *group) supports(protocolType string, protocols []kmsg.JoinGroupRequestProtocol, exclude string) bool {
	if protocolType == "" || len(protocols) == 0 {
		return false
	}
	others := 0
	for id := range g.members {
		if id != exclude {
			others++
		}
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		all := true
		for id, m := range g.members {
			if id != exclude && !slices.ContainsFunc(m.protocols, func(q kmsg.JoinGroupRequestProtocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (g *group) firstMember() string {
	best, bestSeq := "", uint64(0)
	for id, m := range g.members {
		if best == "" || m.seq < bestSeq {
			best, bestSeq = id, m.seq
		}
	}
	return best
}

func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b *member) int { return cmp.Compare(a.seq, b.seq) })
	return ms
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

func sameProtocols(a, b []kmsg.JoinGroupRequestProtocol) bool {
	return slices.EqualFunc(a, b, func(x, y kmsg.JoinGroupRequestProtocol) bool {
		return x.Name == y.Name && string(x.Metadata) == string(y.Metadata)
	})
}

func (g *group) answerJoinErr(m *member, code int16) {
	if m.joinWait == nil {
		return
	}
	resp := kmsg.NewPtrJoinGroupResponse()
	resp.Version = m.joinVersion
	resp.ErrorCode = code
	resp.MemberID = m.id
	m.joinWait <- resp
	m.joinWait = nil
}

func (g *group) answerSyncErr(m *member, code int16) {
	if m.syncWait == nil {
		return
	}
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = m.syncVer
	resp.ErrorCode = code
	m.syncWait <- resp
	m.syncWait = nil
}

// maybeDie removes an Empty group that holds no offsets and awaits no commit: nothing is left to describe.
func (g *group) maybeDie() {
	if g.state != stateEmpty || len(g.members) > 0 || len(g.pending) > 0 || len(g.offsets) > 0 || g.pendingCommits > 0 {
		return
	}
	g.stopJoinTimer()
	g.state = stateDead
	g.c.removeGroupLocked(g)
}

// describe fills a DescribeGroups entry. Caller holds g.mu.
func (g *group) describe(dg *kmsg.DescribeGroupsResponseGroup) {
	dg.State = g.state.String()
	dg.ProtocolType = g.protocolType
	if g.state == stateStable {
		dg.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		if g.state == stateStable {
			dm.ProtocolMetadata = m.metadataFor(g.protocol)
			dm.MemberAssignment = m.assignment
		}
		dg.Members = append(dg.Members, dm)
	}
}
