// Package cgtest builds kubepods-style cgroup trees for tests: real cgroup v1 or v2 hierarchies
// under a unique prefix (root only, removed at cleanup) and fixture trees of plain files for v2 and
// systemd.
package cgtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/test/prereq"
)

// V1Controllers are the controllers a real tree is created in.
var V1Controllers = []string{"cpu", "cpuacct", "memory", "pids", "blkio"}

// Tree is a kubepods hierarchy under Hier.Parent.
type Tree struct {
	Hier cgroups.Hierarchy
	// real trees are live cgroups; fixtures are plain directories.
	real bool
	dirs []string
	made map[string]bool
}

// UniqueName returns prefix-<random hex>, for cgroup and directory names that never collide.
func UniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// NewV1 creates a real cgroup v1 tree for driver under /sys/fs/cgroup/<ctrl>/eagent-<random>.
// Cleanup kills every process left in it and removes the cgroups. Not root, or no cgroup v1
// hierarchy, is a missing prerequisite (prereq.Missing: a failure under CI=true); a cgroup v2 host
// is not (NewV2's tests run there instead): the test skips.
func NewV1(t testing.TB, driver cgroups.Driver) *Tree {
	t.Helper()
	prereq.Root(t, "creates real cgroups under /sys/fs/cgroup")
	root := "/sys/fs/cgroup"
	v, err := cgroups.DetectVersion(root)
	switch {
	case err == nil && v == cgroups.V2:
		prereq.NotApplicable(t, root+" is cgroup v2 (the v2 variant of this test runs here)")
	case err != nil || v != cgroups.V1:
		prereq.Missing(t, fmt.Sprintf("needs a writable cgroup v1 hierarchy at %s (detected %v, %v)", root, v, err))
	}
	tr := NewRealV1(root, driver, "eagent")
	t.Cleanup(func() {
		if err := tr.Remove(); err != nil {
			t.Errorf("clean up test cgroups: %v", err)
		}
	})
	return tr
}

// NewV2 creates a real cgroup v2 tree for driver under /sys/fs/cgroup/eagent-<random>, with the
// cpu, memory, pids and io controllers enabled down to the containers. Cleanup kills every process
// left in it and removes the cgroups. Not root is a missing prerequisite; a host without cgroup v2
// (this machine's v1, where NewV1's tests run) skips the test.
func NewV2(t testing.TB, driver cgroups.Driver) *Tree {
	t.Helper()
	prereq.Root(t, "creates real cgroups under /sys/fs/cgroup")
	root := "/sys/fs/cgroup"
	if v, err := cgroups.DetectVersion(root); err != nil || v != cgroups.V2 {
		prereq.NotApplicable(t, fmt.Sprintf("%s is not cgroup v2 (detected %v, %v); the v1 variant of this test runs here", root, v, err))
	}
	tr := &Tree{Hier: cgroups.Hierarchy{Root: root, Version: cgroups.V2, Driver: driver, Parent: "/" + UniqueName("eagent")}, real: true}
	t.Cleanup(func() {
		if err := tr.Remove(); err != nil {
			t.Errorf("clean up test cgroups: %v", err)
		}
	})
	tr.Mkdir(tr.Hier.Parent)
	if driver == cgroups.DriverSystemd {
		tr.Mkdir(filepath.Join(tr.Hier.Parent, "kubepods.slice"))
	} else {
		tr.Mkdir(filepath.Join(tr.Hier.Parent, "kubepods"))
	}
	return tr
}

// NewReal creates a real tree on whichever cgroup version the host runs (NewV1 or NewV2).
func NewReal(t testing.TB, driver cgroups.Driver) *Tree {
	t.Helper()
	if v, err := cgroups.DetectVersion("/sys/fs/cgroup"); err == nil && v == cgroups.V2 {
		return NewV2(t, driver)
	}
	return NewV1(t, driver)
}

// V2Controllers are the controllers a real v2 tree enables for its children.
var V2Controllers = []string{"cpu", "memory", "pids", "io"}

