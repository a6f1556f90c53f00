package repo

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// workPhrases are words about how the work on ecloud was organised rather than about ecloud:
// tracker references, numbered sessions, rounds or stops of work, and promises tied to some other
// piece of work being merged. The repository speaks to users about the product only.
var workPhrases = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`(?i)\bissues?\s*#?\d+`), "a tracker reference"},
	{regexp.MustCompile(`(?i)\b(the|this|that|an?)\s+issue('s)?\b`), "a reference to a tracker item"},
	{regexp.MustCompile(`(?i)\bsessions?\b[-\w.]*`), "a work session"},
	{regexp.MustCompile(`(?i)\b(round|stop|sprint|milestone)\s+#?\d+\b`), "a numbered round of work"},
	{regexp.MustCompile(`(?i)\buntil\b[^.\n]{0,60}\bland(s|ed)?\b`), "a promise tied to other work landing"},
}

// phraseAllowed are matches that mean something else: a systemd session scope in a cgroup path.
var phraseAllowed = regexp.MustCompile(`^session-\d+\.scope$`)

// phraseExempt are files this check leaves to whoever rewrites them next, with the reason.
var phraseExempt = map[string]string{
	"test/repo/phrases_test.go": "holds the phrases as test cases",
}

// repoFiles lists the files of the repository (tracked and new, not ignored).
func repoFiles(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("git ls-files: %v (not a git checkout)", err)
	}
	var files []string
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f != "" {
			files = append(files, f)
		}
	}
	return files
}

// TestNoWorkOrganisationPhrases fails on words in docs, comments, manifests, scripts and test
// names that refer to how the work was organised.
func TestNoWorkOrganisationPhrases(t *testing.T) {
	var found []string
	for _, f := range repoFiles(t) {
		if _, ok := phraseExempt[f]; ok || strings.HasSuffix(f, "go.sum") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			if os.IsNotExist(err) { // deleted in the work tree
				continue
			}
			t.Fatal(err)
		}
		if bytes.IndexByte(data, 0) >= 0 { // binary
			continue
		}
		for i, line := range strings.Split(string(data), "\n") {
			for _, p := range workPhrases {
				for _, m := range p.re.FindAllString(line, -1) {
					if phraseAllowed.MatchString(m) {
						continue
					}
					found = append(found, fmt.Sprintf("  %s:%d: %q (%s): %s", f, i+1, m, p.what, strings.TrimSpace(line)))
				}
			}
		}
	}
	if len(found) > 0 {
		t.Errorf("the repository speaks about the product, not about how the work was organised: "+
			"reword these lines to say what the code, manifest or test does:\n%s", strings.Join(found, "\n"))
	}
}

func TestWorkPhrasesMatch(t *testing.T) {
	cases := []struct {
		line string
		want bool
	}{
		{"# ip-controller (issue 4): leader-elected", true},
		{"Assumptions until the binary lands: image", true},
		{"metric names are assumed until they land", true},
		{"figures of session 3, alone on the machine", true},
		{"session-4 bench-scheduler at full size", true},
		{"round 2 of the benchmarks", true},
		{"the SLO, which the issue names", true},
		{"4:cpu,cpuacct:/user.slice/session-1.scope", false},
		{"five rounds, the four cases interleaved", false},
		{"waits until the informer has synced", false},
		{"a packet lands on the tunnel port", false},
	}
	for _, c := range cases {
		got := false
		for _, p := range workPhrases {
			for _, m := range p.re.FindAllString(c.line, -1) {
				if !phraseAllowed.MatchString(m) {
					got = true
				}
			}
		}
		if got != c.want {
			t.Errorf("%q: flagged %v, want %v", c.line, got, c.want)
		}
	}
}
