package cgroups

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// ParentAuto is the --kubelet-cgroup-root value that asks the agent to find its node's kubelet
// cgroup root from its own cgroup (the agent runs as a pod of that kubelet).
const ParentAuto = "auto"

// ParentFromSelf returns the kubelet's cgroup root as seen from /proc/self/cgroup of a process
// that runs in one of its pods: the path before the kubepods (or kubepods.slice) component. This
// works whatever --cgroup-root the kubelet has, and when several kubelets share one cgroupfs.
func ParentFromSelf(procSelfCgroup string, v Version) (string, error) {
	raw, err := os.ReadFile(procSelfCgroup)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", procSelfCgroup, err)
	}
	return ParentFromCgroupFile(string(raw), v)
}

// ParentFromCgroupFile parses the content of /proc/<pid>/cgroup (see ParentFromSelf).
func ParentFromCgroupFile(content string, v Version) (string, error) {
	sc := bufio.NewScanner(strings.NewReader(content))
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if v == V1 && !hasController(parts[1], "cpu") {
			continue
		}
		if v != V1 && parts[0] != "0" {
			continue
		}
		for _, marker := range []string{"/kubepods.slice", "/kubepods/", "/kubepods"} {
			if i := strings.Index(parts[2], marker); i >= 0 && (marker != "/kubepods" || strings.HasSuffix(parts[2], marker)) {
				parent := parts[2][:i]
				if parent == "" {
					parent = "/"
				}
				return parent, nil
			}
		}
		return "", fmt.Errorf("own cgroup %q is not below a kubepods cgroup: run the agent as a pod, or set --kubelet-cgroup-root", parts[2])
	}
	return "", fmt.Errorf("no %s hierarchy in /proc/self/cgroup", map[bool]string{true: "cpu", false: "unified"}[v == V1])
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
