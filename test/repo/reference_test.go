package repo

import (
	"go/ast"
	"sort"
	"strings"
	"testing"

	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/all"
	"github.com/ecloud-io/ecloud/node-agent/pkg/rdt"
)

// compareSets reports, for one kind of item, what docs/reference.md lacks and what it lists that
// the code does not have. code maps each item to where it comes from (and the row to add).
func compareSets(t *testing.T, kind, where string, code map[string]string, doc map[string]bool) {
	t.Helper()
	var add, remove []string
	for k, hint := range code {
		if !doc[k] {
			add = append(add, "  "+k+"  ("+hint+")")
		}
	}
	for k := range doc {
		if _, ok := code[k]; !ok {
			remove = append(remove, "  "+k)
		}
	}
	sort.Strings(add)
	sort.Strings(remove)
	if len(add) > 0 {
		t.Errorf("%s: add these %s to %s:\n%s", referencePath, kind, where, strings.Join(add, "\n"))
	}
	if len(remove) > 0 {
		t.Errorf("%s: remove these %s from %s (the code has none of them):\n%s", referencePath, kind, where, strings.Join(remove, "\n"))
	}
}

// docColumn collects the first code span of the first cell of every table row under a heading.
func docColumn(t *testing.T, title string) map[string][]string {
	t.Helper()
	lines, ok := subtree(sections(readRepoFile(t, referencePath)), title)
	if !ok {
		t.Fatalf("%s has no section %q", referencePath, title)
	}
	out := map[string][]string{}
	for _, row := range tableRows(lines) {
		for _, key := range codeSpans(row[0]) {
			out[key] = row
		}
	}
	return out
}

// TestReferenceMetrics: every metric the binaries define is in the Metrics section, with its type,
// and the section lists no other.
func TestReferenceMetrics(t *testing.T) {
	src := loadSource(t)
	code := map[string]string{}
	types := map[string]string{}
	for _, dir := range src.sortedDirs() {
		p := src.pkgs[dir]
		for _, f := range p.files {
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					sel, ok := n.Type.(*ast.SelectorExpr)
					if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
						return true
					}
					kind := strings.ToLower(strings.TrimSuffix(sel.Sel.Name, "Opts"))
					var parts []string
					for _, key := range []string{"Namespace", "Subsystem", "Name"} {
						for _, el := range n.Elts {
							kv, ok := el.(*ast.KeyValueExpr)
							if !ok || kv.Key.(*ast.Ident).Name != key {
								continue
							}
							v, ok := src.evalString(p, f, kv.Value)
							if !ok {
								t.Errorf("%s: the metric's %s is not a constant expression: make it one, so that it can be checked against %s", src.pos(kv), key, referencePath)
							}
							if v != "" {
								parts = append(parts, v)
							}
						}
					}
					name := strings.Join(parts, "_")
					code[name] = src.pos(n)
					types[name] = kind
				case *ast.CallExpr:
					sel, ok := n.Fun.(*ast.SelectorExpr)
					if !ok || sel.Sel.Name != "NewDesc" || len(n.Args) == 0 {
						return true
					}
					if x, ok := sel.X.(*ast.Ident); !ok || (x.Name != "metrics" && x.Name != "prometheus") {
						return true
					}
					name, ok := src.evalString(p, f, n.Args[0])
					if !ok {
						// The node agent's exporter turns collector descriptions into metrics; those
						// are listed from the collectors below.
						if strings.HasPrefix(dir, "node-agent/pkg/promsink") {
							return true
						}
						t.Errorf("%s: the metric name is not a constant expression: make it one, so that it can be checked against %s", src.pos(n), referencePath)
						return true
					}
					code[name] = src.pos(n)
				}
				return true
			})
		}
	}
	descs := []*collector.Desc{}
	for _, c := range all.New() {
		descs = append(descs, c.Describe()...)
	}
	descs = append(descs, rdt.Descs()...)
	for _, d := range descs {
		code[d.Name] = "node-agent collector"
		types[d.Name] = map[collector.Kind]string{collector.Counter: "counter", collector.Gauge: "gauge"}[d.Kind]
	}

	doc := docColumn(t, "Metrics")
	docNames := map[string]bool{}
	for name, row := range doc {
		docNames[name] = true
		if want := types[name]; want != "" && len(row) > 1 && row[1] != want {
			t.Errorf("%s: metric %s is a %s, not a %s: fix its type column", referencePath, name, want, row[1])
		}
	}
	compareSets(t, "metrics", "the Metrics section (name, type, labels, served by, meaning)", code, docNames)
}

// eventRecorderMethods are the methods of client-go's record.EventRecorder and events.EventRecorder.
var eventRecorderMethods = map[string]bool{"Event": true, "Eventf": true, "AnnotatedEventf": true}

// dynamicReasons lists the Event calls whose reason is a value computed at run time, by file, and
// the constants it can take: the constants of that package declared with the named type.
var dynamicReasons = map[string]string{
	"cni/ipam/allocate.go": "Reason", // string(ipam.ReasonOf(err))
}

