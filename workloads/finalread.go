package workloads

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kafkatrial/kafkatrial/history"
)

// FinalReadConfig configures the read of whole partitions after the cluster healed.
type FinalReadConfig struct {
	Topics []string `yaml:"topics"`
	// Timeout bounds the whole final read, every pass included. Default 60s.
	Timeout time.Duration `yaml:"timeout"`
	// Settle is the pause between passes: agreeing passes are at least this far apart, so a high watermark
	// that still moves now and then is seen moving. Default 200ms.
	Settle time.Duration `yaml:"settle"`
	// MaxRecords bounds the records held per pass, across partitions. Default 10,000,000.
	MaxRecords int `yaml:"max.records"`
	// Dial opens connections (nil: net.Dialer).
	Dial DialFunc `yaml:"-"`
}

// FinalReadResult is what the final read saw.
type FinalReadResult struct {
	Process int
	// Agreed is true when two consecutive passes read the same records and the end offsets did not move; false
	// when Timeout passed first (the final-read ops are then recorded as info).
	Agreed bool
	Passes int
	// Records holds, per partition, everything read by the last pass, in offset order.
	Records map[history.TopicPartition][]history.Record
}

// ErrNoAgreement is returned (wrapped) when the final read's time limit passed before two passes agreed.
var ErrNoAgreement = errors.New("final read: no two passes agreed before the time limit")

