// Package podcgroup maps pods and their running containers to cgroup targets for the collectors.
package podcgroup

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agentmetrics"
	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
)

// Resolver maps pods to cgroup targets, caching container directories by container ID.
type Resolver struct {
	hier cgroups.Hierarchy

	mu    sync.Mutex
	cache map[string]string
}

// NewResolver returns a resolver for the hierarchy.
func NewResolver(hier cgroups.Hierarchy) *Resolver {
	return &Resolver{hier: hier, cache: map[string]string{}}
}

// qosCandidates returns the cgroup QoS names to try for a pod.
func qosCandidates(pod *v1.Pod) []string {
	switch pod.Status.QOSClass {
	case v1.PodQOSGuaranteed:
		return []string{cgroups.QoSGuaranteed}
	case v1.PodQOSBurstable:
		return []string{cgroups.QoSBurstable}
	case v1.PodQOSBestEffort:
		return []string{cgroups.QoSBestEffort}
	}
	return []string{cgroups.QoSBurstable, cgroups.QoSBestEffort, cgroups.QoSGuaranteed}
}

// PodDir finds the pod's cgroup (relative to the hierarchy).
func (r *Resolver) PodDir(pod *v1.Pod) (string, error) {
	var tried []string
	for _, qos := range qosCandidates(pod) {
		dir := r.hier.PodDir(qos, string(pod.UID))
		if _, err := os.Stat(r.hier.Path("cpu", dir)); err == nil {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	return "", fmt.Errorf("find cgroup of pod %s/%s: none of %s exists under %s", pod.Namespace, pod.Name, strings.Join(tried, ", "), r.hier.Root)
}

// ContainerDirs returns the cgroup of every running container of the pod by container name.
func (r *Resolver) ContainerDirs(pod *v1.Pod, podDir string) (map[string]string, []error) {
	out := map[string]string{}
	var errs []error
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.State.Running == nil || cs.ContainerID == "" {
			continue
		}
		r.mu.Lock()
		dir, ok := r.cache[cs.ContainerID]
		r.mu.Unlock()
		if !ok {
			var err error
			dir, err = r.hier.ContainerDir(podDir, cs.ContainerID)
			if err != nil {
				errs = append(errs, fmt.Errorf("pod %s/%s container %s: %w", pod.Namespace, pod.Name, cs.Name, err))
				continue
			}
			r.mu.Lock()
			r.cache[cs.ContainerID] = dir
			r.mu.Unlock()
		}
		out[cs.Name] = dir
	}
	return out, errs
}

// Targets returns a pod-level target plus one per running container, for every pod with a cgroup.
func (r *Resolver) Targets(logger klog.Logger, pods []*v1.Pod) []*collector.Target {
	var out []*collector.Target
	seen := map[string]bool{}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Namespace+"/"+pods[i].Name < pods[j].Namespace+"/"+pods[j].Name })
	for _, pod := range pods {
		if pod.Status.Phase != v1.PodRunning {
			continue
		}
		podDir, err := r.PodDir(pod)
		if err != nil {
			agentmetrics.DiscoveryErrors.Inc()
			logger.V(2).Info("Pod cgroup not found", "pod", klog.KObj(pod), "err", err)
			continue
		}
		dirs, errs := r.ContainerDirs(pod, podDir)
		for _, err := range errs {
			agentmetrics.DiscoveryErrors.Inc()
			logger.V(2).Info("Container cgroup not found", "pod", klog.KObj(pod), "err", err)
		}
		podTarget := &collector.Target{Namespace: pod.Namespace, Pod: pod.Name, PodUID: string(pod.UID), Dir: podDir,
			HostNetwork: pod.Spec.HostNetwork}
		out = append(out, podTarget)
		names := make([]string, 0, len(dirs))
		for name := range dirs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			podTarget.Children = append(podTarget.Children, dirs[name])
			out = append(out, &collector.Target{Namespace: pod.Namespace, Pod: pod.Name, Container: name,
				PodUID: string(pod.UID), Dir: dirs[name], HostNetwork: pod.Spec.HostNetwork})
		}
		for _, cs := range pod.Status.ContainerStatuses {
			seen[cs.ContainerID] = true
		}
	}
	r.mu.Lock()
	for id := range r.cache {
		if !seen[id] {
			delete(r.cache, id)
		}
	}
	r.mu.Unlock()
	return out
}
