package workloads

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// retry.backoff.ms reaches the client as its metadata refresh limit (franz-go's floor of 10ms applied), and
// the retry waits grow from it exponentially, within Kafka's ±20% jitter, up to retry.backoff.max.ms.
func TestBackoffSettingsReachTheClient(t *testing.T) {
	for _, tc := range []struct {
		set        map[string]string
		wantMinAge time.Duration
		wantWaits  []time.Duration // tries 1, 2, 3, ...
		producer   bool
	}{
		{nil, 100 * time.Millisecond, []time.Duration{100, 200, 400, 800, 1000, 1000}, true},
		{map[string]string{"retry.backoff.ms": "250", "retry.backoff.max.ms": "600"}, 250 * time.Millisecond,
			[]time.Duration{250, 500, 600, 600}, true},
		{map[string]string{"retry.backoff.ms": "500", "retry.backoff.max.ms": "100"}, 500 * time.Millisecond,
			[]time.Duration{500, 500, 500}, false},
		{map[string]string{"retry.backoff.ms": "0"}, minMetadataAge, []time.Duration{0, 0}, false},
	} {
		var b Backoff
		var opts []kgo.Opt
		if tc.producer {
			cfg := DefaultProducerConfig("t", 1)
			for k, v := range tc.set {
				if err := cfg.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			b, opts = cfg.Backoff, cfg.kgoOpts()
		} else {
			cfg := DefaultConsumerConfig("g", "t")
			for k, v := range tc.set {
				if err := cfg.Set(k, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			b, opts = cfg.Backoff, cfg.Backoff.kgoOpts(cfg.Seed)
		}
		cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers("127.0.0.1:1"))...)
		if err != nil {
			t.Fatalf("%v: client: %v", tc.set, err)
		}
		if got := cl.OptValue(kgo.MetadataMinAge); got != tc.wantMinAge {
			t.Errorf("%v: MetadataMinAge = %v, want %v", tc.set, got, tc.wantMinAge)
		}
		cl.Close()
		wait := b.retryWait(1)
		for i, ms := range tc.wantWaits {
			want := ms * time.Millisecond
			lo, hi := time.Duration(float64(want)*0.8), time.Duration(float64(want)*1.2)
			if got := wait(i + 1); got < lo || got > hi {
				t.Errorf("%v: retry wait of try %d = %v, want %v ±20%%", tc.set, i+1, got, want)
			}
		}
	}
}

func TestBackoffSettingsRejected(t *testing.T) {
	for key, value := range map[string]string{"retry.backoff.ms": "-1", "retry.backoff.max.ms": "3600000"} {
		cfg := DefaultProducerConfig("t", 1)
		if err := cfg.Set(key, value); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s=%s: Validate = %v, want an error naming the key", key, value, err)
		}
	}
	cfg := DefaultConsumerConfig("g", "t")
	if err := cfg.Set("retry.backoff.ms", "soon"); err == nil || !strings.Contains(err.Error(), "retry.backoff.ms") {
		t.Errorf("Set(retry.backoff.ms, soon) = %v, want an error naming the key", err)
	}
}
