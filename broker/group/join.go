package group

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Join handles JoinGroup v0..v9. It blocks until the join phase completes (every known member rejoined, the
// rebalance timeout passed, or the initial delay of a new group ran out), or ctx ends. Protocol metadata is
// copied, so the request's buffers may be reused after it returns. Deliberate difference from Kafka: a static
// member (group.instance.id) that rejoins with a new member id always triggers a rebalance (Kafka may hand it
// the old assignment without one), and SkipAssignment is never set.
func (c *Coordinator) Join(ctx context.Context, req *kmsg.JoinGroupRequest) *kmsg.JoinGroupResponse {
	fail := func(code int16) *kmsg.JoinGroupResponse {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = code
		resp.MemberID = req.MemberID
		return resp
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	if session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout {
		return fail(kerr.InvalidSessionTimeout.Code)
	}
	rebalance := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	if req.Version == 0 || rebalance <= 0 {
		rebalance = session // v0 has no rebalance timeout: Kafka uses the session timeout
	}
	g, code := c.lockGroup(req.Group, req.MemberID == "")
	if code != 0 {
		return fail(code)
	}
	if g == nil {
		return fail(kerr.UnknownMemberID.Code)
	}
	ci := clientInfoFrom(ctx)
	wait, resp := g.join(req, ci, session, rebalance)
	g.maybeDie()
	g.mu.Unlock()
	if wait == nil {
		if resp.ErrorCode != 0 && resp.MemberID == "" {
			resp.MemberID = req.MemberID
		}
		return resp
	}
	select {
	case r := <-wait:
		return r
	case <-ctx.Done():
		// The connection is gone; the member stays parked until the round completes or its session ends.
		return fail(kerr.RebalanceInProgress.Code)
	}
}

// join runs JoinGroup under g.mu: it returns either a channel the answer will arrive on, or the answer.
func (g *group) join(req *kmsg.JoinGroupRequest, ci ClientInfo, session, rebalance time.Duration) (chan *kmsg.JoinGroupResponse, *kmsg.JoinGroupResponse) {
	fail := func(code int16) (chan *kmsg.JoinGroupResponse, *kmsg.JoinGroupResponse) {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = code
		return nil, resp
	}
	if !g.supports(req.ProtocolType, req.Protocols, req.MemberID) {
		return fail(kerr.InconsistentGroupProtocol.Code)
	}
	newMember := func(id string) *member {
		m := &member{id: id, clientID: ci.ClientID, clientHost: ci.Host, sessionTimeout: session,
			rebalanceTimeout: rebalance, protocolType: req.ProtocolType, protocols: copyProtocols(req.Protocols)}
		if req.InstanceID != nil {
			inst := *req.InstanceID
			m.instanceID = &inst
		}
		return m
	}
	park := func(m *member) chan *kmsg.JoinGroupResponse {
		if m.joinWait != nil {
			// A retried join (new connection) replaces the earlier one, whose client is no longer listening.
			g.answerJoinErr(m, kerr.RebalanceInProgress.Code)
		}
		ch := make(chan *kmsg.JoinGroupResponse, 1)
		m.joinWait = ch
		m.joinVersion = req.Version
		return ch
	}

	if req.MemberID == "" {
		if len(g.members)+len(g.pending) >= g.c.cfg.MaxGroupSize {
			return fail(kerr.GroupMaxSizeReached.Code)
		}
		id := newMemberID(ci.ClientID)
		if req.InstanceID == nil && req.Version >= 4 {
			// KIP-394: hand out the id first, so a client that never comes back costs only a pending entry.
			g.pending[id] = time.AfterFunc(session, func() { g.onPendingExpired(id) })
			_, resp := fail(kerr.MemberIDRequired.Code)
			resp.MemberID = id
			return nil, resp
		}
		if req.InstanceID != nil {
			if old := g.members[g.static[*req.InstanceID]]; old != nil {
				g.c.log.Info("static member replaced", "group", g.id, "instance", *req.InstanceID, "old", old.id, "new", id)
				g.removeMember(old, kerr.FencedInstanceID.Code)
			}
		}
		m := newMember(id)
		ch := park(m)
		g.addMember(m)
		return ch, nil
	}

	if t, ok := g.pending[req.MemberID]; ok {
		t.Stop()
		delete(g.pending, req.MemberID)
		m := newMember(req.MemberID)
		ch := park(m)
		g.addMember(m)
		return ch, nil
	}
	if req.InstanceID != nil {
		if id, ok := g.static[*req.InstanceID]; ok && id != req.MemberID {
			return fail(kerr.FencedInstanceID.Code)
		}
	}
	m := g.members[req.MemberID]
	if m == nil {
		return fail(kerr.UnknownMemberID.Code)
	}
	update := func() chan *kmsg.JoinGroupResponse {
		m.protocols = copyProtocols(req.Protocols)
		m.sessionTimeout, m.rebalanceTimeout = session, rebalance
		m.clientID, m.clientHost = ci.ClientID, ci.Host
		ch := park(m)
		g.heartbeat(m)
		g.prepareRebalance("member " + m.id + " rejoined")
		return ch
	}
	switch g.state {
	case statePreparingRebalance:
		return update(), nil
	case stateCompletingRebalance:
		if sameProtocols(m.protocols, req.Protocols) {
			// The member lost our answer: repeat it.
			g.heartbeat(m)
			return nil, g.joinResponse(m, req.Version)
		}
		return update(), nil
	case stateStable:
		if m.id == g.leader || !sameProtocols(m.protocols, req.Protocols) {
			// A leader's rejoin asks for a new assignment (e.g. its topics gained partitions).
			return update(), nil
		}
		g.heartbeat(m)
		return nil, g.joinResponse(m, req.Version)
	default:
		return fail(kerr.UnknownMemberID.Code)
	}
}

func (g *group) onPendingExpired(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.pending[id]; !ok || g.state == stateDead {
		return
	}
	delete(g.pending, id)
	g.maybeCompleteJoin()
	g.maybeDie()
}

func copyProtocols(ps []kmsg.JoinGroupRequestProtocol) []kmsg.JoinGroupRequestProtocol {
	out := make([]kmsg.JoinGroupRequestProtocol, len(ps))
	for i, p := range ps {
		out[i] = kmsg.JoinGroupRequestProtocol{Name: p.Name, Metadata: append([]byte(nil), p.Metadata...)}
	}
	return out
}

// Sync handles SyncGroup v0..v5: the leader's assignment is stored and handed to every member; followers
// wait for it (until ctx ends or the group goes back to rebalancing).
func (c *Coordinator) Sync(ctx context.Context, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	fail := func(code int16) *kmsg.SyncGroupResponse {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return resp
	}
	if req.Group == "" {
		return fail(kerr.InvalidGroupID.Code)
	}
	g, code := c.lockGroup(req.Group, false)
	if code != 0 {
		return fail(code)
	}
	if g == nil {
		return fail(kerr.UnknownMemberID.Code)
	}
	wait, code, resp := g.sync(req)
	g.mu.Unlock()
	switch {
	case code != 0:
		return fail(code)
	case resp != nil:
		return resp
	}
	select {
	case r := <-wait:
		return r
	case <-ctx.Done():
		return fail(kerr.RebalanceInProgress.Code)
	}
}

func (g *group) sync(req *kmsg.SyncGroupRequest) (chan *kmsg.SyncGroupResponse, int16, *kmsg.SyncGroupResponse) {
	m, code := g.validateMember(req.MemberID, req.InstanceID, req.Generation)
	if code != 0 {
		return nil, code, nil
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol) {
		return nil, kerr.InconsistentGroupProtocol.Code, nil
	}
	switch g.state {
	case statePreparingRebalance:
		return nil, kerr.RebalanceInProgress.Code, nil
	case stateStable:
		g.heartbeat(m)
		return nil, 0, g.syncResponse(m, req.Version)
	case stateCompletingRebalance:
	default:
		return nil, kerr.UnknownMemberID.Code, nil
	}
	g.answerSyncErr(m, kerr.RebalanceInProgress.Code) // a retried sync replaces the earlier one
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	m.syncWait, m.syncVer = ch, req.Version
	g.heartbeat(m)
	if m.id == g.leader {
		for _, a := range req.GroupAssignment {
			if mm := g.members[a.MemberID]; mm != nil {
				mm.assignment = append([]byte(nil), a.MemberAssignment...)
			}
		}
		g.state = stateStable
		g.c.log.Info("group stable", "group", g.id, "generation", g.generation, "members", len(g.members))
		for _, mm := range g.members {
			if mm.syncWait != nil {
				mm.syncWait <- g.syncResponse(mm, mm.syncVer)
				mm.syncWait = nil
			}
		}
	}
	return ch, 0, nil
}

func (g *group) syncResponse(m *member, version int16) *kmsg.SyncGroupResponse {
	resp := kmsg.NewPtrSyncGroupResponse()
	resp.Version = version
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// validateMember applies Kafka's checks shared by SyncGroup, Heartbeat and OffsetCommit: fenced static
// instance, unknown member, stale generation.
func (g *group) validateMember(memberID string, instanceID *string, generation int32) (*member, int16) {
	if instanceID != nil {
		if id, ok := g.static[*instanceID]; ok && id != memberID {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	if generation != g.generation {
		return nil, kerr.IllegalGeneration.Code
	}
	return m, 0
}

// Heartbeat handles Heartbeat v0..v4: it keeps the member's session alive and says REBALANCE_IN_PROGRESS
// while the group prepares a rebalance.
func (c *Coordinator) Heartbeat(_ context.Context, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g, code := c.lockGroup(req.Group, false)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	if g == nil {
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp
	}
	defer g.mu.Unlock()
	m, code := g.validateMember(req.MemberID, req.InstanceID, req.Generation)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	g.heartbeat(m)
	switch g.state {
	case statePreparingRebalance:
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	case stateCompletingRebalance, stateStable:
	default:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	}
	return resp
}

// Leave handles LeaveGroup v0..v5 (v3+ removes a batch of members, by member id or group.instance.id).
func (c *Coordinator) Leave(_ context.Context, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	leaving := req.Members
	if req.Version < 3 {
		leaving = []kmsg.LeaveGroupRequestMember{{MemberID: req.MemberID}}
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	g, code := c.lockGroup(req.Group, false)
	if code != 0 {
		resp.ErrorCode = code
		return resp
	}
	codes := make([]int16, len(leaving))
	if g == nil {
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
	} else {
		removed := false
		for i, l := range leaving {
			var gone bool
			codes[i], gone = g.leave(l)
			removed = removed || gone
		}
		if removed {
			g.afterMemberRemoved("members left")
		} else {
			g.maybeCompleteJoin() // a pending member may have been all the join phase waited for
		}
		g.maybeDie()
		g.mu.Unlock()
	}
	if req.Version < 3 {
		resp.ErrorCode = codes[0]
		return resp
	}
	for i, l := range leaving {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID, rm.ErrorCode = l.MemberID, l.InstanceID, codes[i]
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

// leave removes one member (reporting whether a full member went); caller holds g.mu and moves the group
// on afterwards.
func (g *group) leave(l kmsg.LeaveGroupRequestMember) (int16, bool) {
	id := l.MemberID
	if l.InstanceID != nil {
		sid, ok := g.static[*l.InstanceID]
		if !ok {
			return kerr.UnknownMemberID.Code, false
		}
		if id != "" && id != sid {
			return kerr.FencedInstanceID.Code, false
		}
		id = sid
	} else if t, ok := g.pending[id]; ok {
		t.Stop()
		delete(g.pending, id)
		return 0, false
	}
	m := g.members[id]
	if m == nil {
		return kerr.UnknownMemberID.Code, false
	}
	g.c.log.Info("group member left", "group", g.id, "member", id)
	g.removeMember(m, kerr.UnknownMemberID.Code)
	return 0, true
}
