package locationslices

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

func existing(name string, ips ...string) *v1alpha1.IPLocationSlice {
	return &v1alpha1.IPLocationSlice{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.IPLocationSliceSpec{Node: "n", Networks: []v1alpha1.LocatedNetwork{{Pool: "p", VLAN: 1, IPs: ips}}}}
}

func want(ips ...string) map[string]network {
	m := map[string]network{}
	for _, ip := range ips {
		m[ip] = network{"p", 1}
	}
	return m
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		current []*v1alpha1.IPLocationSlice
		desired map[string]network
		keep    []string // name:ip,ip
		drop    []string
	}{{
		name: "a node without IPs has one empty slice",
		keep: []string{"n-0:"},
	}, {
		name:    "new IPs spill into further slices",
		desired: want("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"),
		keep:    []string{"n-0:10.0.0.1,10.0.0.2", "n-1:10.0.0.3,10.0.0.4", "n-2:10.0.0.5"},
	}, {
		name:    "IPs stay where they are; a new one fills the gap a removed one left",
		current: []*v1alpha1.IPLocationSlice{existing("n-0", "10.0.0.1", "10.0.0.2"), existing("n-1", "10.0.0.3", "10.0.0.4")},
		desired: want("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.9"),
		keep:    []string{"n-0:10.0.0.2,10.0.0.9", "n-1:10.0.0.3,10.0.0.4"},
	}, {
		name:    "emptied slices go, the node keeps one",
		current: []*v1alpha1.IPLocationSlice{existing("n-0", "10.0.0.1"), existing("n-1", "10.0.0.3")},
		desired: want("10.0.0.3"),
		keep:    []string{"n-1:10.0.0.3"},
		drop:    []string{"n-0"},
	}, {
		name:    "all gone: the first slice stays, empty",
		current: []*v1alpha1.IPLocationSlice{existing("n-0", "10.0.0.1"), existing("n-1", "10.0.0.3")},
		keep:    []string{"n-0:"},
		drop:    []string{"n-1"},
	}, {
		name:    "an IP whose VLAN changed is rewritten, a duplicate listed once",
		current: []*v1alpha1.IPLocationSlice{existing("n-0", "10.0.0.1", "10.0.0.2"), existing("n-1", "10.0.0.2")},
		desired: map[string]network{"10.0.0.1": {"p", 2}, "10.0.0.2": {"p", 1}},
		keep:    []string{"n-0:10.0.0.1,10.0.0.2"},
		drop:    []string{"n-1"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			keep, drop := Plan("n", tc.current, tc.desired, 2)
			var got, dropped []string
			for _, p := range keep {
				var ips []string
				for _, nw := range p.networks() {
					ips = append(ips, nw.IPs...)
				}
				sortIPs(ips)
				got = append(got, p.name+":"+strings.Join(ips, ","))
			}
			for _, d := range drop {
				dropped = append(dropped, d.Name)
			}
			if !slices.Equal(got, tc.keep) || !slices.Equal(dropped, tc.drop) {
				t.Errorf("keep %v drop %v, want keep %v drop %v", got, dropped, tc.keep, tc.drop)
			}
		})
	}
}

func TestSliceName(t *testing.T) {
	if got := SliceName("dc-a-node-1", 3); got != "dc-a-node-1-3" {
		t.Errorf("SliceName = %q", got)
	}
	long := strings.Repeat("a", 250) + ".b"
	a, b := SliceName(long, 0), SliceName(long[:251]+"c", 0)
	if len(a) > 253 || a == b || !strings.HasSuffix(a, "-0") {
		t.Errorf("long names %q %q", a, b)
	}
}

func TestNetworksGroupedAndSorted(t *testing.T) {
	p := planned{ips: map[string]network{"10.0.0.10": {"b", 2}, "10.0.0.9": {"b", 2}, "10.1.0.1": {"a", 1}}}
	got := fmt.Sprint(p.networks())
	if got != "[{a 1 [10.1.0.1]} {b 2 [10.0.0.9 10.0.0.10]}]" {
		t.Errorf("networks %s", got)
	}
}