// NewRealV1 creates the kubepods root of a real cgroup v1 tree under <root>/<ctrl>/<prefix>-<random>;
// the caller removes it with Remove.
func NewRealV1(root string, driver cgroups.Driver, prefix string) *Tree {
	tr := &Tree{Hier: cgroups.Hierarchy{Root: root, Version: cgroups.V1, Driver: driver, Parent: "/" + UniqueName(prefix)}, real: true}
	tr.Mkdir(tr.Hier.Parent)
	if driver == cgroups.DriverSystemd {
		tr.Mkdir(filepath.Join(tr.Hier.Parent, "kubepods.slice"))
	} else {
		tr.Mkdir(filepath.Join(tr.Hier.Parent, "kubepods"))
	}
	return tr
}

// Mkdir creates rel in every controller (real) or as a directory (fixture), once, and its
// missing parents below the tree's parent first (so that Remove removes them too).
func (tr *Tree) Mkdir(rel string) {
	if tr.made[rel] {
		return
	}
	if tr.made == nil {
		tr.made = map[string]bool{}
	}
	if parent := filepath.Dir(rel); rel != tr.Hier.Parent && strings.HasPrefix(parent, tr.Hier.Parent+"/") {
		tr.Mkdir(parent)
	}
	tr.made[rel] = true
	if tr.real && tr.Hier.Version == cgroups.V2 {
		// v2: a cgroup has a controller only if its parent enables it for its children.
		parent := filepath.Dir(tr.Hier.Path("", rel))
		for _, c := range V2Controllers {
			if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+"+c), 0o644); err != nil {
				panic(fmt.Sprintf("enable controller %s in %s: %v", c, parent, err))
			}
		}
	}
	for _, ctrl := range tr.controllers() {
		if err := os.MkdirAll(tr.Hier.Path(ctrl, rel), 0o755); err != nil {
			panic(fmt.Sprintf("create cgroup %s: %v", tr.Hier.Path(ctrl, rel), err))
		}
	}
	tr.dirs = append(tr.dirs, rel)
}

func (tr *Tree) controllers() []string {
	if tr.Hier.Version == cgroups.V2 {
		return []string{""}
	}
	return V1Controllers
}

// AddPod creates the pod cgroup (and its QoS parent) and returns it.
func (tr *Tree) AddPod(qos, uid string) string {
	dir := tr.Hier.PodDir(qos, uid)
	if qos != cgroups.QoSGuaranteed {
		tr.Mkdir(filepath.Dir(dir))
	}
	tr.Mkdir(dir)
	return dir
}

// ContainerName is the cgroup name the runtime gives a container under the tree's driver.
func (tr *Tree) ContainerName(id string) string {
	if tr.Hier.Driver == cgroups.DriverSystemd {
		return "cri-containerd-" + id + ".scope"
	}
	return id
}

// AddContainer creates the container cgroup for a containerd container ID and returns it.
func (tr *Tree) AddContainer(podDir, id string) string {
	dir := filepath.Join(podDir, tr.ContainerName(id))
	tr.Mkdir(dir)
	return dir
}

// Move puts a process into rel in every controller.
func (tr *Tree) Move(pid int, rel string) error {
	for _, ctrl := range tr.controllers() {
		p := filepath.Join(tr.Hier.Path(ctrl, rel), "cgroup.procs")
		if err := os.WriteFile(p, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("move pid %d into %s: %w", pid, p, err)
		}
	}
	return nil
}

// Set writes a control file of one controller.
func (tr *Tree) Set(ctrl, rel, file, value string) error {
	p := filepath.Join(tr.Hier.Path(ctrl, rel), file)
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// Remove kills what is left in a real tree and removes every cgroup, deepest first.
func (tr *Tree) Remove() error {
	if !tr.real {
		return nil
	}
	// Controllers are independent hierarchies: remove them in parallel (each rmdir waits for the
	// kernel, which adds up with hundreds of cgroups).
	ctrls := tr.controllers()
	errs := make([]error, len(ctrls))
	var wg sync.WaitGroup
	for i, ctrl := range ctrls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := len(tr.dirs) - 1; j >= 0; j-- {
				dir := tr.Hier.Path(ctrl, tr.dirs[j])
				killAll(dir)
				if err := rmdirRetry(dir); err != nil {
					errs[i] = errors.Join(errs[i], err)
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func killAll(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// rmdirRetry removes a cgroup; it stays busy for a moment after its last process died.
func rmdirRetry(dir string) error {
	var err error
	for range 100 {
		err = syscall.Rmdir(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		killAll(dir)
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, err)
}
