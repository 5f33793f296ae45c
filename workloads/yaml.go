package workloads

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// UnmarshalYAML decodes a scenario's producer mapping key by key through Set, so YAML uses Kafka's names with
// Kafka's units (linger.ms: 5 is five milliseconds), unknown keys are rejected, and keys left out keep the
// values the struct held before decoding (decode over DefaultProducerConfig).
func (c *ProducerConfig) UnmarshalYAML(unmarshal func(any) error) error {
	return setAll(unmarshal, c.Set)
}

// UnmarshalYAML decodes a scenario's consumer mapping key by key through Set (see ProducerConfig's).
func (c *ConsumerConfig) UnmarshalYAML(unmarshal func(any) error) error {
	return setAll(unmarshal, c.Set)
}

// setAll decodes a mapping and applies each key in sorted order (deterministic error messages).
func setAll(unmarshal func(any) error, set func(key, value string) error) error {
	var m map[string]any
	if err := unmarshal(&m); err != nil {
		return err
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := scalarText(m[k])
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		if err := set(k, v); err != nil {
			return err
		}
	}
	return nil
}

// scalarText renders a decoded YAML value as Set expects it; a list becomes comma-separated (topics).
func scalarText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int, int64, uint64, int32, uint32:
		return fmt.Sprint(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := scalarText(e)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("unsupported value %v (%T)", v, v)
}
