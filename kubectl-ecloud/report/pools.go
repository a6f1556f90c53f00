package report

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/controller/poolstatus"
	"github.com/ecloud-io/ecloud/cni/ipam"
)

// PoolsReport is the answer of `kubectl ecloud pools`.
type PoolsReport struct {
	Pools []PoolUsage `json:"pools"`
	// Warnings are the pools that need attention, one sentence each with the fix.
	Warnings []string `json:"warnings,omitempty"`
}

// PoolUsage is one pool's addresses: counted from its spec (cni/ipam ranges) and its claims.
type PoolUsage struct {
	Name    string `json:"name"`
	CIDR    string `json:"cidr"`
	VLAN    int32  `json:"vlan"`
	Default bool   `json:"default,omitempty"`
	// Reaches are the datacenters with at least one node the pool reaches.
	Reaches []string `json:"reaches"`
	// Total allocatable, Used (claims Bound), Reserved (claims Reserved: scheduled, not yet
	// plumbed) and Free addresses.
	Total    int64 `json:"total"`
	Used     int64 `json:"used"`
	Reserved int64 `json:"reserved"`
	Free     int64 `json:"free"`
	// ByDatacenter counts the held addresses (used + reserved) by the datacenter of the claim's
	// node ("other" for nodes outside the datacenters or gone).
	ByDatacenter map[string]int64 `json:"byDatacenter"`
	// Namespaces are the namespaces allowed to use the pool (empty: every namespace, or those
	// its namespaceSelector matches).
	Namespaces []string `json:"namespaces,omitempty"`
	// Status is Ready, Overlapping, Invalid or LowOnIPs.
	Status string `json:"status"`
}

const otherDC = "other"

// BuildPools counts every pool's addresses.
func BuildPools(pools []v1alpha1.IPPool, claims []v1alpha1.IPClaim, nodes []corev1.Node, topo Topology) *PoolsReport {
	byName := nodeIndex(nodes)
	r := &PoolsReport{Pools: []PoolUsage{}}
	usage := map[string]*PoolUsage{}
	overlaps := ipam.Overlapping(poolPtrs(pools))
	for i := range pools {
		p := &pools[i]
		u := PoolUsage{Name: p.Name, CIDR: p.Spec.CIDR, VLAN: p.Spec.VLAN, Default: p.Spec.Default, Namespaces: p.Spec.Namespaces,
			ByDatacenter: map[string]int64{}, Status: v1alpha1.PoolReady, Reaches: reaches(p, nodes, topo)}
		for _, dc := range topo.Datacenters {
			u.ByDatacenter[dc] = 0
		}
		ranges, err := ipam.ParseRanges(&p.Spec)
		switch {
		case err != nil:
			u.Status = "Invalid"
			r.Warnings = append(r.Warnings, fmt.Sprintf("pool %s: its spec is invalid (%v): nothing is allocated from it until spec.cidr/includeRanges/excludeIPs are fixed", p.Name, err))
		default:
			u.Total = ranges.Size()
		}
		if other, ok := overlaps[p.Name]; ok {
			u.Status = v1alpha1.PoolOverlapping
			r.Warnings = append(r.Warnings, fmt.Sprintf("pool %s: its CIDR %s overlaps pool %s: nothing is allocated from it; give it a CIDR of its own or delete it", p.Name, p.Spec.CIDR, other))
		} else if c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.PoolOverlapping); c != nil && c.Status == metav1.ConditionTrue {
			u.Status = v1alpha1.PoolOverlapping
			r.Warnings = append(r.Warnings, fmt.Sprintf("pool %s: %s", p.Name, c.Message))
		}
		usage[p.Name] = &u
		r.Pools = append(r.Pools, u)
	}
	for i := range claims {
		c := &claims[i]
		u := usage[c.Spec.Pool]
		if u == nil || c.Status.Phase == v1alpha1.PhaseReleased {
			continue
		}
		if c.Status.Phase == v1alpha1.PhaseReserved {
			u.Reserved++
		} else {
			u.Used++
		}
		dc := topo.Datacenter(byName[c.Status.Node])
		if dc == "" {
			dc = otherDC
		}
		u.ByDatacenter[dc]++
	}
	for i := range r.Pools {
		u := usage[r.Pools[i].Name]
		u.Free = max(0, u.Total-u.Used-u.Reserved)
		switch {
		case u.Status != v1alpha1.PoolReady || u.Total == 0:
		case u.Free == 0:
			u.Status = v1alpha1.PoolLowOnIPs
			r.Warnings = append(r.Warnings, fmt.Sprintf("pool %s: exhausted, 0 of %d IPs free: pods that name it stay Pending; add addresses (spec.cidr/includeRanges) or name another pool in %s", u.Name, u.Total, v1alpha1.AnnotationIPPools))
		case u.Free*100 < u.Total*poolstatus.LowOnIPsPercent:
			u.Status = v1alpha1.PoolLowOnIPs
			r.Warnings = append(r.Warnings, fmt.Sprintf("pool %s: low on IPs, %d of %d free (%s, below %d%%): add addresses (spec.cidr/includeRanges) or move workloads to another pool", u.Name, u.Free, u.Total, percent(u.Free, u.Total), poolstatus.LowOnIPsPercent))
		}
		r.Pools[i] = *u
	}
	sort.Slice(r.Pools, func(i, j int) bool { return r.Pools[i].Name < r.Pools[j].Name })
	return r
}

