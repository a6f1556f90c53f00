// Package cgroups knows where the kubelet puts pod and container cgroups (both drivers, both cgroup
// versions) and reads their interface files cheaply.
package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Version is the cgroup hierarchy version of the host.
type Version int

const (
	// V1 is the legacy (possibly hybrid) hierarchy: one directory per controller.
	V1 Version = 1
	// V2 is the unified hierarchy.
	V2 Version = 2
)

func (v Version) String() string { return fmt.Sprintf("v%d", int(v)) }

// DetectVersion reports whether root (usually /sys/fs/cgroup) is a unified (v2) mount or a v1 tree of
// controller directories. A hybrid host, whose cgroup2 mount sits at root/unified, is v1.
func DetectVersion(root string) (Version, error) {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		return V2, nil
	}
	for _, ctrl := range []string{"cpuacct", "cpu", "memory"} {
		if _, err := os.Stat(filepath.Join(root, ctrl, "cgroup.procs")); err == nil {
			return V1, nil
		}
	}
	return 0, fmt.Errorf("detect cgroup version under %q: neither cgroup.controllers (v2) nor cpu/cpuacct/memory controller directories (v1) found", root)
}

// Driver is the kubelet's cgroup driver.
type Driver string

const (
	// DriverCgroupfs names cgroups kubepods/<qos>/pod<uid>/<containerID>.
	DriverCgroupfs Driver = "cgroupfs"
	// DriverSystemd names cgroups kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice/<runtime>-<id>.scope.
	DriverSystemd Driver = "systemd"
)

// ErrNoKubepods is returned by DetectDriver when neither layout exists yet.
var ErrNoKubepods = errors.New("no kubepods cgroup found")

// DetectDriver looks for the kubepods cgroup of either driver below parent (the kubelet's cgroupRoot,
// relative to the hierarchy).
func DetectDriver(root string, v Version, parent string) (Driver, error) {
	base := root
	if v == V1 {
		base = filepath.Join(root, "cpu")
	}
	if _, err := os.Stat(filepath.Join(base, parent, "kubepods.slice")); err == nil {
		return DriverSystemd, nil
	}
	if _, err := os.Stat(filepath.Join(base, parent, "kubepods")); err == nil {
		return DriverCgroupfs, nil
	}
	return "", fmt.Errorf("detect cgroup driver under %q: %w", filepath.Join(base, parent), ErrNoKubepods)
}
