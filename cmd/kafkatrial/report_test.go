package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `report` with several runs writes the side-by-side page where --out says, creating its folder, and the
// page's links to each run resolve from there.
func TestReportSideBySideIntoANewFolder(t *testing.T) {
	var dirs []string
	for _, name := range []string{"lost-write", "lost-write-near-miss"} {
		dir := runDir(t, golden(t, name), lostWriteGuarantee)
		var stdout, stderr bytes.Buffer
		if err := runCheck(&stdout, &stderr, dir, 0); err != nil && name == "lost-write-near-miss" {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	out := filepath.Join(t.TempDir(), "not", "yet", "compare.html")
	cmd := newReportCmd()
	cmd.SetArgs(append(dirs, "--out", out))
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("report into a new folder: %v", err)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		rel, err := filepath.Rel(filepath.Dir(out), filepath.Join(d, "report.html"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(page), `href="`+filepath.ToSlash(rel)+`"`) {
			t.Errorf("the page does not link %s as %s", d, rel)
		}
	}
}
