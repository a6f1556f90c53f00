package ipam

import (
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// addrRange is an inclusive range of addresses of one family.
type addrRange struct{ first, last netip.Addr }

// Ranges is the set of allocatable addresses of a pool: its CIDR (or its include ranges) minus the
// network address, the IPv4 broadcast address, the gateway and the excluded IPs. It is immutable
// and safe for concurrent use.
type Ranges struct {
	prefix netip.Prefix
	// ranges are sorted, disjoint, non-adjacent and hold only allocatable addresses.
	ranges []addrRange
	size   uint128
}

// ParseRanges computes the allocatable addresses of a pool spec.
func ParseRanges(spec *v1alpha1.IPPoolSpec) (*Ranges, error) {
	prefix, err := netip.ParsePrefix(spec.CIDR)
	if err != nil {
		return nil, fmt.Errorf("spec.cidr %q: %w", spec.CIDR, err)
	}
	if prefix.Masked() != prefix {
		return nil, fmt.Errorf("spec.cidr %q: host bits are not zero", spec.CIDR)
	}
	var rs []addrRange
	if len(spec.IncludeRanges) == 0 {
		rs = []addrRange{{prefix.Addr(), lastAddr(prefix)}}
	}
	for i, ir := range spec.IncludeRanges {
		first, err1 := netip.ParseAddr(ir.Start)
		last, err2 := netip.ParseAddr(ir.End)
		if err1 != nil || err2 != nil || !prefix.Contains(first) || !prefix.Contains(last) || last.Less(first) {
			return nil, fmt.Errorf("spec.includeRanges[%d] %s-%s: not an ordered range inside %s", i, ir.Start, ir.End, prefix)
		}
		rs = append(rs, addrRange{first, last})
	}
	rs = mergeRanges(rs)
	excluded := []netip.Addr{prefix.Addr()} // network address (IPv6: subnet-router anycast)
	if prefix.Addr().Is4() && prefix.Bits() < 31 {
		excluded = append(excluded, lastAddr(prefix))
	}
	// The gateway and the excluded IPs must be addresses of the CIDR, as the CRD's validation
	// says: an address the ranges cannot hold (another family, an IPv4-mapped IPv6 address, a
	// zone) would otherwise stay allocatable.
	gw, err := netip.ParseAddr(spec.Gateway)
	if err != nil {
		return nil, fmt.Errorf("spec.gateway %q: %w", spec.Gateway, err)
	}
	if !prefix.Contains(gw) {
		return nil, fmt.Errorf("spec.gateway %q: not an address inside spec.cidr %s", spec.Gateway, prefix)
	}
	excluded = append(excluded, gw)
	for i, s := range spec.ExcludeIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("spec.excludeIPs[%d] %q: %w", i, s, err)
		}
		if !prefix.Contains(a) {
			return nil, fmt.Errorf("spec.excludeIPs[%d] %q: not an address inside spec.cidr %s", i, s, prefix)
		}
		excluded = append(excluded, a)
	}
	for _, a := range excluded {
		rs = subtract(rs, a)
	}
	r := &Ranges{prefix: prefix, ranges: rs}
	for _, x := range rs {
		r.size = r.size.add(rangeSize(x))
	}
	return r, nil
}

// Prefix is the pool's CIDR.
func (r *Ranges) Prefix() netip.Prefix { return r.prefix }

// Size is the number of allocatable addresses, saturated at math.MaxInt64.
func (r *Ranges) Size() int64 { return r.size.int64() }

// Contains reports whether a is allocatable.
func (r *Ranges) Contains(a netip.Addr) bool {
	i := r.find(a)
	return i >= 0
}

// find returns the index of the range holding a, or -1.
func (r *Ranges) find(a netip.Addr) int {
	i, _ := slices.BinarySearchFunc(r.ranges, a, func(x addrRange, a netip.Addr) int {
		switch {
		case x.last.Less(a):
			return -1
		case a.Less(x.first):
			return 1
		}
		return 0
	})
	if i < len(r.ranges) && !a.Less(r.ranges[i].first) && !r.ranges[i].last.Less(a) {
		return i
	}
	return -1
}

