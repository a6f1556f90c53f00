// Package report builds the answers of the kubectl-ecloud commands from API objects (pools, claims,
// pods, nodes, Events, netd trace results) and renders them as tables, JSON or YAML. It is pure:
// the commands package fetches the objects, and the rules come from the packages that own them
// (cni/ipam for pools and release policies, scheduler-plugins/dcrule for the two-datacenter rule).
package report
