package external

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// Config is the command configuration of an external cluster: how each fault kind is carried out on one
// broker, named by its id. It decodes strictly from YAML (ParseConfig); every field has a documented default.
type Config struct {
	// Commands holds one shell command per fault kind. A kind without a command is refused (Supports false).
	Commands Commands `yaml:"commands"`
	// Hosts maps broker id to the host name used for {host} and {peers}; a broker not listed uses the host of
	// its advertised address from Metadata. Brokers listed here belong to the expected set even when they are
	// down when the trial starts.
	Hosts map[int32]string `yaml:"hosts,omitempty"`
	// Timeout bounds each command run (default 30s); a command still running then is killed with its process
	// group and reported as failed.
	Timeout time.Duration `yaml:"timeout,omitempty"`
	// IsolateCutsClients says whether the isolate command also cuts clients off the node (default false: it
	// cuts the node off the other brokers only, as `iptables -A INPUT -s {peers} -j DROP` does). It decides
	// which partition shapes the command can carry out exactly.
	IsolateCutsClients bool `yaml:"isolate-cuts-clients,omitempty"`
}

// Commands are the shell commands, one per fault kind, run with `sh -c` once per node.
type Commands struct {
	Kill    string `yaml:"kill,omitempty"`    // hard kill; undone by restart
	Restart string `yaml:"restart,omitempty"` // start a node that kill, stop or power-loss took down
	Stop    string `yaml:"stop,omitempty"`    // clean (controlled) shutdown; undone by restart
	Pause   string `yaml:"pause,omitempty"`   // freeze (SIGSTOP); undone by resume
	Resume  string `yaml:"resume,omitempty"`
	// PowerLoss kills the node and drops what it had not fsynced; undone by restart.
	PowerLoss string `yaml:"power-loss,omitempty"`
	// Isolate cuts the node off every other broker ({peers}), and clients too when IsolateCutsClients; {mode}
	// is "drop" or "reset". Heal removes every network fault of the node (isolate, latency, lose-responses, corrupt).
	Isolate string `yaml:"isolate,omitempty"`
	Heal    string `yaml:"heal,omitempty"`
	// Latency adds {latency_ms} ± {jitter_ms} of delay on the node's traffic; undone by heal.
	Latency string `yaml:"latency,omitempty"`
	// LoseResponses drops the node's responses to clients; undone by heal.
	LoseResponses string `yaml:"lose-responses,omitempty"`
	// Corrupt makes {fraction} (e.g. 0.05) of the produce requests clients send to the node arrive with one byte
	// flipped anywhere after the API key (a proxy in front of the broker can do it); undone by heal.
	Corrupt string `yaml:"corrupt,omitempty"`
	// ResetConnections breaks every connection of the node once.
	ResetConnections string `yaml:"reset-connections,omitempty"`
}

// Environment and scenario keys that name the config file.
const (
	// ConfigEnv names the config file when the scenario does not.
	ConfigEnv = "KAFKATRIAL_EXTERNAL_CONFIG"
	// DefaultTimeout bounds each command.
	DefaultTimeout = 30 * time.Second
	// maxConfigBytes bounds the config file.
	maxConfigBytes = 1 << 20
)

// Placeholders every command may use. {peers} lists the hosts of the other brokers, comma-separated.
var commonPlaceholders = []string{"id", "node", "host", "port", "peers"}

// extraPlaceholders are allowed in one command kind only.
var extraPlaceholders = map[string][]string{
	"isolate": {"mode"},
	"latency": {"latency_ms", "jitter_ms"},
	"corrupt": {"fraction"},
}

// template is a parsed command: literal text and placeholders in order.
type template struct {
	key   string // the commands key it came from
	text  string
	parts []part
}

type part struct {
	lit string
	ph  string // placeholder name; "" for a literal
}