// FinalRead reads every partition of cfg.Topics from its start offset to its high watermark with a fresh client
// per pass, again and again until two passes agree and the high watermark stopped moving, or Timeout passes.
// It records one final-read op per partition (ok when agreed, info otherwise) under a new process number.
func FinalRead(ctx context.Context, rec *Recorder, seeds []string, cfg FinalReadConfig) (FinalReadResult, error) {
	if len(cfg.Topics) == 0 {
		return FinalReadResult{}, fmt.Errorf("final read: topics: none given")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Settle == 0 {
		cfg.Settle = 200 * time.Millisecond
	}
	if cfg.MaxRecords == 0 {
		cfg.MaxRecords = 10_000_000
	}
	res := FinalReadResult{Process: rec.NewProcess()}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	var prev map[history.TopicPartition][]history.Record
	var prevEnds map[history.TopicPartition]int64
	var lastErr error
	for ctx.Err() == nil {
		if res.Passes > 0 {
			select {
			case <-ctx.Done():
				continue
			case <-time.After(cfg.Settle):
			}
		}
		res.Passes++
		recs, ends, stable, err := readPass(ctx, seeds, cfg, res.Process)
		if err != nil {
			lastErr = err
			continue
		}
		if stable && prev != nil && sameEnds(prevEnds, ends) && sameRecords(prev, recs) {
			res.Agreed = true
			prev = recs
			break
		}
		prev, prevEnds = recs, ends
	}
	res.Records = prev
	t := history.OK
	var failure error
	if !res.Agreed {
		t = history.Info
		failure = fmt.Errorf("%w after %d passes in %v (last error: %v)", ErrNoAgreement, res.Passes, cfg.Timeout, lastErr)
	}
	tps := make([]history.TopicPartition, 0, len(prev))
	for tp := range prev {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b history.TopicPartition) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	for _, tp := range tps {
		// Partitions names the partition read, so an empty partition's read still counts as a read of it.
		op := history.Op{Process: res.Process, F: history.FinalRead, Topic: tp.Topic, Partition: tp.Partition, Records: prev[tp],
			Partitions: []history.Position{{Topic: tp.Topic, Partition: tp.Partition}}}
		if op.Records == nil {
			op.Records = []history.Record{} // an empty partition is still a read: keep "records":[]
		}
		if failure != nil {
			op.Error = failure.Error()
		}
		rec.pair(op, t)
	}
	if failure != nil {
		return res, failure
	}
	return res, rec.Err()
}

// readPass reads every partition once from its start to the end offset listed before the read, and returns the
// records, those end offsets, and whether they were still the end offsets after the read.
func readPass(ctx context.Context, seeds []string, cfg FinalReadConfig, process int) (recs map[history.TopicPartition][]history.Record, ends map[history.TopicPartition]int64, stable bool, err error) {
	w := newWire(cfg.Dial, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.Dialer(w.dialer),
		kgo.ClientID("kafkatrial-final-read-"+strconv.Itoa(process)), kgo.DisableClientMetrics())
	if err != nil {
		return nil, nil, false, fmt.Errorf("final read client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := listOffsets(ctx, adm.ListStartOffsets, cfg.Topics)
	if err != nil {
		return nil, nil, false, err
	}
	ends, err = listOffsets(ctx, adm.ListEndOffsets, cfg.Topics)
	if err != nil {
		return nil, nil, false, err
	}
	recs = make(map[history.TopicPartition][]history.Record, len(ends))
	assign := make(map[string]map[int32]kgo.Offset)
	want := 0
	for tp, end := range ends {
		recs[tp] = nil
		if start := starts[tp]; start < end {
			if assign[tp.Topic] == nil {
				assign[tp.Topic] = make(map[int32]kgo.Offset)
			}
			assign[tp.Topic][tp.Partition] = kgo.NewOffset().At(start)
			want++
		}
	}
	if want > 0 {
		if err := consumeTo(ctx, cl, assign, ends, recs, cfg.MaxRecords); err != nil {
			return nil, nil, false, err
		}
	}
	after, err := listOffsets(ctx, adm.ListEndOffsets, cfg.Topics)
	if err != nil {
		return nil, nil, false, err
	}
	return recs, ends, sameEnds(ends, after), nil
}

// consumeTo polls the assigned partitions until each reached its end offset.
func consumeTo(ctx context.Context, cl *kgo.Client, assign map[string]map[int32]kgo.Offset, ends map[history.TopicPartition]int64, recs map[history.TopicPartition][]history.Record, limit int) error {
	cl.AddConsumePartitions(assign)
	remaining := 0
	for _, ps := range assign {
		remaining += len(ps)
	}
	total := 0
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("final read: %d partitions not read to their end: %w", remaining, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("final read of %s/%d: %w", t, p, err) })
		if ferr != nil {
			return ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			tp := history.TopicPartition{Topic: r.Topic, Partition: r.Partition}
			end := ends[tp]
			if r.Offset >= end {
				return
			}
			recs[tp] = append(recs[tp], recordOf(r))
			total++
			if r.Offset == end-1 {
				remaining--
			}
		})
		if total > limit {
			return fmt.Errorf("final read: more than max.records=%d records", limit)
		}
	}
	return nil
}

// listOffsets lists start or end offsets of every partition of topics.
func listOffsets(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topics []string) (map[history.TopicPartition]int64, error) {
	lo, err := list(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("final read: listing offsets: %w", err)
	}
	if err := lo.Error(); err != nil {
		return nil, fmt.Errorf("final read: listing offsets: %w", err)
	}
	out := make(map[history.TopicPartition]int64)
	lo.Each(func(o kadm.ListedOffset) {
		out[history.TopicPartition{Topic: o.Topic, Partition: o.Partition}] = o.Offset
	})
	for _, t := range topics {
		if _, ok := lo[t]; !ok {
			return nil, fmt.Errorf("final read: topic %s not listed", t)
		}
	}
	return out, nil
}

func recordOf(r *kgo.Record) history.Record {
	return history.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Key: string(r.Key), Value: string(r.Value)}
}

func sameEnds(a, b map[history.TopicPartition]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for tp, o := range a {
		if bo, ok := b[tp]; !ok || bo != o {
			return false
		}
	}
	return true
}

func sameRecords(a, b map[history.TopicPartition][]history.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for tp, ra := range a {
		rb, ok := b[tp]
		if !ok || !slices.Equal(ra, rb) {
			return false
		}
	}
	return true
}
