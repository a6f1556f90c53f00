package ipam

import (
	"math"
	"net/netip"
	"testing"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

func TestParseRanges(t *testing.T) {
	cases := []struct {
		name    string
		spec    v1alpha1.IPPoolSpec
		size    int64
		in, out []string
		first   string
		wantErr bool
	}{
		{name: "whole /24 minus network, broadcast, gateway",
			spec: v1alpha1.IPPoolSpec{CIDR: "10.0.0.0/24", Gateway: "10.0.0.1"}, size: 253,
			in: []string{"10.0.0.2", "10.0.0.254"}, out: []string{"10.0.0.0", "10.0.0.1", "10.0.0.255", "10.0.1.1"}, first: "10.0.0.2"},
		{name: "include ranges merged, excludes split",
			spec: v1alpha1.IPPoolSpec{CIDR: "10.0.0.0/24", Gateway: "10.0.0.1",
				IncludeRanges: []v1alpha1.IPRange{{Start: "10.0.0.20", End: "10.0.0.29"}, {Start: "10.0.0.10", End: "10.0.0.20"}},
				ExcludeIPs:    []string{"10.0.0.15", "10.0.0.29"}}, size: 18,
			in: []string{"10.0.0.10", "10.0.0.14", "10.0.0.16", "10.0.0.28"}, out: []string{"10.0.0.9", "10.0.0.15", "10.0.0.29"}, first: "10.0.0.10"},
		{name: "/31 keeps both addresses but the gateway",
			spec: v1alpha1.IPPoolSpec{CIDR: "10.0.0.0/31", Gateway: "10.0.0.0"}, size: 1, in: []string{"10.0.0.1"}, first: "10.0.0.1"},
		{name: "IPv6 /64 saturates",
			spec: v1alpha1.IPPoolSpec{CIDR: "fd00:1::/64", Gateway: "fd00:1::1"}, size: math.MaxInt64,
			in: []string{"fd00:1::2", "fd00:1::ffff:ffff:ffff:ffff"}, out: []string{"fd00:1::", "fd00:1::1"}, first: "fd00:1::2"},
		{name: "IPv6 /120", spec: v1alpha1.IPPoolSpec{CIDR: "fd00::/120", Gateway: "fd00::1"}, size: 254, first: "fd00::2"},
		{name: "CIDR not a network", spec: v1alpha1.IPPoolSpec{CIDR: "10.0.0.1/24", Gateway: "10.0.0.1"}, wantErr: true},
		{name: "range outside CIDR", spec: v1alpha1.IPPoolSpec{CIDR: "10.0.0.0/24", Gateway: "10.0.0.1",
			IncludeRanges: []v1alpha1.IPRange{{Start: "10.0.0.10", End: "10.0.1.10"}}}, wantErr: true},
		{name: "reversed range", spec: v1alpha1.IPPoolSpec{CIDR: "10.0.0.0/24", Gateway: "10.0.0.1",
			IncludeRanges: []v1alpha1.IPRange{{Start: "10.0.0.10", End: "10.0.0.5"}}}, wantErr: true},
		{name: "bad gateway", spec: v1alpha1.IPPoolSpec{CIDR: "10.0.0.0/24", Gateway: "gw"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRanges(&tc.spec)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want error, got ranges %v", r.ranges)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Size() != tc.size {
				t.Errorf("Size() = %d, want %d", r.Size(), tc.size)
			}
			for _, s := range tc.in {
				if !r.Contains(netip.MustParseAddr(s)) {
					t.Errorf("Contains(%s) = false", s)
				}
			}
			for _, s := range tc.out {
				if r.Contains(netip.MustParseAddr(s)) {
					t.Errorf("Contains(%s) = true", s)
				}
			}
			if got := r.First().String(); got != tc.first {
				t.Errorf("First() = %s, want %s", got, tc.first)
			}
		})
	}
}

// TestRangesWalk walks a fragmented pool with Next from every Nth start: each walk visits every
// allocatable address exactly once before wrapping.
func TestRangesWalk(t *testing.T) {
	r, err := ParseRanges(&v1alpha1.IPPoolSpec{CIDR: "10.1.0.0/28", Gateway: "10.1.0.1",
		IncludeRanges: []v1alpha1.IPRange{{Start: "10.1.0.1", End: "10.1.0.5"}, {Start: "10.1.0.9", End: "10.1.0.14"}},
		ExcludeIPs:    []string{"10.1.0.11"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.9", "10.1.0.10", "10.1.0.12", "10.1.0.13", "10.1.0.14"}
	if r.Size() != int64(len(want)) {
		t.Fatalf("Size() = %d, want %d", r.Size(), len(want))
	}
	for n := uint64(0); n < uint64(2*len(want)); n++ {
		start := r.Nth(n)
		if start.String() != want[n%uint64(len(want))] {
			t.Fatalf("Nth(%d) = %s, want %s", n, start, want[n%uint64(len(want))])
		}
		seen := map[netip.Addr]bool{}
		for a, i := start, 0; i < len(want); a, i = r.Next(a), i+1 {
			if seen[a] || !r.Contains(a) {
				t.Fatalf("walk from %s: %s repeated or not allocatable", start, a)
			}
			seen[a] = true
		}
	}
	// Next from an address outside the ranges lands on the next allocatable one.
	for from, to := range map[string]string{"10.1.0.6": "10.1.0.9", "10.1.0.11": "10.1.0.12", "10.1.0.15": "10.1.0.2", "10.1.0.0": "10.1.0.2"} {
		if got := r.Next(netip.MustParseAddr(from)).String(); got != to {
			t.Errorf("Next(%s) = %s, want %s", from, got, to)
		}
	}
}

func TestAddAddr(t *testing.T) {
	cases := []struct {
		a    string
		n    uint64
		want string
	}{
		{"10.0.0.255", 1, "10.0.1.0"},
		{"10.0.0.0", 65536, "10.1.0.0"},
		{"fd00::ffff:ffff:ffff:ffff", 1, "fd00:0:0:1::"},
		{"fd00::", 0, "fd00::"},
	}
	for _, tc := range cases {
		if got := addAddr(netip.MustParseAddr(tc.a), tc.n).String(); got != tc.want {
			t.Errorf("addAddr(%s, %d) = %s, want %s", tc.a, tc.n, got, tc.want)
		}
	}
}