// ParseConfig decodes a config strictly: an unknown key, an unknown placeholder or a bad value is an error
// naming it and its line. source names the file in messages.
func ParseConfig(data []byte, source string) (*Config, error) {
	// The timeout decodes as text first: the YAML library's own duration errors carry no key or line.
	var raw struct {
		Commands           Commands         `yaml:"commands"`
		Hosts              map[int32]string `yaml:"hosts,omitempty"`
		Timeout            string           `yaml:"timeout,omitempty"`
		IsolateCutsClients bool             `yaml:"isolate-cuts-clients,omitempty"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data), yaml.DisallowUnknownField())
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return &Config{Timeout: DefaultTimeout}, nil
		}
		return nil, fmt.Errorf("%s: %s", source, yaml.FormatError(err, false, true))
	}
	c := Config{Commands: raw.Commands, Hosts: raw.Hosts, Timeout: DefaultTimeout, IsolateCutsClients: raw.IsolateCutsClients}
	if raw.Timeout != "" {
		d, err := time.ParseDuration(raw.Timeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s: timeout (line %d): %q is not a positive duration like 30s", source, lineOf(data, "$.timeout"), raw.Timeout)
		}
		c.Timeout = d
	}
	for id, h := range c.Hosts {
		if id < 0 {
			return nil, fmt.Errorf("%s: hosts: broker id %d is negative", source, id)
		}
		if err := checkHost(h); err != nil {
			return nil, fmt.Errorf("%s: hosts.%d (line %d): %w", source, id, lineOf(data, fmt.Sprintf("$.hosts.%d", id)), err)
		}
	}
	if _, err := c.templates(); err != nil {
		var te *templateError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%s: commands.%s (line %d): %w", source, te.key, lineOf(data, "$.commands."+te.key), err)
		}
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return &c, nil
}

// LoadConfig reads and parses a config file.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the external target's config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the external target's config %s: %w", path, err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("external target config %s is larger than %d bytes", path, maxConfigBytes)
	}
	return ParseConfig(data, path)
}

// templates parses every configured command, by its YAML key.
func (c *Config) templates() (map[string]*template, error) {
	out := map[string]*template{}
	v := reflect.ValueOf(c.Commands)
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		key, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		text := v.Field(i).String()
		if strings.TrimSpace(text) == "" {
			continue
		}
		tp, err := parseTemplate(key, text)
		if err != nil {
			return nil, err
		}
		out[key] = tp
	}
	return out, nil
}

// templateError names the command key whose template is bad.
type templateError struct {
	key string
	err error
}

func (e *templateError) Error() string { return e.err.Error() }
func (e *templateError) Unwrap() error { return e.err }

// parseTemplate splits a command into literals and placeholders. A placeholder is {name} with name made of
// lower-case letters, digits and underscores; {{ and }} stand for literal braces; any other brace is literal,
// so shell groups such as `{ a; b; }` need no escaping. An unknown placeholder is an error naming it.
func parseTemplate(key, text string) (*template, error) {
	allowed := append(slices.Clone(commonPlaceholders), extraPlaceholders[key]...)
	tp := &template{key: key, text: text}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			tp.parts = append(tp.parts, part{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if (c == '{' || c == '}') && i+1 < len(text) && text[i+1] == c {
			lit.WriteByte(c)
			i++
			continue
		}
		if c != '{' {
			lit.WriteByte(c)
			continue
		}
		end := strings.IndexByte(text[i+1:], '}')
		if end < 0 || !isPlaceholderName(text[i+1:i+1+end]) {
			lit.WriteByte(c)
			continue
		}
		name := text[i+1 : i+1+end]
		if !slices.Contains(allowed, name) {
			return nil, &templateError{key: key, err: fmt.Errorf("unknown placeholder {%s} (this command may use {%s}; write {{ and }} for literal braces)",
				name, strings.Join(allowed, "}, {"))}
		}
		flush()
		tp.parts = append(tp.parts, part{ph: name})
		i += end + 1
	}
	flush()
	return tp, nil
}

func isPlaceholderName(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z') {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// expand fills the placeholders from vars; a placeholder without a value is an error naming it.
func (tp *template) expand(vars map[string]string) (string, error) {
	var b strings.Builder
	for _, p := range tp.parts {
		if p.ph == "" {
			b.WriteString(p.lit)
			continue
		}
		v, ok := vars[p.ph]
		if !ok {
			return "", fmt.Errorf("command %s: placeholder {%s} has no value here", tp.key, p.ph)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// checkHost accepts host names and IP addresses only, so a value substituted into a shell command cannot
// change the command's meaning.
func checkHost(h string) error {
	if h == "" {
		return errors.New("empty host")
	}
	if len(h) > 253 {
		return fmt.Errorf("host %.20q... is longer than 253 characters", h)
	}
	for _, c := range []byte(h) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == ':') {
			return fmt.Errorf("host %q has character %q: only letters, digits and . - _ : are allowed", h, c)
		}
	}
	return nil
}

// lineOf returns the line of the YAML node at path, or 0 when it cannot be found.
func lineOf(data []byte, path string) int {
	p, err := yaml.PathString(path)
	if err != nil {
		return 0
	}
	n, err := p.ReadNode(bytes.NewReader(data))
	if err != nil || n == nil || n.GetToken() == nil {
		return 0
	}
	return n.GetToken().Position.Line
}

// vars returns the placeholder values common to every command on broker id.
func commonVars(id int32, host string, port int32, peers []string) map[string]string {
	v := map[string]string{
		"id":    strconv.Itoa(int(id)),
		"node":  nodeName(id),
		"host":  host,
		"peers": strings.Join(peers, ","),
	}
	if port > 0 {
		v["port"] = strconv.Itoa(int(port))
	}
	return v
}
