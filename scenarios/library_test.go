package scenarios

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestClaimsSuiteMatchesClaimsTable checks that every row of shared/design/claims.md is a bundled scenario with
// exactly that id, whose expect map carries the row's claim.
func TestClaimsSuiteMatchesClaimsTable(t *testing.T) {
	table, err := os.ReadFile("../../shared/design/claims.md")
	if err != nil {
		t.Skipf("claims.md not beside the checkout: %v", err)
	}
	suite, err := Suite("claims")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*Scenario{}
	for _, s := range suite {
		byID[s.ID] = s
	}
	row := regexp.MustCompile("(?m)^\\| ([a-z0-9-]+) \\|[^|]*\\|[^|]*\\| (.*) \\|$")
	rows := row.FindAllStringSubmatch(string(table), -1)
	if len(rows) < 20 {
		t.Fatalf("found only %d rows in claims.md", len(rows))
	}
	for _, r := range rows {
		id, claim := r[1], r[2]
		if id == "id" {
			continue
		}
		s, ok := byID[id]
		if !ok {
			t.Errorf("claims.md row %s has no scenarios/claims/%s.yaml", id, id)
			continue
		}
		delete(byID, id)
		for _, part := range strings.Split(claim, ";") {
			m := regexp.MustCompile(`([a-z, -]+): (none|some|any)`).FindStringSubmatch(part)
			if m == nil {
				continue
			}
			names := m[1]
			if strings.Contains(names, "every log-side anomaly") {
				names = "lost-write, duplicate, inconsistent-offset, reorder, phantom, poll-skip, nonmonotonic-poll, nonlinearizable"
			}
			for _, a := range strings.Split(names, ",") {
				a = strings.TrimSpace(a)
				if a == "" {
					continue
				}
				if got := s.Expect[a]; got != m[2] {
					t.Errorf("%s: claims.md says %s: %s, scenario expects %q", id, a, m[2], got)
				}
			}
		}
	}
	for id := range byID {
		t.Errorf("scenarios/claims/%s.yaml is not a row of claims.md", id)
	}
}

func TestBundledParseAndLoad(t *testing.T) {
	all, err := Bundled()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		got, err := Load(s.ID)
		if err != nil || got.ID != s.ID {
			t.Errorf("Load(%s) = %v, %v", s.ID, got, err)
		}
	}
	if _, err := Load("no-such-scenario"); err == nil || !strings.Contains(err.Error(), "acks1-leader-kill") {
		t.Errorf("Load of an unknown id should list the bundled ids, got %v", err)
	}
}
