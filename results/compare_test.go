package results

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kafkatrial/kafkatrial/checker"
)

// TestSideBySideLinksResolve writes the side-by-side page away from the run directories, as
// `kafkatrial report a b --out elsewhere/cmp.html` does, and follows every link: each must reach the file in its
// own run's directory, so the porcupine pages of different runs never share a link.
func TestSideBySideLinksResolve(t *testing.T) {
	root := t.TempDir()
	var runs []*Run
	for _, d := range []string{"suite/run-1", "suite/run-2", "other/run-3"} {
		r := sampleRun()
		r.Dir = filepath.Join(root, d)
		for _, f := range []string{ReportHTMLFile, "linearizability/trial-0.html"} {
			p := filepath.Join(r.Dir, filepath.FromSlash(f))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(d), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		runs = append(runs, r)
	}
	check := func(t *testing.T, page []byte, pageDir string) {
		t.Helper()
		var porcupine []string
		for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllSubmatch(page, -1) {
			href := string(m[1])
			target := filepath.Join(pageDir, filepath.FromSlash(href))
			if _, err := os.Stat(target); err != nil {
				t.Errorf("link %q from %s leads nowhere: %v", href, pageDir, err)
			}
			if strings.HasSuffix(href, "trial-0.html") {
				porcupine = append(porcupine, target)
			}
		}
		slices.Sort(porcupine)
		if len(porcupine) != len(runs) || len(slices.Compact(porcupine)) != len(runs) {
			t.Errorf("porcupine links %v, want one distinct page per run (%d)", porcupine, len(runs))
		}
		for _, r := range runs {
			if !bytes.Contains(page, []byte(filepath.Base(r.Dir)+"/"+ReportHTMLFile)) {
				t.Errorf("no link to %s's report", r.Dir)
			}
		}
	}
	t.Run("WriteCompare", func(t *testing.T) {
		out := filepath.Join(root, "elsewhere", "deeper", "cmp.html")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := WriteCompare(out, runs); err != nil {
			t.Fatal(err)
		}
		page, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		check(t, page, filepath.Dir(out))
	})
	t.Run("HTMLMulti into a file", func(t *testing.T) {
		out := filepath.Join(root, "cmp.html")
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := HTMLMulti(f, runs); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		page, _ := os.ReadFile(out)
		check(t, page, root)
	})
	t.Run("HTMLMulti into a buffer is relative to the working directory", func(t *testing.T) {
		var buf bytes.Buffer
		if err := HTMLMulti(&buf, runs); err != nil {
			t.Fatal(err)
		}
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		check(t, buf.Bytes(), wd)
	})
	// A run's own page keeps its links relative to its own directory.
	var own bytes.Buffer
	if err := runs[0].HTML(&own); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(own.String(), `href="linearizability/trial-0.html"`) {
		t.Errorf("report.html links outside its run directory")
	}
	if err := WriteCompare(filepath.Join(root, "none.html"), nil); err == nil {
		t.Error("a side-by-side page of no runs was written")
	}
}

// TestOutcomeWordingAgrees checks that the headline and the error a command prints say the same as the exit
// code: an undecided run is never called a failure, nor a failed one undecided.
func TestOutcomeWordingAgrees(t *testing.T) {
	v := sampleRun().Verdict // duplicate violated, nonlinearizable unknown: FAIL wins
	if h := Headline(v); h != "FAIL: duplicate violated" {
		t.Errorf("headline %q", h)
	}
	err := VerdictError("acks1-leader-kill", "out/x", v)
	if err == nil || err.Error() != "acks1-leader-kill: FAIL: duplicate violated (observed 1, expect none) (see out/x/report.md)" {
		t.Errorf("failed run: %v", err)
	}
	v.Claims = slices.DeleteFunc(v.Claims, func(c checker.Claim) bool { return c.Status == checker.StatusViolated })
	if h := Headline(v); h != "UNDECIDED: a claim could not be judged (nonlinearizable unknown)" {
		t.Errorf("undecided headline %q", h)
	}
	err = VerdictError("f3", "out/f3", v)
	if err == nil || err.Error() != "f3: UNDECIDED: a claim could not be judged: nonlinearizable unknown (observed 0, expect none): porcupine timed out (see out/f3/report.md)" {
		t.Errorf("undecided run: %v", err)
	}
	v.Claims = v.Claims[:1]
	if Headline(v) != "PASS: every claim held" || VerdictError("x", "d", v) != nil {
		t.Errorf("passed run: %q, %v", Headline(v), VerdictError("x", "d", v))
	}
}
