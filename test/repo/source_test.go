package repo

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/ecloud-io/ecloud"

// productDirs hold the code that ships in ecloud's binaries (tests, benches and test helpers are
// not scanned for metrics, Events and annotations).
var productDirs = []string{"cni", "scheduler-plugins", "node-agent"}

// goPackage is one parsed package directory of the module (test files left out).
type goPackage struct {
	dir   string // relative to the repository root
	fset  *token.FileSet
	files []*ast.File
	// consts are the package-level constants by name.
	consts map[string]*constDecl
}

type constDecl struct {
	name  string
	typ   string // the declared type's name, or ""
	value ast.Expr
	file  *ast.File
}

// source is the parsed product code, package by package, with constant evaluation across them.
type source struct {
	fset *token.FileSet
	pkgs map[string]*goPackage // by dir
}

func isProductFile(path string, d fs.DirEntry) bool {
	if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
		return false
	}
	for _, skip := range []string{"/bench/", "/testutil/", "/ovstest/"} {
		if strings.Contains(path, skip) {
			return false
		}
	}
	return true
}

func loadSource(t *testing.T) *source {
	t.Helper()
	s := &source{fset: token.NewFileSet(), pkgs: map[string]*goPackage{}}
	for _, top := range productDirs {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil || !isProductFile(path, d) {
				return err
			}
			f, err := parser.ParseFile(s.fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			p := s.pkgs[rel]
			if p == nil {
				p = &goPackage{dir: rel, fset: s.fset, consts: map[string]*constDecl{}}
				s.pkgs[rel] = p
			}
			p.files = append(p.files, f)
			for _, decl := range f.Decls {
				g, ok := decl.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				var lastType string
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					typ := lastType
					if id, ok := vs.Type.(*ast.Ident); ok {
						typ = id.Name
					}
					lastType = typ
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							p.consts[n.Name] = &constDecl{name: n.Name, typ: typ, value: vs.Values[i], file: f}
						}
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("parse %s: %v", top, err)
		}
	}
	return s
}

// sortedDirs lists the packages in a stable order.
func (s *source) sortedDirs() []string {
	dirs := make([]string, 0, len(s.pkgs))
	for d := range s.pkgs {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	return dirs
}

// importDir resolves an import name of file f to a package directory of the module, or "".
func importDir(f *ast.File, name string) string {
	for _, imp := range f.Imports {
		path, _ := strconv.Unquote(imp.Path.Value)
		local := filepath.Base(path)
		if imp.Name != nil {
			local = imp.Name.Name
		}
		if local == name && strings.HasPrefix(path, modulePath+"/") {
			return strings.TrimPrefix(path, modulePath+"/")
		}
	}
	return ""
}

// evalString evaluates a constant string expression written in file f of package p: literals,
// constants of the module (also of other packages), `+` and conversions such as string(c).
func (s *source) evalString(p *goPackage, f *ast.File, e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			v, err := strconv.Unquote(e.Value)
			return v, err == nil
		}
		return e.Value, true
	case *ast.ParenExpr:
		return s.evalString(p, f, e.X)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, ok1 := s.evalString(p, f, e.X)
		b, ok2 := s.evalString(p, f, e.Y)
		return a + b, ok1 && ok2
	case *ast.CallExpr: // a conversion: string(x), Reason(x)
		if len(e.Args) == 1 {
			if _, ok := e.Fun.(*ast.Ident); ok {
				return s.evalString(p, f, e.Args[0])
			}
		}
	case *ast.Ident:
		if c, ok := p.consts[e.Name]; ok {
			return s.evalString(p, c.file, c.value)
		}
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		if !ok {
			return "", false
		}
		if other := s.pkgs[importDir(f, x.Name)]; other != nil {
			if c, ok := other.consts[e.Sel.Name]; ok {
				return s.evalString(other, c.file, c.value)
			}
		}
	}
	return "", false
}

// constsOfType returns the string values of package p's constants declared with type typ.
func (s *source) constsOfType(p *goPackage, typ string) []string {
	var out []string
	for _, c := range p.consts {
		if c.typ == typ {
			if v, ok := s.evalString(p, c.file, c.value); ok {
				out = append(out, v)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (s *source) pos(n ast.Node) string {
	p := s.fset.Position(n.Pos())
	rel, err := filepath.Rel(root, p.Filename)
	if err != nil {
		rel = p.Filename
	}
	return fmt.Sprintf("%s:%d", rel, p.Line)
}

// enclosingFunc returns the function declaration of file f that contains n.
func enclosingFunc(f *ast.File, n ast.Node) *ast.FuncDecl {
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Pos() <= n.Pos() && n.End() <= fd.End() {
			return fd
		}
	}
	return nil
}

// paramIndex returns the position of the parameter named name in fd, or -1.
func paramIndex(fd *ast.FuncDecl, name string) int {
	i := 0
	for _, field := range fd.Type.Params.List {
		for _, n := range field.Names {
			if n.Name == name {
				return i
			}
			i++
		}
		if len(field.Names) == 0 {
			i++
		}
	}
	return -1
}

// rangeValues returns the elements of the composite literal that the range statement declaring
// name (as its value) iterates over, if any, inside fd.
func rangeValues(fd *ast.FuncDecl, name string) []ast.Expr {
	var out []ast.Expr
	ast.Inspect(fd, func(n ast.Node) bool {
		r, ok := n.(*ast.RangeStmt)
		if !ok {
			return true
		}
		if v, ok := r.Value.(*ast.Ident); ok && v.Name == name {
			if lit, ok := r.X.(*ast.CompositeLit); ok {
				out = lit.Elts
			}
		}
		return true
	})
	return out
}
