package broker

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kafkatrial/kafkatrial/broker/storage"
)

// TestGroupOffsetsSurviveKill: offsets committed (simple commits, generation -1) survive a hard Kill of the
// node and a restart on the same disk: the store's writes sit in the page cache, which a process crash
// keeps. The store is the node's __consumer_offsets partitions (replication factor 1 on a single node); a
// power loss may drop commits unless log.flush.interval.messages=1, as for any log.
func TestGroupOffsetsSurviveKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), groupWait)
	defer cancel()
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	node := startGroupTestNode(t, disk)
	cl := newGroupTestClient(t, node.Addr())
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "killed"); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	offs := kadm.Offsets{}
	offs.AddOffset("killed", 0, 7, -1)
	offs.AddOffset("killed", 1, 11, -1)
	resp, err := adm.CommitOffsets(ctx, "g-kill", offs)
	if err != nil || resp.Error() != nil {
		t.Fatalf("CommitOffsets: %v %v", err, resp.Error())
	}
	cl.Close()
	node.Kill()

	node = startGroupTestNode(t, disk)
	defer node.Close()
	cl = newGroupTestClient(t, node.Addr())
	defer cl.Close()
	adm = kadm.NewClient(cl)
	fetched, err := adm.FetchOffsets(ctx, "g-kill")
	if err != nil || fetched.Error() != nil {
		t.Fatalf("FetchOffsets: %v %v", err, fetched.Error())
	}
	for p, want := range map[int32]int64{0: 7, 1: 11} {
		if o, ok := fetched.Lookup("killed", p); !ok || o.At != want {
			t.Fatalf("partition %d after kill and restart: %+v, want %d", p, o, want)
		}
	}
}
