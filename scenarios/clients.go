package scenarios

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/kafkatrial/kafkatrial/workloads"
)

// clientSet runs a scenario's producers and consumers under stable names (producer-0, consumer-1, ...) and
// carries out client faults for the nemesis: a crashed client comes back as a new process under the same name.
type clientSet struct {
	ctx   context.Context // the workload's lifetime: clients started later run until it ends
	rec   *workloads.Recorder
	seeds []string
	dial  workloads.DialFunc
	dir   string // run directory, for the direct strategy's result stores

	mu        sync.Mutex // guards producers, consumers, pcfg, ccfg, joined and stopped
	producers map[string]*workloads.Producer
	consumers map[string]*workloads.Consumer
	pcfg      map[string]workloads.ProducerConfig
	ccfg      map[string]workloads.ConsumerConfig
	joined    int
	stopped   bool
	retired   [3]int64 // ok, fail, info sends of producers no longer running
	wg        sync.WaitGroup
	errs      []error
}

func newClientSet(ctx context.Context, rec *workloads.Recorder, seeds []string, dial workloads.DialFunc, dir string) *clientSet {
	return &clientSet{ctx: ctx, rec: rec, seeds: seeds, dial: dial, dir: dir,
		producers: map[string]*workloads.Producer{}, consumers: map[string]*workloads.Consumer{},
		pcfg: map[string]workloads.ProducerConfig{}, ccfg: map[string]workloads.ConsumerConfig{}}
}

// addProducer registers and starts a producer under name.
func (c *clientSet) addProducer(name string, cfg workloads.ProducerConfig) error {
	cfg.Dial = c.dial
	c.mu.Lock()
	c.pcfg[name] = cfg
	c.mu.Unlock()
	return c.startProducer(name)
}

func (c *clientSet) startProducer(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("workload stopped")
	}
	p, err := workloads.NewProducer(c.rec, c.seeds, c.pcfg[name])
	if err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c.producers[name] = p
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := p.Run(c.ctx); err != nil && !errors.Is(err, context.Canceled) {
			c.fail(fmt.Errorf("%s: %w", name, err))
		}
	}()
	return nil
}

// addConsumer registers and starts a consumer under name. The direct strategy gets a result store of its
// own, kept across crashes: that store is what the replacement resumes from.
func (c *clientSet) addConsumer(name string, cfg workloads.ConsumerConfig) error {
	cfg.Dial = c.dial
	if cfg.Strategy == workloads.StrategyDirect && cfg.Store == nil {
		st, err := workloads.NewResultStore(filepath.Join(c.dir, "results-"+name+".json"))
		if err != nil {
			return err
		}
		cfg.Store = st
	}
	c.mu.Lock()
	c.ccfg[name] = cfg
	c.mu.Unlock()
	return c.startConsumer(name)
}

func (c *clientSet) startConsumer(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("workload stopped")
	}
	cons, err := workloads.NewConsumer(c.rec, c.seeds, c.ccfg[name])
	if err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c.consumers[name] = cons
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := cons.Run(c.ctx); err != nil && !errors.Is(err, context.Canceled) {
			c.fail(fmt.Errorf("%s: %w", name, err))
		}
	}()
	return nil
}

func (c *clientSet) fail(err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
}

// Producers and Consumers list the names client faults may target.
func (c *clientSet) Producers() []string { return c.names(true) }
func (c *clientSet) Consumers() []string { return c.names(false) }

func (c *clientSet) names(producers bool) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	if producers {
		for n := range c.pcfg {
			out = append(out, n)
		}
	} else {
		for n := range c.ccfg {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func (c *clientSet) CrashProducer(ctx context.Context, name string) error {
	c.mu.Lock()
	p := c.producers[name]
	delete(c.producers, name)
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s is not running", name)
	}
	_, err := p.Crash()
	c.retire(p)
	return err
}

// retire adds a stopped producer's counts to the totals.
func (c *clientSet) retire(p *workloads.Producer) {
	st := p.Stats()
	c.mu.Lock()
	c.retired[0] += st.OK
	c.retired[1] += st.Fail
	c.retired[2] += st.Info
	c.mu.Unlock()
}

func (c *clientSet) RestartProducer(ctx context.Context, name string) error {
	c.mu.Lock()
	_, running := c.producers[name]
	stopped := c.stopped
	c.mu.Unlock()
	if running || stopped {
		return nil // a client crashed near the end is not restarted after the workload is over
	}
	return c.startProducer(name)
}

func (c *clientSet) CrashConsumer(ctx context.Context, name string) error {
	c.mu.Lock()
	cons := c.consumers[name]
	delete(c.consumers, name)
	c.mu.Unlock()
	if cons == nil {
		return fmt.Errorf("%s is not running", name)
	}
	return cons.Crash()
}

func (c *clientSet) RestartConsumer(ctx context.Context, name string) error {
	c.mu.Lock()
	_, running := c.consumers[name]
	stopped := c.stopped
	c.mu.Unlock()
	if running || stopped {
		return nil // a client crashed near the end is not restarted after the workload is over
	}
	return c.startConsumer(name)
}

func (c *clientSet) JoinConsumer(ctx context.Context) (string, error) {
	c.mu.Lock()
	names := make([]string, 0, len(c.ccfg))
	for n := range c.ccfg {
		names = append(names, n)
	}
	if len(names) == 0 {
		c.mu.Unlock()
		return "", errors.New("no consumer to copy settings from")
	}
	sort.Strings(names)
	cfg := c.ccfg[names[0]]
	cfg.Store = nil
	c.joined++
	name := fmt.Sprintf("consumer-joined-%d", c.joined)
	c.mu.Unlock()
	return name, c.addConsumer(name, cfg)
}

func (c *clientSet) LeaveConsumer(ctx context.Context, name string) error {
	c.mu.Lock()
	cons := c.consumers[name]
	delete(c.consumers, name)
	stopped := c.stopped
	c.mu.Unlock()
	if cons == nil {
		if stopped {
			return nil // the workload already closed every consumer
		}
		return fmt.Errorf("%s is not running", name)
	}
	return cons.Close()
}

// stopProducers stops every producer, waiting up to grace for outstanding sends.
func (c *clientSet) stopProducers(grace time.Duration) {
	c.mu.Lock()
	ps := make([]*workloads.Producer, 0, len(c.producers))
	for _, p := range c.producers {
		ps = append(ps, p)
	}
	c.producers = map[string]*workloads.Producer{}
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Close(ctx); c.retire(p) }()
	}
	wg.Wait()
}

// stop closes every client still running and waits for their loops; no client starts afterwards.
func (c *clientSet) stop(grace time.Duration) error {
	c.stopProducers(grace)
	c.mu.Lock()
	c.stopped = true
	cs := make([]*workloads.Consumer, 0, len(c.consumers))
	for _, cons := range c.consumers {
		cs = append(cs, cons)
	}
	c.consumers = map[string]*workloads.Consumer{}
	c.mu.Unlock()
	for _, cons := range cs {
		_ = cons.Close()
	}
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.errs...)
}

// sendCounts sums the producers' outcomes so far, for the status line.
func (c *clientSet) sendCounts() (ok, fail, info int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ok, fail, info = c.retired[0], c.retired[1], c.retired[2]
	for _, p := range c.producers {
		s := p.Stats()
		ok, fail, info = ok+s.OK, fail+s.Fail, info+s.Info
	}
	return ok, fail, info
}
