package dcrule

import (
	"fmt"
	"strings"
)

// Counts are a group's pods per datacenter, in total and per revision.
type Counts struct {
	Total      map[string]int
	ByRevision map[string]map[string]int
}

// NewCounts returns empty counts.
func NewCounts() *Counts {
	return &Counts{Total: map[string]int{}, ByRevision: map[string]map[string]int{}}
}

// Add counts n pods of revision rev in datacenter dc.
func (c *Counts) Add(rev, dc string, n int) {
	c.Total[dc] += n
	if c.ByRevision[rev] == nil {
		c.ByRevision[rev] = map[string]int{}
	}
	c.ByRevision[rev][dc] += n
}

// Describe renders counts over the datacenters, e.g. "dc-a=3, dc-b=1".
func Describe(counts map[string]int, dcs []string) string {
	parts := make([]string, len(dcs))
	for i, dc := range dcs {
		parts[i] = fmt.Sprintf("%s=%d", dc, counts[dc])
	}
	return strings.Join(parts, ", ")
}
