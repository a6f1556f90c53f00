package agent_test

import (
	"context"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/clock"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/all"
	"github.com/ecloud-io/ecloud/node-agent/pkg/podcgroup"
	"github.com/ecloud-io/ecloud/node-agent/pkg/scrape"
)

// runningPod builds a Running pod whose containers have containerd IDs.
func runningPod(ns, name, uid string, qos v1.PodQOSClass, containers map[string]string) *v1.Pod {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)},
		Status:     v1.PodStatus{Phase: v1.PodRunning, QOSClass: qos},
	}
	for cname, id := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, v1.Container{Name: cname})
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, v1.ContainerStatus{
			Name: cname, ContainerID: "containerd://" + id,
			State: v1.ContainerState{Running: &v1.ContainerStateRunning{}},
		})
	}
	return pod
}

// collect runs one pass of every collector over the pods' cgroups.
func collect(t *testing.T, hier cgroups.Hierarchy, procRoot string, pods ...*v1.Pod) *scrape.Snapshot {
	t.Helper()
	logger, ctx := ktesting.NewTestContext(t)
	res := podcgroup.NewResolver(hier)
	r := &scrape.Runner{
		Env:        &collector.Env{Hierarchy: hier, Reader: &cgroups.Reader{}, ProcRoot: procRoot, SysRoot: "/sys"},
		Collectors: all.New(),
		Source:     scrape.TargetsFunc(func() []*collector.Target { return res.Targets(logger, pods) }),
		Node:       "node-1", Datacenter: "dc-a", Clock: clock.RealClock{},
	}
	return r.CollectOnce(context.WithoutCancel(ctx))
}

// value returns the single series of metric for container (with extra labels "k=v"), failing when
// absent.
func value(t *testing.T, snap *scrape.Snapshot, pod, container, metric string, extra ...string) float64 {
	t.Helper()
	v, ok := lookup(snap, pod, container, metric, extra...)
	if !ok {
		t.Fatalf("no series %s{pod=%q,container=%q,%s}", metric, pod, container, strings.Join(extra, ","))
	}
	return v
}

func lookup(snap *scrape.Snapshot, pod, container, metric string, extra ...string) (float64, bool) {
next:
	for _, s := range snap.Series {
		if s.Desc.Name != metric || s.Target.Pod != pod || s.Target.Container != container {
			continue
		}
		for _, kv := range extra {
			k, v, _ := strings.Cut(kv, "=")
			found := false
			for i, l := range s.Desc.Labels {
				if l == k && s.LabelValues[i] == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return s.Value, true
	}
	return 0, false
}
