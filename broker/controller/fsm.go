package controller

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
	"github.com/kafkatrial/kafkatrial/broker/meta"
	"github.com/twmb/franz-go/pkg/kerr"
)

// fsm applies committed commands with meta.Apply and publishes each new image. raft calls Apply, Snapshot
// and Restore from one goroutine; mu guards the current image and the subscribers for readers.
type fsm struct {
	mu   sync.Mutex
	cur  *meta.Image
	subs map[int]chan *meta.Image
	next int
}

func newFSM(initial *meta.Image) *fsm {
	return &fsm{cur: initial, subs: map[int]chan *meta.Image{}}
}

// Apply decodes and applies one log entry; the returned meta.Result is the ApplyFuture's response.
func (f *fsm) Apply(l *raft.Log) any {
	var cmd meta.Command
	cur := f.image()
	var next *meta.Image
	var res meta.Result
	if err := json.Unmarshal(l.Data, &cmd); err != nil {
		// Every node fails the same way on the same bytes, so skipping keeps images equal.
		next, res = meta.Apply(cur, int64(l.Index), meta.Command{})
		res = meta.Result{ErrorCode: kerr.InvalidRequest.Code, Message: fmt.Sprintf("decode command at index %d: %v", l.Index, err)}
	} else {
		next, res = meta.Apply(cur, int64(l.Index), cmd)
	}
	f.publish(next)
	return res
}

func (f *fsm) image() *meta.Image {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur
}

// publish makes im current and hands it to every subscriber; a subscriber that has not taken the previous
// image gets it replaced, so slow readers see the latest and never block the log.
func (f *fsm) publish(im *meta.Image) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cur = im
	for _, ch := range f.subs {
		offer(ch, im)
	}
}

func offer(ch chan *meta.Image, im *meta.Image) {
	select {
	case ch <- im:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	select {
	case ch <- im:
	default:
	}
}

func (f *fsm) subscribe() (<-chan *meta.Image, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan *meta.Image, 1)
	ch <- f.cur
	id := f.next
	f.next++
	f.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, id)
			f.mu.Unlock()
		})
	}
}

// Snapshot captures the current image; images are immutable, so no copy is needed.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return snapshot{im: f.image()}, nil
}

// Restore replaces the image with a snapshot's (at start-up, or when the leader sends one).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var im meta.Image
	if err := json.NewDecoder(rc).Decode(&im); err != nil {
		return fmt.Errorf("decode metadata snapshot: %w", err)
	}
	if im.Brokers == nil {
		im.Brokers = map[int32]meta.Broker{}
	}
	if im.Topics == nil {
		im.Topics = map[string]*meta.Topic{}
	}
	if im.ClusterDefaults == nil {
		im.ClusterDefaults = map[string]string{}
	}
	f.publish(&im)
	return nil
}

type snapshot struct{ im *meta.Image }

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.im); err != nil {
		sink.Cancel()
		return fmt.Errorf("write metadata snapshot: %w", err)
	}
	return sink.Close()
}

func (s snapshot) Release() {}