// First is the lowest allocatable address (invalid for an empty pool).
func (r *Ranges) First() netip.Addr {
	if len(r.ranges) == 0 {
		return netip.Addr{}
	}
	return r.ranges[0].first
}

// Next returns the allocatable address after a, wrapping around to the first one. a need not be
// allocatable itself.
func (r *Ranges) Next(a netip.Addr) netip.Addr {
	if len(r.ranges) == 0 {
		return netip.Addr{}
	}
	for _, x := range r.ranges {
		if a.Less(x.first) {
			return x.first
		}
		if a.Less(x.last) {
			return a.Next()
		}
	}
	return r.ranges[0].first
}

// Nth returns the n-th allocatable address (0-based, modulo Size): a way to start scanning at a
// random place so that allocators in different processes rarely race for the same address.
func (r *Ranges) Nth(n uint64) netip.Addr {
	if len(r.ranges) == 0 {
		return netip.Addr{}
	}
	if r.size.hi == 0 && r.size.lo > 0 {
		n %= r.size.lo
	}
	for _, x := range r.ranges {
		s := rangeSize(x)
		if s.hi > 0 || n < s.lo {
			return addAddr(x.first, n)
		}
		n -= s.lo
	}
	return r.ranges[0].first
}

// Overlaps reports whether two pools' CIDRs share an address.
func (r *Ranges) Overlaps(o *Ranges) bool { return r.prefix.Overlaps(o.prefix) }

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func mergeRanges(rs []addrRange) []addrRange {
	slices.SortFunc(rs, func(a, b addrRange) int { return a.first.Compare(b.first) })
	var out []addrRange
	for _, x := range rs {
		if n := len(out); n > 0 && (!out[n-1].last.Less(x.first) || out[n-1].last.Next() == x.first) {
			if out[n-1].last.Less(x.last) {
				out[n-1].last = x.last
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// subtract removes a from the ranges, splitting the range that holds it.
func subtract(rs []addrRange, a netip.Addr) []addrRange {
	out := rs[:0:0]
	for _, x := range rs {
		if a.Less(x.first) || x.last.Less(a) {
			out = append(out, x)
			continue
		}
		if x.first != a {
			out = append(out, addrRange{x.first, a.Prev()})
		}
		if x.last != a {
			out = append(out, addrRange{a.Next(), x.last})
		}
	}
	return out
}

// uint128 counts addresses of IPv6 ranges.
type uint128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) uint128 {
	b := a.As16()
	var u uint128
	for i := 0; i < 8; i++ {
		u.hi = u.hi<<8 | uint64(b[i])
		u.lo = u.lo<<8 | uint64(b[i+8])
	}
	return u
}

func (u uint128) add(v uint128) uint128 {
	lo, c := bits.Add64(u.lo, v.lo, 0)
	hi, _ := bits.Add64(u.hi, v.hi, c)
	return uint128{hi, lo}
}

func (u uint128) sub(v uint128) uint128 {
	lo, b := bits.Sub64(u.lo, v.lo, 0)
	hi, _ := bits.Sub64(u.hi, v.hi, b)
	return uint128{hi, lo}
}

func (u uint128) int64() int64 {
	if u.hi > 0 || u.lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u.lo)
}

func rangeSize(x addrRange) uint128 {
	return toU128(x.last).sub(toU128(x.first)).add(uint128{0, 1})
}

// addAddr returns a+n within a's family (callers keep the result inside a range).
func addAddr(a netip.Addr, n uint64) netip.Addr {
	u := toU128(a).add(uint128{0, n})
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[7-i] = byte(u.hi >> (8 * i))
		b[15-i] = byte(u.lo >> (8 * i))
	}
	r := netip.AddrFrom16(b)
	if a.Is4() {
		return r.Unmap()
	}
	return r
}
