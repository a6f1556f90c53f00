// Package bench measures ecloud's scheduler plugins with the upstream scheduler_perf harness
// (k8s.io/kubernetes/test/integration/scheduler_perf) and an out-of-tree registry: the same
// 2-datacenter cluster and pods scheduled by three profiles in one run — the stock profile with
// PodTopologySpread (the closest native rule), DualDatacenter instead of PodTopologySpread, and
// DualDatacenter + IPPool. Run it with `make bench-scheduler`; it needs an etcd binary on PATH
// (scheduler_perf execs one per workload), which the Makefile builds from this module.
package bench
