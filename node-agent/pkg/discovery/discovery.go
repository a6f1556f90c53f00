// Package discovery watches this node's pods and maps each running container to its cgroup.
package discovery

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agentmetrics"
	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
)

// Discovery lists this node's pods from an informer and resolves their cgroups.
type Discovery struct {
	hier     cgroups.Hierarchy
	factory  informers.SharedInformerFactory
	lister   corelisters.PodLister
	informer cache.SharedIndexInformer
	resolver *Resolver
	logger   klog.Logger
}

var _ interface {
	Targets() []*collector.Target
} = &Discovery{}

// New builds the informer on pods with spec.nodeName=nodeName.
func New(ctx context.Context, client kubernetes.Interface, nodeName string, hier cgroups.Hierarchy) *Discovery {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
		}))
	pods := factory.Core().V1().Pods()
	return &Discovery{
		hier: hier, factory: factory, lister: pods.Lister(), informer: pods.Informer(),
		resolver: NewResolver(hier),
		logger:   klog.LoggerWithValues(klog.FromContext(ctx), "node", nodeName),
	}
}

// Informer returns the pod informer (the RDT manager adds its handlers).
func (d *Discovery) Informer() cache.SharedIndexInformer { return d.informer }

// Start runs the informer and waits for its first list.
func (d *Discovery) Start(ctx context.Context) error {
	d.factory.Start(ctx.Done())
	for typ, ok := range d.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("sync %v informer for this node's pods: %w", typ, ctx.Err())
		}
	}
	return nil
}

// Pods lists this node's pods.
func (d *Discovery) Pods() []*v1.Pod {
	pods, _ := d.lister.List(labels.Everything())
	return pods
}

// Targets implements scrape.TargetSource.
func (d *Discovery) Targets() []*collector.Target {
	return d.resolver.Targets(d.logger, d.Pods())
}

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
