package results

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/kafkatrial/kafkatrial/checker"
)

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes one testsuite per run and one testcase per claim. A violated guarantee or a demonstration
// that did not reproduce is a failure; an unknown claim is an error (never a pass); reported claims pass.
func WriteJUnit(w io.Writer, runs []*Run) error {
	all := junitSuites{Name: "kafkatrial"}
	for _, r := range runs {
		v := r.Verdict
		s := junitSuite{Name: "kafkatrial." + r.Meta.Scenario, Properties: []junitProperty{
			{"seed", fmt.Sprint(r.Meta.Seed)}, {"reproduce", r.Meta.Reproduce}, {"linearizability", v.Linearizability.Result},
		}}
		for _, c := range v.Claims {
			tc := junitCase{Name: fmt.Sprintf("%s: %s", c.Anomaly, c.Expect), Classname: r.Meta.Scenario}
			msg := fmt.Sprintf("%s: expected %s, observed %d (%s)", c.Anomaly, c.Expect, c.Observed, c.Status)
			text := exampleText(v.Anomalies[c.Anomaly]) + "\nReproduce: " + r.Meta.Reproduce
			switch c.Status {
			case checker.StatusViolated, checker.StatusNotReproduced:
				tc.Failure = &junitProblem{Message: msg, Type: c.Status, Text: text}
				s.Failures++
			case checker.StatusUnknown:
				tc.Error = &junitProblem{Message: msg + ": " + c.Reason, Type: c.Status, Text: text}
				s.Errors++
			default:
				tc.SystemOut = msg
			}
			s.Cases = append(s.Cases, tc)
		}
		s.Tests = len(s.Cases)
		all.Tests += s.Tests
		all.Failures += s.Failures
		all.Errors += s.Errors
		all.Suites = append(all.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(all); err != nil {
		return fmt.Errorf("writing junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func exampleText(a *checker.Anomaly) string {
	if a == nil || len(a.Examples) == 0 {
		return "no examples"
	}
	var b strings.Builder
	for _, e := range a.Examples {
		fmt.Fprintf(&b, "%s/%d: %s (history ops %s)\n", e.Topic, e.Partition, e.Detail, joinInts(e.Ops))
	}
	return b.String()
}
