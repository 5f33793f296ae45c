package broker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kafkatrial/kafkatrial/broker/storage"
)

// TestGroupWireProtocol drives the group APIs over TCP with raw requests, once at the newest versions and
// once pinned to Kafka 2.3's (JoinGroup v5, pre-flexible), and checks FindCoordinator in both its single
// (v0-3) and batched (v4+) forms.
func TestGroupWireProtocol(t *testing.T) {
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	node := startGroupTestNode(t, disk)
	defer node.Close()
	for _, tc := range []struct {
		name     string
		versions *kversion.Versions
	}{
		{"newest", nil},
		{"kafka-2.3", kversion.V2_3_0()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), groupWait)
			defer cancel()
			opts := []kgo.Opt{}
			if tc.versions != nil {
				opts = append(opts, kgo.MaxVersions(tc.versions))
			}
			// One client per member: a client sends JoinGroup and SyncGroup over one connection, where a
			// blocked JoinGroup would hold up the other member's.
			cl := newGroupTestClient(t, node.Addr(), opts...)
			defer cl.Close()
			clB := newGroupTestClient(t, node.Addr(), opts...)
			defer clB.Close()
			group := "wire-" + tc.name

			fc := kmsg.NewPtrFindCoordinatorRequest()
			fc.CoordinatorKey = group
			fc.CoordinatorKeys = []string{group, "other"}
			fcr, err := fc.RequestWith(ctx, cl)
			if err != nil {
				t.Fatalf("FindCoordinator: %v", err)
			}
			if fcr.Version >= 4 {
				if len(fcr.Coordinators) != 2 || fcr.Coordinators[0].NodeID != 1 || fcr.Coordinators[0].ErrorCode != 0 {
					t.Fatalf("batched FindCoordinator: %+v", fcr.Coordinators)
				}
			} else if fcr.NodeID != 1 || fcr.ErrorCode != 0 {
				t.Fatalf("FindCoordinator v%d: node %d err %v", fcr.Version, fcr.NodeID, kerr.ErrorForCode(fcr.ErrorCode))
			}

			// Member A forms the group alone; B's join then starts a rebalance that A learns of from its
			// heartbeat, and both JoinGroups return together once A rejoined (JoinGroup blocks until then).
			join := func(cl *kgo.Client, member string, meta byte) *kmsg.JoinGroupResponse {
				for {
					req := kmsg.NewPtrJoinGroupRequest()
					req.Group, req.MemberID, req.ProtocolType = group, member, "consumer"
					req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 60000
					req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{meta}}}
					resp, err := req.RequestWith(ctx, cl)
					if err != nil {
						t.Errorf("JoinGroup: %v", err)
						return nil
					}
					if resp.ErrorCode != kerr.MemberIDRequired.Code {
						return resp
					}
					member = resp.MemberID
				}
			}
			a := join(cl, "", 0)
			if a == nil || a.ErrorCode != 0 || a.LeaderID != a.MemberID || len(a.Members) != 1 {
				t.Fatalf("first join: %+v", a)
			}
			joins := make([]*kmsg.JoinGroupResponse, 2)
			var wg sync.WaitGroup
			wg.Go(func() { joins[1] = join(clB, "", 1) })
			hbA := kmsg.NewPtrHeartbeatRequest()
			hbA.Group, hbA.MemberID, hbA.Generation = group, a.MemberID, a.Generation
			for {
				r, err := hbA.RequestWith(ctx, cl)
				if err != nil {
					t.Fatalf("Heartbeat: %v", err)
				}
				if r.ErrorCode == kerr.RebalanceInProgress.Code {
					break
				}
				if r.ErrorCode != 0 {
					t.Fatalf("Heartbeat while B joins: %v", kerr.ErrorForCode(r.ErrorCode))
				}
				time.Sleep(20 * time.Millisecond)
			}
			joins[0] = join(cl, a.MemberID, 0)
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			var leader *kmsg.JoinGroupResponse
			for _, j := range joins {
				if j.ErrorCode != 0 {
					t.Fatalf("JoinGroup: %v", kerr.ErrorForCode(j.ErrorCode))
				}
				if j.MemberID == j.LeaderID {
					leader = j
				}
			}
			if leader == nil || len(leader.Members) != 2 {
				t.Fatalf("no leader with 2 members: %+v", joins)
			}
			syncs := make([]*kmsg.SyncGroupResponse, 2)
			for i, j := range joins {
				wg.Go(func() {
					req := kmsg.NewPtrSyncGroupRequest()
					req.Group, req.MemberID, req.Generation = group, j.MemberID, j.Generation
					if j == leader {
						for _, m := range leader.Members {
							req.GroupAssignment = append(req.GroupAssignment,
								kmsg.SyncGroupRequestGroupAssignment{MemberID: m.MemberID, MemberAssignment: []byte(m.MemberID)})
						}
					}
					c := cl
					if i == 1 {
						c = clB
					}
					resp, err := req.RequestWith(ctx, c)
					if err != nil {
						t.Errorf("SyncGroup: %v", err)
						return
					}
					syncs[i] = resp
				})
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			for i, s := range syncs {
				if s.ErrorCode != 0 || string(s.MemberAssignment) != joins[i].MemberID {
					t.Fatalf("SyncGroup %d: %v, assignment %q", i, kerr.ErrorForCode(s.ErrorCode), s.MemberAssignment)
				}
			}

			hb := kmsg.NewPtrHeartbeatRequest()
			hb.Group, hb.MemberID, hb.Generation = group, joins[0].MemberID, joins[0].Generation
			if r, err := hb.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 {
				t.Fatalf("Heartbeat: %v %v", err, r)
			}

			dg := kmsg.NewPtrDescribeGroupsRequest()
			dg.Groups = []string{group}
			dr, err := dg.RequestWith(ctx, cl)
			if err != nil || len(dr.Groups) != 1 || dr.Groups[0].State != "Stable" || len(dr.Groups[0].Members) != 2 {
				t.Fatalf("DescribeGroups: %v %+v", err, dr)
			}
			if h := dr.Groups[0].Members[0].ClientHost; h != "/127.0.0.1" {
				t.Fatalf("client host %q", h)
			}
			lg := kmsg.NewPtrListGroupsRequest()
			lr, err := lg.RequestWith(ctx, cl)
			if err != nil || lr.ErrorCode != 0 {
				t.Fatalf("ListGroups: %v %+v", err, lr)
			}
			found := false
			for _, g := range lr.Groups {
				found = found || g.Group == group
			}
			if !found {
				t.Fatalf("ListGroups lacks %s: %+v", group, lr.Groups)
			}

			oc := kmsg.NewPtrOffsetCommitRequest()
			oc.Group, oc.MemberID, oc.Generation = group, joins[0].MemberID, joins[0].Generation
			oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "no-such-topic",
				Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 5, LeaderEpoch: -1}}}}
			ocr, err := oc.RequestWith(ctx, cl)
			if err != nil || ocr.Topics[0].Partitions[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
				t.Fatalf("commit to a missing topic: %v %+v", err, ocr)
			}

			leave := kmsg.NewPtrLeaveGroupRequest()
			leave.Group, leave.MemberID = group, joins[1].MemberID
			leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: joins[1].MemberID}}
			lv, err := leave.RequestWith(ctx, cl)
			if err != nil || lv.ErrorCode != 0 || (lv.Version >= 3 && lv.Members[0].ErrorCode != 0) {
				t.Fatalf("LeaveGroup: %v %+v", err, lv)
			}
			if r, err := hb.RequestWith(ctx, cl); err != nil || r.ErrorCode != kerr.RebalanceInProgress.Code {
				t.Fatalf("Heartbeat after a leave: %v %v, want REBALANCE_IN_PROGRESS", err, r)
			}
		})
	}
}