func poolPtrs(pools []v1alpha1.IPPool) []*v1alpha1.IPPool {
	out := make([]*v1alpha1.IPPool, len(pools))
	for i := range pools {
		out[i] = &pools[i]
	}
	return out
}

// reaches lists the datacenters (in topology order, then others) where the pool reaches a node.
func reaches(p *v1alpha1.IPPool, nodes []corev1.Node, topo Topology) []string {
	seen := map[string]bool{}
	for i := range nodes {
		if ok, err := ipam.PoolReachesNode(p, &nodes[i]); err == nil && ok {
			dc := topo.Datacenter(&nodes[i])
			if dc == "" {
				dc = otherDC
			}
			seen[dc] = true
		}
	}
	out := []string{}
	for _, dc := range append(append([]string{}, topo.Datacenters...), otherDC) {
		if seen[dc] {
			out = append(out, dc)
		}
	}
	return out
}

func percent(part, total int64) string {
	if total == 0 {
		return "-"
	}
	return strconv.FormatInt(part*100/total, 10) + "%"
}

// Table implements Renderer.
func (r *PoolsReport) Table(w io.Writer, wide bool) error {
	header := []string{"POOL", "CIDR", "VLAN", "REACHES", "TOTAL", "USED", "RESERVED", "FREE", "FREE%", "STATUS"}
	if wide {
		header = append(header, "HELD-PER-DC", "DEFAULT", "NAMESPACES")
	}
	t := newTable(w, header...)
	for _, p := range r.Pools {
		row := []string{p.Name, p.CIDR, strconv.Itoa(int(p.VLAN)), orNone(strings.Join(p.Reaches, ",")),
			strconv.FormatInt(p.Total, 10), strconv.FormatInt(p.Used, 10), strconv.FormatInt(p.Reserved, 10),
			strconv.FormatInt(p.Free, 10), percent(p.Free, p.Total), p.Status}
		if wide {
			var per []string
			dcs := make([]string, 0, len(p.ByDatacenter))
			for dc := range p.ByDatacenter {
				dcs = append(dcs, dc)
			}
			sort.Strings(dcs)
			for _, dc := range dcs {
				per = append(per, fmt.Sprintf("%s=%d", dc, p.ByDatacenter[dc]))
			}
			ns := strings.Join(p.Namespaces, ",")
			if ns == "" {
				ns = "<any>"
			}
			row = append(row, orNone(strings.Join(per, ",")), strconv.FormatBool(p.Default), ns)
		}
		t.row(row...)
	}
	if err := t.flush(); err != nil {
		return err
	}
	for _, warn := range r.Warnings {
		if _, err := fmt.Fprintln(w, "Warning: "+warn); err != nil {
			return err
		}
	}
	return nil
}
