package controller

import (
	"testing"

	"github.com/kafkatrial/kafkatrial/broker/meta"
)

// A paused active voter falls silent: the others elect a new leader and commit without it; at Resume it
// follows the new leader and catches up. A paused voter can still be killed, and closed cleanly.
func TestPausedActiveLosesLeadershipAndRejoins(t *testing.T) {
	cl := newCluster(t, 3)
	old := cl.active()
	paused := cl.node(old)
	paused.Pause()
	var others []*Controller
	for id := range cl.voters {
		if id != old {
			others = append(others, cl.node(id))
		}
	}
	var successor int32
	waitFor(t, "a new active controller among the running voters", func() bool {
		successor = others[0].ActiveID()
		return successor != -1 && successor != old && others[1].ActiveID() == successor
	})
	mustPropose(t, others[0], meta.Command{RegisterBroker: &meta.RegisterBroker{ID: 7, Host: "h", Port: 1}})
	if _, ok := paused.Image().Brokers[7]; ok {
		t.Fatal("the paused voter applied a command committed while it was paused")
	}

	paused.Resume()
	waitFor(t, "the resumed voter following the new leader with the command applied", func() bool {
		_, ok := paused.Image().Brokers[7]
		return ok && paused.ActiveID() != old && paused.ActiveID() == others[0].ActiveID()
	})

	// Pausing again and stopping must not hang: Kill gives up on the frozen traffic, Close resumes first.
	active := cl.active()
	follower, act := cl.follower(active), cl.node(active)
	follower.Pause()
	if err := follower.Close(); err != nil {
		t.Fatalf("clean close of a paused voter: %v", err)
	}
	act.Pause()
	act.Kill()
}
