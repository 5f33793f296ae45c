package scenarios

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// setting describes one Kafka setting a scenario may carry as a string value.
type setting struct {
	kind string // int, bool, ms
	min  int64
}

// topicSettings are the topic configs the built-in broker honours (Kafka names).
var topicSettings = map[string]setting{
	"min.insync.replicas":            {"int", 1},
	"unclean.leader.election.enable": {"bool", 0},
	"log.flush.interval.messages":    {"int", 1},
	"log.flush.interval.ms":          {"int", 0},
	"retention.ms":                   {"int", -1},
	"segment.bytes":                  {"int", 1024},
	"max.message.bytes":              {"int", 0},
}

// brokerSettings are broker-level settings: topic-config defaults plus replication and liveness timing.
var brokerSettings = func() map[string]setting {
	m := map[string]setting{
		"replica.lag.time.max.ms":          {"int", 1},
		"broker.session.timeout.ms":        {"int", 1},
		"broker.heartbeat.interval.ms":     {"int", 1},
		"default.replication.factor":       {"int", 1},
		"num.partitions":                   {"int", 1},
		"auto.create.topics.enable":        {"bool", 0},
		"group.initial.rebalance.delay.ms": {"int", 0},
	}
	for k, v := range topicSettings {
		m[k] = v
	}
	return m
}()

func validateSetting(key, value string, known map[string]setting) error {
	st, ok := known[key]
	if !ok {
		names := make([]string, 0, len(known))
		for k := range known {
			names = append(names, k)
		}
		slices.Sort(names)
		return fmt.Errorf("unknown setting (known: %s)", strings.Join(names, ", "))
	}
	switch st.kind {
	case "bool":
		if value != "true" && value != "false" {
			return fmt.Errorf("%q (want true or false)", value)
		}
	case "int":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil || n < st.min {
			return fmt.Errorf("%q (want an integer >= %d)", value, st.min)
		}
	}
	return nil
}

