package dcrule

import (
	"fmt"
)

// Rule is the two-datacenter rule: a datacenter with no pod of the group gets the next one, the
// counts differ by at most MaxSkew, and a revision with two or more pods is in every datacenter.
type Rule struct {
	MaxSkew int32
}

// Verdict says, per datacenter, why one more pod there would break the rule ("" = it would not).
type Verdict map[string]string

// Allowed reports whether the datacenter may take the pod.
func (v Verdict) Allowed(dc string) bool { _, known := v[dc]; return known && v[dc] == "" }

// Evaluate judges placing one more pod of group g, revision rev, into each datacenter of dcs,
// given the group's current counts. Group-level reasons (zero pods somewhere, skew) always hold;
// the revision-level one gives way when it would leave no datacenter at all, because during a
// rolling update that would deadlock (old pods are only removed once new ones run).
func (r Rule) Evaluate(g *Group, rev string, c *Counts, dcs []string) Verdict {
	v := make(Verdict, len(dcs))
	minDC, minCount := "", 0
	for i, dc := range dcs {
		if n := c.Total[dc]; i == 0 || n < minCount {
			minDC, minCount = dc, n
		}
	}
	for _, dc := range dcs {
		n := c.Total[dc]
		switch {
		case minCount == 0 && n > 0:
			v[dc] = fmt.Sprintf("node(s) in %s would leave %s with 0 pods in %s", dc, g, minDC)
		case int32(n+1-minCount) > r.MaxSkew:
			v[dc] = fmt.Sprintf("node(s) in %s would skew %s beyond maxSkew %d (%s)", dc, g, r.MaxSkew, Describe(c.Total, dcs))
		default:
			v[dc] = ""
		}
	}
	revCounts := c.ByRevision[rev]
	revTotal, revZero := 0, ""
	for _, dc := range dcs {
		revTotal += revCounts[dc]
		if revCounts[dc] == 0 && revZero == "" {
			revZero = dc
		}
	}
	if revTotal == 0 || revZero == "" {
		return v
	}
	revVerdict := make(Verdict, len(dcs))
	anyLeft := false
	for _, dc := range dcs {
		revVerdict[dc] = v[dc]
		if v[dc] == "" && revCounts[dc] > 0 {
			revVerdict[dc] = fmt.Sprintf("node(s) in %s would leave revision %s of %s with 0 pods in %s", dc, rev, g, revZero)
		}
		anyLeft = anyLeft || revVerdict[dc] == ""
	}
	if anyLeft {
		return revVerdict
	}
	return v
}
