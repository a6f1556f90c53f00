//go:build bench

// Command cadvisor runs cAdvisor's container manager (github.com/google/cadvisor/lib, as the kubelet
// embeds it) over the same kubepods tree, for the agent benchmark. Only the benchmark imports cAdvisor.
// Like the kubelet's, the manager always keeps the root container "/" (machine-wide stats, one more
// container than the 500) and finds the kubepods containers by watching the tree (inotify).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ecloud-io/ecloud/node-agent/bench/internal/window"
	"github.com/google/cadvisor/lib/cache/memory"
	"github.com/google/cadvisor/lib/container"
	"github.com/google/cadvisor/lib/manager"
	info "github.com/google/cadvisor/lib/model"
	"github.com/google/cadvisor/lib/utils/sysfs"
)

func main() {
	parent := flag.String("parent", "", "kubelet cgroup root of the tree")
	step := flag.Duration("step", 10*time.Second, "housekeeping and query interval")
	warmup := flag.Duration("warmup", 15*time.Second, "run time before the CPU measurement starts")
	duration := flag.Duration("duration", 60*time.Second, "measured run time after the warm-up")
	set := flag.String("metrics", "same", `"same": the families the agent exports (cpu, memory, disk IO, network, process for container_threads, OOM); "basic": cpu, memory, disk IO, network only`)
	flag.Parse()
	win := window.Start(*warmup)
	allowDynamic := false
	metrics := container.MetricSet{
		container.CpuUsageMetrics: {}, container.MemoryUsageMetrics: {}, container.DiskIOMetrics: {},
		container.NetworkUsageMetrics: {},
	}
	if *set == "same" {
		metrics[container.ProcessMetrics] = struct{}{}
		metrics[container.OOMMetrics] = struct{}{}
	}
	m, err := manager.New(memory.New(2*time.Minute, nil), sysfs.NewRealSysFs(),
		manager.HousekeepingConfig{Interval: step, AllowDynamic: &allowDynamic},
		metrics, []string{*parent + "/kubepods"}, nil, "", 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "create cadvisor manager:", err)
		os.Exit(1)
	}
	if err := m.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "start cadvisor manager:", err)
		os.Exit(1)
	}
	deadline := time.Now().Add(*warmup + *duration)
	queries, containers := 0, 0
	// Like the kubelet's /metrics/cadvisor: read the latest stats of every container each step.
	for time.Now().Before(deadline) {
		time.Sleep(min(*step, time.Until(deadline)))
		infos, err := m.GetContainerInfoV2("/", info.RequestOptions{IdType: "name", Count: 1, Recursive: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, "query cadvisor:", err)
		}
		queries++
		containers = len(infos)
	}
	line, err := win.Line()
	_ = m.Stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(line)
	fmt.Fprintf(os.Stderr, "cadvisor (%s metrics): %d queries, %d containers in the last\n", *set, queries, containers)
}
