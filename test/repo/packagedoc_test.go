package repo

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestEveryPackageHasDocComment: every Go package of the repository starts with a comment that
// says what it owns ("// Package x ..." or, for a binary, "// Command x ..."), on one of its
// files (a test-only package on one of its test files).
func TestEveryPackageHasDocComment(t *testing.T) {
	dirs := map[string][]string{} // dir -> its .go files
	for _, f := range repoFiles(t) {
		if strings.HasSuffix(f, ".go") {
			dirs[filepath.Dir(f)] = append(dirs[filepath.Dir(f)], f)
		}
	}
	var missing []string
	for dir, files := range dirs {
		fset := token.NewFileSet()
		name, documented := "", false
		for _, f := range files {
			src, err := os.ReadFile(filepath.Join(root, f))
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(fset, f, src, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			pkg := strings.TrimSuffix(af.Name.Name, "_test")
			if name == "" || !strings.HasSuffix(f, "_test.go") {
				name = pkg
			}
			if af.Doc == nil {
				continue
			}
			text := af.Doc.Text()
			if strings.HasPrefix(text, "Package "+pkg+" ") || strings.HasPrefix(text, "Package "+af.Name.Name+" ") ||
				(pkg == "main" && strings.HasPrefix(text, "Command "+filepath.Base(dir)+" ")) {
				documented = true
			}
		}
		if !documented {
			want := "// Package " + name + " <what it owns>"
			if name == "main" {
				want = "// Command " + filepath.Base(dir) + " <what it does>"
			}
			missing = append(missing, "  "+dir+": add "+want)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("every package says what it owns in a doc comment above its package clause (in doc.go or its main file):\n%s",
			strings.Join(missing, "\n"))
	}
}