// Set overrides a scenario key by its Kafka name, as `kafkatrial run --set key=value` does: a producer setting
// applies to every producer, a consumer setting to every consumer, a topic config to every topic, a broker
// setting to the cluster. A few scenario keys of our own are accepted too (nodes, duration, warmup, seed,
// partitions, replication.factor, commit, processing, mode, rate, count).
func (s *Scenario) Set(key, value string) error {
	bad := func(err error) error { return fmt.Errorf("--set %s=%s: %w", key, value, err) }
	parseBool := func() (bool, error) {
		b, err := strconv.ParseBool(value)
		if err != nil {
			return false, fmt.Errorf("want true or false")
		}
		return b, nil
	}
	parseInt := func() (int, error) {
		n, err := strconv.Atoi(value)
		if err != nil {
			return 0, fmt.Errorf("want an integer")
		}
		return n, nil
	}
	parseMs := func() (Millis, error) {
		var m Millis
		if err := m.UnmarshalYAML([]byte(value)); err != nil {
			return 0, err
		}
		return m, nil
	}
	eachProducer := func(f func(p *Producer) error) error {
		if len(s.Workload.Producers) == 0 {
			return bad(fmt.Errorf("the scenario has no producers"))
		}
		for i := range s.Workload.Producers {
			if err := f(&s.Workload.Producers[i]); err != nil {
				return bad(err)
			}
		}
		return nil
	}
	eachConsumer := func(f func(c *Consumer) error) error {
		if len(s.Workload.Consumers) == 0 {
			return bad(fmt.Errorf("the scenario has no consumers"))
		}
		for i := range s.Workload.Consumers {
			if err := f(&s.Workload.Consumers[i]); err != nil {
				return bad(err)
			}
		}
		return nil
	}
	switch key {
	case "acks":
		return eachProducer(func(p *Producer) error {
			p.Acks = value
			if value != "all" && value != "-1" {
				// Kafka refuses idempotence without acks=all; turning acks down turns it off, as a user expects.
				off := false
				p.EnableIdempotence = &off
			}
			return nil
		})
	case "enable.idempotence":
		return eachProducer(func(p *Producer) error { b, err := parseBool(); p.EnableIdempotence = &b; return err })
	case "retries":
		return eachProducer(func(p *Producer) error { n, err := parseInt(); p.Retries = &n; return err })
	case "max.in.flight.requests.per.connection":
		return eachProducer(func(p *Producer) error { n, err := parseInt(); p.MaxInFlightRequestsPerConnection = n; return err })
	case "request.timeout.ms":
		return eachProducer(func(p *Producer) error { m, err := parseMs(); p.RequestTimeoutMs = m; return err })
	case "delivery.timeout.ms":
		return eachProducer(func(p *Producer) error { m, err := parseMs(); p.DeliveryTimeoutMs = m; return err })
	case "linger.ms":
		return eachProducer(func(p *Producer) error { m, err := parseMs(); p.LingerMs = m; return err })
	case "batch.size":
		return eachProducer(func(p *Producer) error { n, err := parseInt(); p.BatchSize = n; return err })
	case "compression.type":
		return eachProducer(func(p *Producer) error { p.CompressionType = value; return nil })
	case "rate":
		return eachProducer(func(p *Producer) error {
			r, err := strconv.ParseFloat(value, 64)
			p.Rate = Rate(r)
			return err
		})
	case "producer.mode":
		return eachProducer(func(p *Producer) error { p.Mode = value; return nil })
	case "enable.auto.commit":
		return eachConsumer(func(c *Consumer) error {
			b, err := parseBool()
			c.EnableAutoCommit = &b
			if b {
				c.Commit = "auto"
			} else if c.Commit == "auto" {
				c.Commit = "after-process"
			}
			return err
		})
	case "auto.commit.interval.ms":
		return eachConsumer(func(c *Consumer) error { m, err := parseMs(); c.AutoCommitIntervalMs = m; return err })
	case "isolation.level":
		return eachConsumer(func(c *Consumer) error { c.IsolationLevel = value; return nil })
	case "auto.offset.reset":
		return eachConsumer(func(c *Consumer) error { c.AutoOffsetReset = value; return nil })
	case "session.timeout.ms":
		return eachConsumer(func(c *Consumer) error { m, err := parseMs(); c.SessionTimeoutMs = m; return err })
	case "max.poll.records":
		return eachConsumer(func(c *Consumer) error {
			n, err := strconv.Atoi(value)
			if err != nil {
				return fmt.Errorf("max.poll.records: %q is not a number of records", value)
			}
			c.MaxPollRecords = n
			return nil
		})
	case "group.id":
		return eachConsumer(func(c *Consumer) error { c.GroupID = value; return nil })
	case "commit":
		return eachConsumer(func(c *Consumer) error {
			c.Commit = value
			auto := value == "auto"
			c.EnableAutoCommit = &auto
			return nil
		})
	case "processing":
		return eachConsumer(func(c *Consumer) error { c.Processing = value; return nil })
	case "nodes":
		n, err := parseInt()
		s.Cluster.Nodes = n
		if err != nil {
			return bad(err)
		}
		return nil
	case "timing":
		s.Cluster.Timing = value
		return nil
	case "image":
		s.Cluster.Image = value
		return nil
	case "seed":
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return bad(fmt.Errorf("want an integer"))
		}
		s.Seed = n
		return nil
	case "duration", "warmup":
		d, err := time.ParseDuration(value)
		if err != nil {
			return bad(fmt.Errorf("want a duration like 20s"))
		}
		if key == "duration" {
			s.Duration = d
		} else {
			s.Warmup = d
		}
		return nil
	case "partitions", "replication.factor":
		n, err := parseInt()
		if err != nil {
			return bad(err)
		}
		for i := range s.Topics {
			if key == "partitions" {
				s.Topics[i].Partitions = int32(n)
			} else {
				s.Topics[i].ReplicationFactor = int16(n)
			}
		}
		return nil
	}
	if _, ok := topicSettings[key]; ok {
		if err := validateSetting(key, value, topicSettings); err != nil {
			return bad(err)
		}
		for i := range s.Topics {
			if s.Topics[i].Configs == nil {
				s.Topics[i].Configs = map[string]string{}
			}
			s.Topics[i].Configs[key] = value
		}
		return nil
	}
	if _, ok := brokerSettings[key]; ok {
		if err := validateSetting(key, value, brokerSettings); err != nil {
			return bad(err)
		}
		if s.Cluster.Broker == nil {
			s.Cluster.Broker = map[string]string{}
		}
		s.Cluster.Broker[key] = value
		return nil
	}
	return bad(fmt.Errorf("unknown key (use a Kafka producer, consumer, topic or broker setting name, or one of nodes, timing, image, seed, duration, warmup, partitions, replication.factor, commit, processing, rate, producer.mode)"))
}
