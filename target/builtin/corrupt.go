package builtin

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/kafkatrial/kafkatrial/nemesis"
	"github.com/kafkatrial/kafkatrial/nemesis/faultnet"
)

// Corrupt makes a share of the produce requests clients send to nodes arrive with one byte flipped
// (faultnet.CorruptProduce), until healed. Each call draws which requests it hits from its own
// stream of the target's seed.
func (t *Target) Corrupt(ctx context.Context, nodes []string, fraction float64) (func() error, error) {
	if _, err := t.ids(nodes); err != nil {
		return nil, err
	}
	var ids []faultnet.FaultID
	for _, n := range nodes {
		t.mu.Lock()
		draw := t.draws
		t.draws++
		t.mu.Unlock()
		rng := rand.New(rand.NewPCG(nemesis.SubSeed(t.seed, "builtin/corrupt"), draw))
		id, err := t.net.CorruptProduce(n, fraction, rng)
		if err != nil {
			_ = t.healer(ids...)()
			return nil, fmt.Errorf("builtin target: %w", err)
		}
		ids = append(ids, id)
	}
	return t.healer(ids...), nil
}
