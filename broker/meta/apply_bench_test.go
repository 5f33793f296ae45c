package meta

import (
	"fmt"
	"testing"
)

// BenchmarkApply measures one AlterPartition on an image of 1,000 partitions against Clone alone (the
// reference in the same run): Apply copies the image, so its cost should track Clone's.
func BenchmarkApply(b *testing.B) {
	im := Empty()
	off := int64(0)
	step := func(c Command) {
		off++
		var res Result
		if im, res = Apply(im, off, c); res.ErrorCode != 0 {
			b.Fatalf("setup %s: %s", c.Kind(), res.Message)
		}
	}
	for id := int32(1); id <= 5; id++ {
		step(reg(id))
	}
	for i := range 100 {
		step(topic(fmt.Sprintf("t%d", i), 10, 3))
	}
	b.Run("clone", func(b *testing.B) {
		for b.Loop() {
			_ = im.Clone()
		}
	})
	b.Run("alter-partition", func(b *testing.B) {
		p := im.Topics["t7"].Partitions[3]
		cmd := alterISR("t7", 3, p.Leader, p.LeaderEpoch, p.PartitionEpoch, p.Replicas...)
		for b.Loop() {
			if _, res := Apply(im, off+1, cmd); res.ErrorCode != 0 {
				b.Fatal(res.Message)
			}
		}
	})
}
