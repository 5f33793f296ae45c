package external

import (
	"strings"
	"testing"
	"time"
)

func TestTemplateExpand(t *testing.T) {
	vars := map[string]string{"id": "2", "node": "node-2", "host": "kafka-2.internal", "port": "9092",
		"peers": "kafka-1.internal,kafka-3.internal", "mode": "drop", "latency_ms": "50", "jitter_ms": "10"}
	cases := []struct {
		name, key, text, want, wantErr string
	}{
		{name: "no placeholders", key: "kill", text: "true", want: "true"},
		{name: "host", key: "kill", text: "ssh {host} sudo systemctl kill -s KILL kafka",
			want: "ssh kafka-2.internal sudo systemctl kill -s KILL kafka"},
		{name: "every common placeholder", key: "restart", text: "{id} {node} {host}:{port} [{peers}]",
			want: "2 node-2 kafka-2.internal:9092 [kafka-1.internal,kafka-3.internal]"},
		{name: "repeated placeholder", key: "stop", text: "{id}{id}", want: "22"},
		{name: "escaped braces", key: "kill", text: "awk '{{print $1}}' {{host}}", want: "awk '{print $1}' {host}"},
		{name: "shell group is literal", key: "kill", text: "{ echo {id}; }", want: "{ echo 2; }"},
		{name: "shell variable with upper case is literal", key: "kill", text: "echo ${HOME}", want: "echo ${HOME}"},
		{name: "unclosed brace is literal", key: "kill", text: "echo {id", want: "echo {id"},
		{name: "mode in isolate", key: "isolate", text: "ssh {host} iptables -A INPUT -s {peers} -j {mode}",
			want: "ssh kafka-2.internal iptables -A INPUT -s kafka-1.internal,kafka-3.internal -j drop"},
		{name: "latency", key: "latency", text: "tc qdisc add dev eth0 root netem delay {latency_ms}ms {jitter_ms}ms",
			want: "tc qdisc add dev eth0 root netem delay 50ms 10ms"},
		{name: "unknown placeholder", key: "kill", text: "ssh {hostname} true", wantErr: "unknown placeholder {hostname}"},
		{name: "mode outside isolate", key: "kill", text: "echo {mode}", wantErr: "unknown placeholder {mode}"},
		{name: "latency outside latency", key: "heal", text: "echo {latency_ms}", wantErr: "unknown placeholder {latency_ms}"},
		{name: "shell variable in lower case needs escaping", key: "kill", text: "echo ${id_file}", wantErr: "unknown placeholder {id_file}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp, err := parseTemplate(c.key, c.text)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("parseTemplate(%q) error = %v, want one containing %q", c.text, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseTemplate(%q): %v", c.text, err)
			}
			got, err := tp.expand(vars)
			if err != nil {
				t.Fatalf("expand: %v", err)
			}
			if got != c.want {
				t.Errorf("expand(%q) = %q, want %q", c.text, got, c.want)
			}
		})
	}
}

func TestTemplateExpandMissingValue(t *testing.T) {
	tp, err := parseTemplate("kill", "ssh {host} kill {port}")
	if err != nil {
		t.Fatal(err)
	}
	_, err = tp.expand(map[string]string{"host": "h"})
	if err == nil || !strings.Contains(err.Error(), "{port}") {
		t.Fatalf("expand without port: %v, want an error naming {port}", err)
	}
}

const exampleConfig = `commands:
  kill:    "ssh {host} sudo systemctl kill -s KILL kafka"
  restart: "ssh {host} sudo systemctl start kafka"
  stop:    "ssh {host} sudo systemctl stop kafka"
  pause:   "ssh {host} sudo systemctl kill -s STOP kafka"
  resume:  "ssh {host} sudo systemctl kill -s CONT kafka"
  power-loss: "ssh {host} 'echo b | sudo tee /proc/sysrq-trigger'"
  isolate: "ssh {host} sudo iptables -A INPUT -s {peers} -j DROP"   # optional
  heal:    "ssh {host} sudo iptables -F"
hosts:
  1: kafka-1.internal
  2: 10.0.0.2
timeout: 45s
`

func TestParseConfigExample(t *testing.T) {
	c, err := ParseConfig([]byte(exampleConfig), "external.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != 45*time.Second {
		t.Errorf("timeout = %v, want 45s", c.Timeout)
	}
	if c.Hosts[1] != "kafka-1.internal" || c.Hosts[2] != "10.0.0.2" {
		t.Errorf("hosts = %v", c.Hosts)
	}
	tm, err := c.templates()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kill", "restart", "stop", "pause", "resume", "power-loss", "isolate", "heal"} {
		if tm[k] == nil {
			t.Errorf("command %s not parsed", k)
		}
	}
	for _, k := range []string{"latency", "lose-responses", "reset-connections"} {
		if tm[k] != nil {
			t.Errorf("command %s parsed but not configured", k)
		}
	}
	shipped, err := LoadConfig("example.yaml")
	if err != nil {
		t.Fatalf("the shipped example: %v", err)
	}
	if shipped.Commands.Latency == "" || shipped.Hosts[3] != "kafka-3.internal" {
		t.Errorf("the shipped example parsed as %+v", shipped)
	}
	empty, err := ParseConfig(nil, "empty.yaml")
	if err != nil || empty.Timeout != DefaultTimeout {
		t.Errorf("empty config = %+v, %v; want the default timeout", empty, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // every one must be in the message
	}{
		{name: "unknown command key", yaml: "commands:\n  kill: \"true\"\n  kil: \"true\"\n",
			want: []string{"bad.yaml", "kil", "[3:"}},
		{name: "unknown top-level key", yaml: "commands:\n  kill: \"true\"\ntimeuot: 5s\n",
			want: []string{"timeuot", "[3:"}},
		{name: "unknown placeholder", yaml: "commands:\n  kill: \"true\"\n  stop: \"ssh {hots} stop\"\n",
			want: []string{"commands.stop", "line 3", "{hots}"}},
		{name: "placeholder of another kind", yaml: "commands:\n  kill: \"echo {latency_ms}\"\n",
			want: []string{"commands.kill", "line 2", "{latency_ms}"}},
		{name: "bad host", yaml: "hosts:\n  1: \"a;rm -rf /\"\n",
			want: []string{"hosts.1", "line 2", "';'"}},
		{name: "negative timeout", yaml: "timeout: -5s\n", want: []string{"timeout", "positive", "line 1"}},
		{name: "not a duration", yaml: "timeout: soon\n", want: []string{"bad.yaml", "timeout", "line 1", "soon"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.yaml), "bad.yaml")
			if err == nil {
				t.Fatalf("ParseConfig accepted:\n%s", c.yaml)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
