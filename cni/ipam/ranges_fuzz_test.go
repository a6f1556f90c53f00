package ipam

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// fuzzSpec builds a pool spec from the fuzzer's strings: includes "a-b,c-d", excludes "x,y".
func fuzzSpec(cidr, gateway, includes, excludes string) *v1alpha1.IPPoolSpec {
	spec := &v1alpha1.IPPoolSpec{CIDR: cidr, Gateway: gateway}
	if includes != "" {
		for _, r := range strings.Split(includes, ",") {
			start, end, _ := strings.Cut(r, "-")
			spec.IncludeRanges = append(spec.IncludeRanges, v1alpha1.IPRange{Start: start, End: end})
		}
	}
	if excludes != "" {
		spec.ExcludeIPs = strings.Split(excludes, ",")
	}
	return spec
}

// maxWalk bounds the pools the fuzzer walks address by address.
const maxWalk = 4096

// FuzzParseRanges: any pool spec yields Ranges or an error naming the spec field, never a panic.
// For accepted specs: every allocatable address (walked with First/Next, the allocator's scan) is
// inside the CIDR and the include ranges, is not the network address, the IPv4 broadcast address,
// the gateway or an excluded IP; the walk visits Size distinct addresses, each Contains, before
// wrapping to First; Nth(i) is the walk's i-th address.
func FuzzParseRanges(f *testing.F) {
	f.Add("10.0.0.0/24", "10.0.0.1", "", "10.0.0.7,10.0.0.255")
	f.Add("10.0.0.0/24", "10.0.0.1", "10.0.0.20-10.0.0.29,10.0.0.10-10.0.0.20", "10.0.0.15,10.0.0.29")
	f.Add("10.0.0.0/31", "10.0.0.0", "", "")
	f.Add("10.0.0.0/32", "10.0.0.0", "", "")
	f.Add("fd00::/120", "fd00::1", "fd00::10-fd00::1f", "fd00::11")
	f.Add("fd00:1::/64", "fd00:1::1", "", "")
	f.Add("10.0.0.0/24", "::ffff:10.0.0.1", "", "::ffff:10.0.0.9")
	f.Add("fd00::/120", "fd00::1%eth0", "", "fd00::2%eth0")
	f.Add("10.0.0.0/24", "10.0.1.1", "", "")
	f.Add("0.0.0.0/0", "0.0.0.1", "255.255.255.250-255.255.255.255", "")
	f.Fuzz(func(t *testing.T, cidr, gateway, includes, excludes string) {
		spec := fuzzSpec(cidr, gateway, includes, excludes)
		r, err := ParseRanges(spec)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "spec.") {
				t.Fatalf("error %q does not name the spec field", err)
			}
			return
		}
		prefix := netip.MustParsePrefix(cidr)
		gw := netip.MustParseAddr(gateway)
		// The addresses never handed out, as the datapath sees them: no zone, IPv4-mapped
		// IPv6 as IPv4.
		plain := func(a netip.Addr) netip.Addr { return a.WithZone("").Unmap() }
		banned := map[netip.Addr]string{plain(prefix.Addr()): "the network address", plain(gw): "the gateway"}
		if prefix.Addr().Is4() && prefix.Bits() < 31 {
			banned[lastAddr(prefix)] = "the broadcast address"
		}
		for _, s := range spec.ExcludeIPs {
			banned[plain(netip.MustParseAddr(s))] = "excluded"
		}
		for a, why := range banned {
			if r.Contains(a) {
				t.Fatalf("%s %s is allocatable", why, a)
			}
		}
		allowed := func(a netip.Addr) {
			t.Helper()
			if !prefix.Contains(a) {
				t.Fatalf("allocatable %s outside %s", a, prefix)
			}
			if why, ok := banned[plain(a)]; ok {
				t.Fatalf("allocatable %s is %s", a, why)
			}
			if len(spec.IncludeRanges) > 0 && !inIncludes(spec, a) {
				t.Fatalf("allocatable %s outside the include ranges %v", a, spec.IncludeRanges)
			}
			if !r.Contains(a) {
				t.Fatalf("walked to %s, which Contains denies", a)
			}
		}
		size := r.Size()
		first := r.First()
		if size == 0 {
			if first.IsValid() || r.Next(prefix.Addr()).IsValid() || r.Nth(3).IsValid() {
				t.Fatalf("empty pool hands out %s / %s / %s", first, r.Next(prefix.Addr()), r.Nth(3))
			}
			return
		}
		allowed(first)
		if size > maxWalk {
			// Too big to walk: the first, the Nth and their successors are still allocatable.
			for _, n := range []uint64{0, 1, uint64(size) - 1, uint64(size) / 2, 1 << 40} {
				a := r.Nth(n)
				allowed(a)
				allowed(r.Next(a))
			}
			return
		}
		seen := map[netip.Addr]bool{}
		a := first
		for i := int64(0); i < size; i++ {
			allowed(a)
			if seen[a] {
				t.Fatalf("walk visits %s twice", a)
			}
			seen[a] = true
			if nth := r.Nth(uint64(i)); nth != a {
				t.Fatalf("Nth(%d) = %s, the walk's %d-th address is %s", i, nth, i, a)
			}
			if next := r.Next(a); (i == size-1 && next != first) || (i < size-1 && !a.Less(next)) {
				t.Fatalf("Next(%s) = %s at step %d of %d", a, next, i, size)
			}
			a = r.Next(a)
		}
		if a != first {
			t.Fatalf("after %d addresses the walk is at %s, not back at %s", size, a, first)
		}
		if r.Nth(uint64(size)) != first {
			t.Fatalf("Nth(Size) = %s, want the first address %s", r.Nth(uint64(size)), first)
		}
	})
}

func inIncludes(spec *v1alpha1.IPPoolSpec, a netip.Addr) bool {
	for _, ir := range spec.IncludeRanges {
		s, e := netip.MustParseAddr(ir.Start), netip.MustParseAddr(ir.End)
		if !a.Less(s) && !e.Less(a) {
			return true
		}
	}
	return false
}