// TestReferenceEvents: every Event reason the code can emit is in the Events section, and the
// section lists no other.
func TestReferenceEvents(t *testing.T) {
	src := loadSource(t)
	code := map[string]string{}
	for _, dir := range src.sortedDirs() {
		p := src.pkgs[dir]
		for _, f := range p.files {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || !eventRecorderMethods[sel.Sel.Name] || !strings.Contains(strings.ToLower(exprString(sel.X)), "recorder") {
					return true
				}
				// The reason follows the event type (Warning/Normal) in both recorder APIs.
				idx := -1
				for i, a := range call.Args {
					if s := exprString(a); strings.Contains(s, "EventType") || s == `"Warning"` || s == `"Normal"` {
						idx = i + 1
						break
					}
				}
				if idx < 0 || idx >= len(call.Args) {
					t.Errorf("%s: cannot find the event type and reason of this Event call: pass the type as v1.EventTypeWarning/Normal", src.pos(call))
					return true
				}
				for _, r := range src.reasons(t, p, f, call, call.Args[idx], 0) {
					code[r] = src.pos(call)
				}
				return true
			})
		}
	}
	doc := map[string]bool{}
	for _, row := range docColumn(t, "Events") {
		for _, r := range codeSpans(row[0]) {
			doc[r] = true
		}
	}
	compareSets(t, "Event reasons", "the Events section (reason, type, on, emitted by, when)", code, doc)
}

// reasons resolves the reason argument of an Event call to the constants it can be: a constant
// expression, a range variable over a literal list, a parameter of the enclosing function (through
// that function's callers in the package), or a value listed in dynamicReasons.
func (s *source) reasons(t *testing.T, p *goPackage, f *ast.File, at ast.Node, arg ast.Expr, depth int) []string {
	t.Helper()
	if v, ok := s.evalString(p, f, arg); ok {
		return []string{v}
	}
	file := strings.TrimPrefix(s.pos(at), "")
	file = file[:strings.LastIndex(file, ":")]
	if typ, ok := dynamicReasons[file]; ok {
		return s.constsOfType(p, typ)
	}
	id, ok := arg.(*ast.Ident)
	fd := enclosingFunc(f, at)
	if ok && fd != nil && depth < 3 {
		if elts := rangeValues(fd, id.Name); elts != nil {
			var out []string
			for _, e := range elts {
				out = append(out, s.reasons(t, p, f, e, e, depth+1)...)
			}
			return out
		}
		if i := paramIndex(fd, id.Name); i >= 0 {
			var out []string
			for _, cf := range p.files {
				ast.Inspect(cf, func(n ast.Node) bool {
					c, ok := n.(*ast.CallExpr)
					if !ok || i >= len(c.Args) {
						return true
					}
					name := ""
					switch fn := c.Fun.(type) {
					case *ast.Ident:
						name = fn.Name
					case *ast.SelectorExpr:
						name = fn.Sel.Name
					}
					if name == fd.Name.Name {
						out = append(out, s.reasons(t, p, cf, c, c.Args[i], depth+1)...)
					}
					return true
				})
			}
			return out
		}
	}
	t.Errorf("%s: cannot tell which Event reasons %s can be: use a constant, or list the file in dynamicReasons", s.pos(at), exprString(arg))
	return nil
}

func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.CallExpr:
		return exprString(e.Fun) + "()"
	case *ast.BasicLit:
		return e.Value
	case *ast.StarExpr:
		return "*" + exprString(e.X)
	case *ast.ParenExpr:
		return "(" + exprString(e.X) + ")"
	}
	return ""
}

// TestReferenceAnnotations: every annotation or label key the code declares as a constant is in
// the Annotations and labels section, and every key listed there is used by the code or the
// manifests.
func TestReferenceAnnotations(t *testing.T) {
	src := loadSource(t)
	code := map[string]string{}
	for _, dir := range src.sortedDirs() {
		p := src.pkgs[dir]
		for name, c := range p.consts {
			if !strings.Contains(name, "Annotation") && !strings.Contains(name, "Label") {
				continue
			}
			v, ok := src.evalString(p, c.file, c.value)
			if ok && strings.Contains(v, "/") && !strings.Contains(v, " ") {
				code[v] = dir + "." + name
			}
		}
	}
	doc := docColumn(t, "Annotations and labels")
	var corpus strings.Builder
	for _, dir := range src.sortedDirs() {
		for _, f := range src.pkgs[dir].files {
			corpus.WriteString(readRepoFile(t, strings.TrimPrefix(src.fset.File(f.Pos()).Name(), root+"/")))
		}
	}
	corpus.WriteString(readManifests(t))
	docKeys := map[string]bool{}
	for key := range doc {
		docKeys[key] = true
		if _, ok := code[key]; ok {
			continue
		}
		// Keys the code does not declare (read by a library, or written through another
		// package's constant) must at least appear in the code or the manifests.
		probe := key
		if i := strings.Index(key, "<"); i >= 0 {
			probe = key[:i]
		}
		if !strings.Contains(corpus.String(), probe) {
			t.Errorf("%s: annotation or label %s appears nowhere in the code or the manifests: remove it", referencePath, key)
		}
		code[key] = "used"
	}
	compareSets(t, "annotation and label keys", "the Annotations and labels section (key, on, kind, value)", code, docKeys)
}
