package workloads

import (
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

func TestConfigsDecodeFromYAML(t *testing.T) {
	p := DefaultProducerConfig("t", 3)
	src := "acks: 1\nenable.idempotence: false\nlinger.ms: 25\nbatch.size: 4096\ncompression.type: lz4\nrate: 250.5\n"
	if err := yaml.Unmarshal([]byte(src), &p); err != nil {
		t.Fatal(err)
	}
	if p.Acks != "1" || p.EnableIdempotence || p.Linger != 25*time.Millisecond || p.BatchSize != 4096 ||
		p.CompressionType != "lz4" || p.Rate != 250.5 || p.RequestTimeout != 30*time.Second || p.Topic != "t" {
		t.Fatalf("decoded %+v", p)
	}
	if err := yaml.Unmarshal([]byte("lingerms: 5\n"), &p); err == nil || !strings.Contains(err.Error(), "lingerms") {
		t.Fatalf("unknown key: %v", err)
	}
	c := DefaultConsumerConfig("g", "t")
	if err := yaml.Unmarshal([]byte("topics: [a, b]\ncommit.strategy: direct\nsession.timeout.ms: 6000\n"), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Topics) != 2 || c.Topics[1] != "b" || c.Strategy != StrategyDirect || c.SessionTimeout != 6*time.Second {
		t.Fatalf("decoded %+v", c)
	}
}
