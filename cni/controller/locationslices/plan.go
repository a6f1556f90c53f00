package locationslices

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// network is where an IP belongs: its pool and the pool's VLAN.
type network struct {
	pool string
	vlan int32
}

// planned is one slice as it should be: the existing object (nil for a new one) and its IPs.
type planned struct {
	name    string
	current *v1alpha1.IPLocationSlice
	ips     map[string]network
}

// Plan spreads the node's desired IPs over its slices with at most max IPs each, moving as
// little as possible: an IP stays in the slice that lists it, new IPs fill slices with room
// (then new slices), and slices left empty go, but one slice always stays (it announces the
// node's tunnel endpoint). It returns the slices to keep or create and those to delete.
func Plan(node string, current []*v1alpha1.IPLocationSlice, desired map[string]network, max int) (keep []planned, drop []*v1alpha1.IPLocationSlice) {
	current = slices.Clone(current)
	slices.SortFunc(current, func(a, b *v1alpha1.IPLocationSlice) int { return strings.Compare(a.Name, b.Name) })
	used := map[string]bool{}
	assigned := map[string]bool{}
	for _, s := range current {
		used[s.Name] = true
		p := planned{name: s.Name, current: s, ips: map[string]network{}}
		for _, nw := range s.Spec.Networks {
			for _, ip := range nw.IPs {
				if want, ok := desired[ip]; ok && !assigned[ip] && want == (network{nw.Pool, nw.VLAN}) && len(p.ips) < max {
					p.ips[ip] = want
					assigned[ip] = true
				}
			}
		}
		keep = append(keep, p)
	}
	var rest []string
	for ip := range desired {
		if !assigned[ip] {
			rest = append(rest, ip)
		}
	}
	sortIPs(rest)
	next := 0
	for i := 0; len(rest) > 0 || len(keep) == 0; i++ {
		if i == len(keep) {
			for used[SliceName(node, next)] {
				next++
			}
			used[SliceName(node, next)] = true
			keep = append(keep, planned{name: SliceName(node, next), ips: map[string]network{}})
		}
		for len(rest) > 0 && len(keep[i].ips) < max {
			keep[i].ips[rest[0]] = desired[rest[0]]
			rest = rest[1:]
		}
	}
	// Empty slices go, but the node keeps one.
	out := keep[:0]
	for i, p := range keep {
		if len(p.ips) == 0 && (len(out) > 0 || anyNonEmpty(keep[i+1:])) {
			if p.current != nil {
				drop = append(drop, p.current)
			}
			continue
		}
		out = append(out, p)
	}
	return out, drop
}

func anyNonEmpty(ps []planned) bool {
	for _, p := range ps {
		if len(p.ips) > 0 {
			return true
		}
	}
	return false
}

// networks is the slice's IPs grouped by pool (pools and IPs sorted).
func (p planned) networks() []v1alpha1.LocatedNetwork {
	by := map[network][]string{}
	for ip, nw := range p.ips {
		by[nw] = append(by[nw], ip)
	}
	out := make([]v1alpha1.LocatedNetwork, 0, len(by))
	for nw, ips := range by {
		sortIPs(ips)
		out = append(out, v1alpha1.LocatedNetwork{Pool: nw.pool, VLAN: nw.vlan, IPs: ips})
	}
	slices.SortFunc(out, func(a, b v1alpha1.LocatedNetwork) int {
		if c := strings.Compare(a.Pool, b.Pool); c != 0 {
			return c
		}
		return int(a.VLAN - b.VLAN)
	})
	return out
}

// SliceName is the name of a node's n-th slice: <node>-<n>, with the node name shortened (and
// a hash of it added) when that would exceed the 253 characters of an object name.
func SliceName(node string, n int) string {
	suffix := fmt.Sprintf("-%d", n)
	if len(node)+len(suffix) <= 253 {
		return node + suffix
	}
	sum := sha256.Sum256([]byte(node))
	h := "-" + hex.EncodeToString(sum[:])[:8]
	return strings.TrimRight(node[:253-len(h)-len(suffix)], ".-") + h + suffix
}

func sortIPs(ips []string) {
	slices.SortFunc(ips, func(a, b string) int {
		pa, ea := netip.ParseAddr(a)
		pb, eb := netip.ParseAddr(b)
		if ea != nil || eb != nil {
			return strings.Compare(a, b)
		}
		return pa.Compare(pb)
	})
}
