package broker

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Partitions and replication factor must be positive or -1 (the broker default); a real creation answers
// exactly what ValidateOnly answers, and a refused creation leaves no topic behind (acceptance report item 6:
// 0 partitions and replication factor 0 were created with the defaults).
func TestCreateTopicsCountsRealCreateMatchesValidateOnly(t *testing.T) {
	tn := startTestNode(t)
	adm := kadm.NewClient(tn.client())
	cases := []struct {
		name       string
		partitions int32
		rf         int16
		want       error
	}{
		{"zero-partitions", 0, 1, kerr.InvalidPartitions},
		{"minus-two-partitions", -2, 1, kerr.InvalidPartitions},
		{"rf-zero", 1, 0, kerr.InvalidReplicationFactor},
		{"rf-minus-two", 1, -2, kerr.InvalidReplicationFactor},
		{"rf-above-the-brokers", 1, 2, kerr.InvalidReplicationFactor},
		{"both-zero", 0, 0, kerr.InvalidPartitions},
		{"defaults", -1, -1, nil},
		{"explicit", 3, 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			validated, err := adm.ValidateCreateTopics(testCtx(t), c.partitions, c.rf, nil, c.name)
			if err != nil {
				t.Fatal(err)
			}
			createdAll, err := adm.CreateTopics(testCtx(t), c.partitions, c.rf, nil, c.name)
			if err != nil {
				t.Fatal(err)
			}
			v, created := validated[c.name], createdAll[c.name]
			if !errors.Is(v.Err, c.want) || !errors.Is(created.Err, c.want) || (c.want == nil) != (v.Err == nil && created.Err == nil) {
				t.Fatalf("partitions %d rf %d: validate-only %v (%s), create %v (%s); want %v from both",
					c.partitions, c.rf, v.Err, v.ErrMessage, created.Err, created.ErrMessage, c.want)
			}
			topics, err := adm.ListTopics(testCtx(t), c.name)
			if err != nil {
				t.Fatal(err)
			}
			exists := topics.Has(c.name) && topics[c.name].Err == nil
			if exists != (c.want == nil) {
				t.Fatalf("topic exists = %v after a creation answered %v", exists, created.Err)
			}
			if c.want == nil {
				wantParts := int(c.partitions)
				if c.partitions == -1 {
					wantParts = int(tn.cfg.Defaults.NumPartitions)
					if wantParts == 0 {
						wantParts = 1 // Config's default num.partitions
					}
				}
				if got := len(topics[c.name].Partitions); got != wantParts {
					t.Fatalf("created with %d partitions, want %d", got, wantParts)
				}
				if v.NumPartitions != int32(wantParts) || v.ReplicationFactor != 1 {
					t.Fatalf("validate-only reports %d partitions rf %d, want %d rf 1", v.NumPartitions, v.ReplicationFactor, wantParts)
				}
			}
		})
	}
}
