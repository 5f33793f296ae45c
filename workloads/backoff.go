package workloads

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Backoff holds Kafka's client retry settings, shared by producers and consumers. Kafka's clients wait
// retry.backoff.ms before retrying a failed request and before refreshing metadata again, growing the wait
// exponentially (±20% jitter) up to retry.backoff.max.ms. franz-go's own defaults are slower to find a new
// leader: a metadata refresh at most every 5s (kgo.MetadataMinAge), so a sync producer stalled about five
// seconds after every leader change. The workloads map both settings onto the client so it follows a moved
// leader as quickly as Kafka's clients do with the same settings.
type Backoff struct {
	// RetryBackoff [retry.backoff.ms] is the first retry wait and the minimum time between metadata refreshes
	// (kgo.RetryBackoffFn, kgo.MetadataMinAge; franz-go refuses a metadata age below 10ms, so the refresh
	// interval is at least that). Default 100ms, Kafka's.
	RetryBackoff time.Duration `yaml:"retry.backoff.ms"`
	// RetryBackoffMax [retry.backoff.max.ms] caps the exponential retry wait; a value below retry.backoff.ms
	// means a constant retry.backoff.ms (as in Kafka). Default 1s, Kafka's.
	RetryBackoffMax time.Duration `yaml:"retry.backoff.max.ms"`
}

// Kafka's client defaults (CommonClientConfigs).
const (
	DefaultRetryBackoff    = 100 * time.Millisecond
	DefaultRetryBackoffMax = time.Second
	// minMetadataAge is the smallest kgo.MetadataMinAge franz-go accepts.
	minMetadataAge = 10 * time.Millisecond
	// retryBackoffLimit bounds both settings: a longer wait is a mistake, not a trial profile.
	retryBackoffLimit = 10 * time.Minute
)

// DefaultBackoff returns Kafka's defaults.
func DefaultBackoff() Backoff {
	return Backoff{RetryBackoff: DefaultRetryBackoff, RetryBackoffMax: DefaultRetryBackoffMax}
}

// validate rejects bad values with a message naming the key.
func (b Backoff) validate() error {
	switch {
	case b.RetryBackoff < 0 || b.RetryBackoff > retryBackoffLimit:
		return fmt.Errorf("retry.backoff.ms: %v, want 0..%v", b.RetryBackoff, retryBackoffLimit)
	case b.RetryBackoffMax < 0 || b.RetryBackoffMax > retryBackoffLimit:
		return fmt.Errorf("retry.backoff.max.ms: %v, want 0..%v", b.RetryBackoffMax, retryBackoffLimit)
	}
	return nil
}

// set assigns key if it is one of Backoff's; ok=false means the key is not a backoff setting.
func (b *Backoff) set(key, value string) (ok bool, err error) {
	switch key {
	case "retry.backoff.ms":
		return true, setMillis(&b.RetryBackoff, value)
	case "retry.backoff.max.ms":
		return true, setMillis(&b.RetryBackoffMax, value)
	}
	return false, nil
}

// kgoOpts maps the settings onto the client. seed drives the jitter, so one trial seed gives one sequence
// of waits per client (the network's timing still varies).
func (b Backoff) kgoOpts(seed uint64) []kgo.Opt {
	return []kgo.Opt{
		kgo.RetryBackoffFn(b.retryWait(seed)),
		kgo.MetadataMinAge(max(b.RetryBackoff, minMetadataAge)),
	}
}

// retryWait is Kafka's ExponentialBackoff(retry.backoff.ms, 2, retry.backoff.max.ms, 0.2) as a franz-go
// backoff function (tries counts from 1). The client calls it from many goroutines, hence the lock.
func (b Backoff) retryWait(seed uint64) func(int) time.Duration {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 0x5eed_bac0ff))
	limit := max(b.RetryBackoffMax, b.RetryBackoff)
	return func(tries int) time.Duration {
		wait := b.RetryBackoff
		for i := 1; i < tries && wait < limit; i++ {
			wait *= 2
		}
		wait = min(wait, limit)
		mu.Lock()
		jitter := 0.8 + 0.4*rng.Float64()
		mu.Unlock()
		return time.Duration(float64(wait) * jitter)
	}
}
