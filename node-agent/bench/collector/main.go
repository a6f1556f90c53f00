//go:build bench

// Command collector runs the node agent's collection loop (collectors, pod→cgroup resolution, the
// Prometheus snapshot) over every pod cgroup of a cgroupfs kubepods tree, for the agent benchmark.
// Pods are read from the tree instead of an API server.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/all"
	"github.com/ecloud-io/ecloud/node-agent/pkg/config"
	"github.com/ecloud-io/ecloud/node-agent/pkg/odin"
	"github.com/ecloud-io/ecloud/node-agent/pkg/podcgroup"
	"github.com/ecloud-io/ecloud/node-agent/pkg/promsink"
	"github.com/ecloud-io/ecloud/node-agent/pkg/scrape"
)

func main() {
	root := flag.String("root", "/sys/fs/cgroup", "cgroup mount")
	parent := flag.String("parent", "", "kubelet cgroup root of the tree")
	step := flag.Duration("step", 10*time.Second, "collection interval")
	duration := flag.Duration("duration", 60*time.Second, "how long to run")
	odinSpool := flag.String("odin-spool", "", "also convert every snapshot to Odin items and spool them here (no sending)")
	flag.Parse()
	hier := cgroups.Hierarchy{Root: *root, Version: cgroups.V1, Driver: cgroups.DriverCgroupfs, Parent: *parent}
	pods, err := podsFromTree(hier)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	res := podcgroup.NewResolver(hier)
	collectors := all.New()
	exporter := promsink.New(scrape.Descs(collectors))
	logger := klog.Background()
	r := &scrape.Runner{
		Env:        &collector.Env{Hierarchy: hier, Reader: &cgroups.Reader{}, ProcRoot: "/proc", SysRoot: "/sys"},
		Collectors: collectors,
		Source:     scrape.TargetsFunc(func() []*collector.Target { return res.Targets(logger, pods) }),
		Node:       "bench-node", Datacenter: "dc-a", Step: *step, Clock: clock.RealClock{},
		Consumers: []scrape.Consumer{exporter},
	}
	if *odinSpool != "" {
		cfg := config.Default().Odin
		cfg.URL, cfg.SpoolDir = "http://127.0.0.1:1/api/push", *odinSpool
		p, err := odin.New(cfg, *step, clock.RealClock{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		r.Consumers = append(r.Consumers, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	passes, series := 0, 0
	r.Consumers = append(r.Consumers, countConsumer(func(s *scrape.Snapshot) { passes++; series = len(s.Series) }))
	r.Run(ctx)
	fmt.Fprintf(os.Stderr, "collector: %d pods, %d passes, %d series per pass\n", len(pods), passes, series)
}

type countConsumer func(*scrape.Snapshot)

func (f countConsumer) Consume(_ context.Context, s *scrape.Snapshot) { f(s) }

// podsFromTree lists kubepods/<qos>/pod<uid>/<id> and returns Running pods with those containers.
func podsFromTree(h cgroups.Hierarchy) ([]*v1.Pod, error) {
	var pods []*v1.Pod
	for _, qos := range []string{cgroups.QoSBurstable, cgroups.QoSBestEffort} {
		dir := h.Path("cpu", filepath.Join(h.Parent, "kubepods", qos))
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("list pods in %s: %w", dir, err)
		}
		for _, e := range entries {
			uid, ok := strings.CutPrefix(e.Name(), "pod")
			if !e.IsDir() || !ok {
				continue
			}
			pod := &v1.Pod{}
			pod.Namespace, pod.Name, pod.UID = "bench", "pod-"+uid[:8], types.UID(uid)
			pod.Status.Phase = v1.PodRunning
			pod.Status.QOSClass = map[string]v1.PodQOSClass{cgroups.QoSBurstable: v1.PodQOSBurstable, cgroups.QoSBestEffort: v1.PodQOSBestEffort}[qos]
			ctrs, err := os.ReadDir(filepath.Join(dir, e.Name()))
			if err != nil {
				return nil, err
			}
			for i, c := range ctrs {
				if !c.IsDir() {
					continue
				}
				pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, v1.ContainerStatus{
					Name: fmt.Sprintf("c%d", i), ContainerID: "containerd://" + c.Name(),
					State: v1.ContainerState{Running: &v1.ContainerStateRunning{}},
				})
			}
			pods = append(pods, pod)
		}
	}
	return pods, nil
}
