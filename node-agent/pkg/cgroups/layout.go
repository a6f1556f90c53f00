package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// QoS classes as the kubelet spells them in cgroup names.
const (
	QoSGuaranteed = "guaranteed"
	QoSBurstable  = "burstable"
	QoSBestEffort = "besteffort"
)

// Hierarchy is the host's cgroup tree as the kubelet lays it out.
type Hierarchy struct {
	// Root is the cgroup mount point (/sys/fs/cgroup); tests point it at fixture trees.
	Root string
	// Version of the hierarchy.
	Version Version
	// Driver is the kubelet's cgroup driver.
	Driver Driver
	// Parent is the kubelet's cgroupRoot relative to the hierarchy ("/" by default).
	Parent string
}

// Path returns the absolute directory of the cgroup rel for controller ctrl (ignored on v2).
func (h Hierarchy) Path(ctrl, rel string) string {
	if h.Version == V2 {
		return filepath.Join(h.Root, rel)
	}
	return filepath.Join(h.Root, ctrl, rel)
}

// probeController is the controller whose tree is used to check that a cgroup exists on v1.
const probeController = "cpu"

// PodDir returns the pod's cgroup relative to the hierarchy, for a lower-case QoS class (see QoS*).
func (h Hierarchy) PodDir(qos, uid string) string {
	if h.Driver == DriverSystemd {
		u := strings.ReplaceAll(uid, "-", "_")
		if qos == QoSGuaranteed {
			return filepath.Join(h.Parent, "kubepods.slice", "kubepods-pod"+u+".slice")
		}
		return filepath.Join(h.Parent, "kubepods.slice", "kubepods-"+qos+".slice", "kubepods-"+qos+"-pod"+u+".slice")
	}
	if qos == QoSGuaranteed {
		return filepath.Join(h.Parent, "kubepods", "pod"+uid)
	}
	return filepath.Join(h.Parent, "kubepods", qos, "pod"+uid)
}

// SplitContainerID splits a CRI container ID "containerd://abc" into runtime and ID.
func SplitContainerID(cid string) (runtime, id string) {
	if rt, id, ok := strings.Cut(cid, "://"); ok {
		return rt, id
	}
	return "", cid
}

// scopePrefixes maps a CRI runtime name to the prefix of its container cgroups under systemd (and
// CRI-O's under cgroupfs).
var scopePrefixes = map[string]string{
	"containerd": "cri-containerd",
	"cri-o":      "crio",
	"docker":     "docker",
}

// ContainerDir finds the container's cgroup below podDir (relative, from PodDir) for a CRI container
// ID such as "containerd://<id>". It tries the names the runtimes use, then scans the pod directory.
func (h Hierarchy) ContainerDir(podDir, containerID string) (string, error) {
	runtime, id := SplitContainerID(containerID)
	if id == "" {
		return "", fmt.Errorf("container ID %q is empty", containerID)
	}
	var candidates []string
	if h.Driver == DriverSystemd {
		if p, ok := scopePrefixes[runtime]; ok {
			candidates = append(candidates, p+"-"+id+".scope")
		}
	} else {
		candidates = append(candidates, id)
		if runtime == "cri-o" {
			candidates = append(candidates, "crio-"+id)
		}
	}
	for _, c := range candidates {
		rel := filepath.Join(podDir, c)
		if _, err := os.Stat(h.Path(probeController, rel)); err == nil {
			return rel, nil
		}
	}
	dir := h.Path(probeController, podDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("find cgroup of container %s: read pod cgroup %s: %w", containerID, dir, err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.Contains(e.Name(), id) {
			return filepath.Join(podDir, e.Name()), nil
		}
	}
	return "", fmt.Errorf("find cgroup of container %s: no directory for it in %s", containerID, dir)
}
