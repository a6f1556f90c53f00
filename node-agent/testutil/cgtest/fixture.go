package cgtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
)

// NewFixture returns a tree of plain files in a temp dir laid out like a cgroup mount of version v
// (v2 gets a cgroup.controllers file, v1 controller directories).
func NewFixture(t testing.TB, v cgroups.Version, driver cgroups.Driver) *Tree {
	t.Helper()
	tr := &Tree{Hier: cgroups.Hierarchy{Root: t.TempDir(), Version: v, Driver: driver, Parent: "/"}}
	if v == cgroups.V2 {
		tr.WriteFiles("", "", map[string]string{"cgroup.controllers": "cpu io memory pids\n"})
	} else {
		for _, ctrl := range V1Controllers {
			tr.WriteFiles(ctrl, "", map[string]string{"cgroup.procs": ""})
		}
	}
	return tr
}

// WriteFiles writes interface files into rel of controller ctrl (ignored on v2).
func (tr *Tree) WriteFiles(ctrl, rel string, files map[string]string) {
	dir := tr.Hier.Path(ctrl, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		panic(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			panic(err)
		}
	}
}
