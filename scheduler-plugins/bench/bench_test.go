//go:build schedulerperf

// Package bench runs the upstream scheduler_perf harness (k8s.io/kubernetes/test/integration/
// scheduler_perf) with ecloud's plugins in its out-of-tree registry, comparing the stock
// PodTopologySpread rule with DualDatacenter on two datacenters. It needs an etcd binary on PATH
// (scheduler_perf starts one per workload); `make bench-scheduler` builds it from this module.
// The build tag keeps this heavy test binary out of `go test ./...`.
package bench

import (
	"fmt"
	"os"
	"testing"

	_ "k8s.io/component-base/logs/json/register"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	perf "k8s.io/kubernetes/test/integration/scheduler_perf"

	"github.com/ecloud-io/ecloud/scheduler-plugins/dualdatacenter"
)

func TestMain(m *testing.M) {
	if err := perf.InitTests(); err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// outOfTree is the registry the benchmark's schedulers get: the same plugins as ecloud-scheduler.
func outOfTree() frameworkruntime.Registry {
	return frameworkruntime.Registry{
		dualdatacenter.Name: dualdatacenter.New,
		// IPPool: ippool.Name: ippool.New,
	}
}

func BenchmarkPerfScheduling(b *testing.B) {
	perf.RunBenchmarkPerfScheduling(b, "performance-config.yaml", "ecloud", outOfTree())
}
