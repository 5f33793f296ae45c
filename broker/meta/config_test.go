package meta

import (
	"strings"
	"testing"
)

func TestValidateConfig(t *testing.T) {
	for _, c := range []struct {
		key, value string
		want       string // "" = valid; else a substring of the error
	}{
		{ConfigCleanupPolicy, "delete", ""},
		{ConfigCleanupPolicy, "compact", "log compaction is not implemented"},
		{ConfigCleanupPolicy, "compact,delete", "log compaction is not implemented"},
		{ConfigCleanupPolicy, "shred", `must be one of`},
		{ConfigMinInsyncReplicas, "0", "must be at least 1"},
		{ConfigMinInsyncReplicas, "2", ""},
		{ConfigRetentionMs, "-1", ""},
		{ConfigMaxMessageBytes, "x", "not an integer"},
		{"retention.bytes", "1", `unknown config "retention.bytes"`},
	} {
		err := ValidateConfig(c.key, c.value)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s=%s: %v", c.key, c.value, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s=%s: got %v, want an error containing %q", c.key, c.value, err, c.want)
		case err != nil && !strings.Contains(err.Error(), c.key):
			t.Errorf("%s=%s: error %q does not name the key", c.key, c.value, err)
		}
	}
}
