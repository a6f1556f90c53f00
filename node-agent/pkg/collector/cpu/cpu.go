// Package cpu collects CPU usage and CFS throttling (cpuacct + cpu on v1, cpu.stat on v2).
package cpu

import (
	"fmt"

	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
)

// Name of the collector.
const Name = "cpu"

// userHZ is the unit of cpuacct.stat (USER_HZ, 100 on every Linux architecture Kubernetes runs on).
const userHZ = 100

var (
	usage     = &collector.Desc{Name: "container_cpu_usage_seconds_total", Help: "Cumulative cpu time consumed in seconds.", Kind: collector.Counter}
	user      = &collector.Desc{Name: "container_cpu_user_seconds_total", Help: "Cumulative user cpu time consumed in seconds.", Kind: collector.Counter}
	system    = &collector.Desc{Name: "container_cpu_system_seconds_total", Help: "Cumulative system cpu time consumed in seconds.", Kind: collector.Counter}
	periods   = &collector.Desc{Name: "container_cpu_cfs_periods_total", Help: "Number of elapsed enforcement period intervals.", Kind: collector.Counter}
	throttled = &collector.Desc{Name: "container_cpu_cfs_throttled_periods_total", Help: "Number of throttled period intervals.", Kind: collector.Counter}
	thrTime   = &collector.Desc{Name: "container_cpu_cfs_throttled_seconds_total", Help: "Total time duration the container has been throttled.", Kind: collector.Counter}
)

// Collector reads CPU statistics.
type Collector struct{}

var _ collector.Collector = &Collector{}

// New returns the CPU collector.
func New() *Collector { return &Collector{} }

// Name implements collector.Collector.
func (*Collector) Name() string { return Name }

// Describe implements collector.Collector.
func (*Collector) Describe() []*collector.Desc {
	return []*collector.Desc{usage, user, system, periods, throttled, thrTime}
}

// Collect implements collector.Collector.
func (*Collector) Collect(env *collector.Env, t *collector.Target, sink collector.Sink) error {
	if env.Hierarchy.Version == cgroups.V2 {
		return collectV2(env, t, sink)
	}
	return collectV1(env, t, sink)
}

func collectV1(env *collector.Env, t *collector.Target, sink collector.Sink) error {
	acct := env.Hierarchy.Path("cpuacct", t.Dir)
	ns, _, err := env.Reader.ReadUint(acct + "/cpuacct.usage")
	if err != nil {
		return err
	}
	sink.Add(usage, float64(ns)/1e9)
	b, err := env.Reader.ReadFile(acct + "/cpuacct.stat")
	if err != nil {
		return err
	}
	cgroups.ForEachKeyUint(b, func(k []byte, v uint64) {
		switch string(k) {
		case "user":
			sink.Add(user, float64(v)/userHZ)
		case "system":
			sink.Add(system, float64(v)/userHZ)
		}
	})
	path := env.Hierarchy.Path("cpu", t.Dir) + "/cpu.stat"
	b, err = env.Reader.ReadFile(path)
	if err != nil {
		return err
	}
	emitThrottling(b, "throttled_time", 1e9, sink)
	return nil
}

func collectV2(env *collector.Env, t *collector.Target, sink collector.Sink) error {
	path := env.Hierarchy.Path("cpu", t.Dir) + "/cpu.stat"
	b, err := env.Reader.ReadFile(path)
	if err != nil {
		return err
	}
	found := false
	cgroups.ForEachKeyUint(b, func(k []byte, v uint64) {
		switch string(k) {
		case "usage_usec":
			found = true
			sink.Add(usage, float64(v)/1e6)
		case "user_usec":
			sink.Add(user, float64(v)/1e6)
		case "system_usec":
			sink.Add(system, float64(v)/1e6)
		}
	})
	if !found {
		return fmt.Errorf("parse %s: no usage_usec", path)
	}
	emitThrottling(b, "throttled_usec", 1e6, sink)
	return nil
}

// emitThrottling emits the CFS series when the cgroup has a quota (nr_periods > 0), as cAdvisor does.
func emitThrottling(b []byte, timeKey string, perSecond float64, sink collector.Sink) {
	var nrPeriods, nrThrottled, thr uint64
	cgroups.ForEachKeyUint(b, func(k []byte, v uint64) {
		switch string(k) {
		case "nr_periods":
			nrPeriods = v
		case "nr_throttled":
			nrThrottled = v
		case timeKey:
			thr = v
		}
	})
	if nrPeriods == 0 {
		return
	}
	sink.Add(periods, float64(nrPeriods))
	sink.Add(throttled, float64(nrThrottled))
	sink.Add(thrTime, float64(thr)/perSecond)
}
