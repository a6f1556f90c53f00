package dcrule

import (
	"fmt"
)

// Rule is the two-datacenter rule: a datacenter with no pod of the group gets the next one, the
// counts differ by at most MaxSkew, and the same holds for each revision of the group, so that a
// finished rollout is spread too.
type Rule struct {
	MaxSkew int32
}

// Verdict says, per datacenter, why one more pod there would break the rule ("" = it would not).
type Verdict map[string]string

// Allowed reports whether the datacenter may take the pod.
func (v Verdict) Allowed(dc string) bool { _, known := v[dc]; return known && v[dc] == "" }

// Evaluate judges placing one more pod of group g, revision rev, into each datacenter of dcs,
// given the group's current counts. Group-level reasons always hold; the revision-level ones give
// way when they would leave no datacenter at all, because during a rolling update that would
// deadlock (old pods are only removed once new ones run).
func (r Rule) Evaluate(g *Group, rev string, c *Counts, dcs []string) Verdict {
	v := r.spread(c.Total, dcs, func(dc, minDC string) string {
		return fmt.Sprintf("node(s) in %s would leave %s with 0 pods in %s", dc, g, minDC)
	}, func(dc string) string {
		return fmt.Sprintf("node(s) in %s would skew %s beyond maxSkew %d (%s)", dc, g, r.MaxSkew, Describe(c.Total, dcs))
	})
	revCounts := c.ByRevision[rev]
	revTotal := 0
	for _, dc := range dcs {
		revTotal += revCounts[dc]
	}
	if revTotal == 0 {
		return v
	}
	rv := r.spread(revCounts, dcs, func(dc, minDC string) string {
		return fmt.Sprintf("node(s) in %s would leave revision %s of %s with 0 pods in %s", dc, rev, g, minDC)
	}, func(dc string) string {
		return fmt.Sprintf("node(s) in %s would skew revision %s of %s beyond maxSkew %d (%s)", dc, rev, g, r.MaxSkew, Describe(revCounts, dcs))
	})
	combined := make(Verdict, len(dcs))
	anyLeft := false
	for _, dc := range dcs {
		combined[dc] = v[dc]
		if combined[dc] == "" {
			combined[dc] = rv[dc]
		}
		anyLeft = anyLeft || combined[dc] == ""
	}
	if anyLeft {
		return combined
	}
	return v
}

// spread judges one more pod in each datacenter against counts: a datacenter with zero pods must
// get it (zero names the reason), and the skew stays within MaxSkew (skewed names it).
func (r Rule) spread(counts map[string]int, dcs []string, zero func(dc, minDC string) string, skewed func(dc string) string) Verdict {
	v := make(Verdict, len(dcs))
	minDC, minCount := "", 0
	for i, dc := range dcs {
		if n := counts[dc]; i == 0 || n < minCount {
			minDC, minCount = dc, n
		}
	}
	for _, dc := range dcs {
		n := counts[dc]
		switch {
		case minCount == 0 && n > 0:
			v[dc] = zero(dc, minDC)
		case int32(n+1-minCount) > r.MaxSkew:
			v[dc] = skewed(dc)
		default:
			v[dc] = ""
		}
	}
	return v
}
