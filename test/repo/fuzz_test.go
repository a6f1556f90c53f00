package repo

import (
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var (
	fuzzFunc    = regexp.MustCompile(`(?m)^func (Fuzz[A-Za-z0-9_]*)\(\w+ \*testing\.F\)`)
	fuzzTargets = regexp.MustCompile(`(?m)^FUZZ_TARGETS\s*:=((?:.*\\\n)*.*)$`)
)

// TestFuzzTargetsListed: `make fuzz` runs the targets the Makefile's FUZZ_TARGETS names (go test
// takes one -fuzz pattern per package run); every fuzz function of the module must be there, and
// every entry must name a fuzz function that exists.
func TestFuzzTargetsListed(t *testing.T) {
	code := map[string]bool{}
	for _, f := range repoFiles(t) {
		if !strings.HasSuffix(f, "_test.go") {
			continue
		}
		for _, m := range fuzzFunc.FindAllStringSubmatch(readRepoFile(t, f), -1) {
			code["./"+filepath.Dir(f)+":"+m[1]] = true
		}
	}
	m := fuzzTargets.FindStringSubmatch(readRepoFile(t, "Makefile"))
	if m == nil {
		t.Fatal("Makefile: no FUZZ_TARGETS := line")
	}
	listed := map[string]bool{}
	for _, w := range strings.Fields(strings.ReplaceAll(m[1], "\\\n", " ")) {
		listed[w] = true
	}
	var missing, stale []string
	for k := range code {
		if !listed[k] {
			missing = append(missing, k)
		}
	}
	for k := range listed {
		if !code[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("fuzz functions that make fuzz does not run (add them to the Makefile's FUZZ_TARGETS): %v", missing)
	}
	if len(stale) > 0 {
		t.Errorf("FUZZ_TARGETS entries with no such fuzz function: %v", stale)
	}
	if len(code) == 0 {
		t.Error("no fuzz function found in the module")
	}
}
