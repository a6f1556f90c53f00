//go:build bench

// Command collector runs the node agent's collection loop (collectors, pod→cgroup resolution, the
// Prometheus snapshot) over every pod cgroup of a cgroupfs kubepods tree, for the agent benchmark.
// Pods are discovered from the tree instead of an API server: the kubepods tree is listed again
// before every pass (as cAdvisor's manager watches it), so new and gone pods are found.
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

	"github.com/ecloud-io/ecloud/node-agent/bench/internal/window"
	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/all"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/blkio"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/cpu"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/memory"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector/network"
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
	warmup := flag.Duration("warmup", 15*time.Second, "run time before the CPU measurement starts")
	duration := flag.Duration("duration", 60*time.Second, "measured run time after the warm-up")
	set := flag.String("collectors", "all", `"all": every collector of the agent; "basic": cpu, memory, blkio, network (cAdvisor's basic set)`)
	odinSpool := flag.String("odin-spool", "", "also convert every snapshot to Odin items and spool them here (no sending)")
	flag.Parse()
	hier := cgroups.Hierarchy{Root: *root, Version: cgroups.V1, Driver: cgroups.DriverCgroupfs, Parent: *parent}
	win := window.Start(*warmup)
	res := podcgroup.NewResolver(hier)
	var collectors []collector.Collector
	switch *set {
	case "all":
		collectors = all.New()
	case "basic":
		collectors = []collector.Collector{cpu.New(), memory.New(), blkio.New(), network.New()}
	default:
		fmt.Fprintf(os.Stderr, "-collectors=%q: want all or basic\n", *set)
		os.Exit(2)
	}
	pods := 0
	exporter := promsink.New(scrape.Descs(collectors))
	logger := klog.Background()
	r := &scrape.Runner{
		Env:        &collector.Env{Hierarchy: hier, Reader: &cgroups.Reader{}, ProcRoot: "/proc", SysRoot: "/sys"},
		Collectors: collectors,
		Source: scrape.TargetsFunc(func() []*collector.Target {
			found, err := podsFromTree(hier)
			if err != nil {
				logger.Error(err, "discover pods")
			}
			pods = len(found)
			return res.Targets(logger, found)
		}),
		Node: "bench-node", Datacenter: "dc-a", Step: *step, Clock: clock.RealClock{},
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
	ctx, cancel := context.WithTimeout(context.Background(), *warmup+*duration)
	defer cancel()
	passes, series := 0, 0
	r.Consumers = append(r.Consumers, countConsumer(func(s *scrape.Snapshot) { passes++; series = len(s.Series) }))
	r.Run(ctx)
	line, err := win.Line()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(line)
	fmt.Fprintf(os.Stderr, "collector (%s collectors): %d pods, %d passes, %d series per pass\n", *set, pods, passes, series)
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
