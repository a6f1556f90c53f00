// Package dcrule is the two-datacenter rule shared by the DualDatacenter scheduler plugin and the
// deletion-cost controller: which group (workload) a pod belongs to and which revision of it,
// which datacenters are healthy, per-datacenter counts, whether placing one more pod in a
// datacenter keeps the rule, and in which order a scale-down should remove pods.
package dcrule
