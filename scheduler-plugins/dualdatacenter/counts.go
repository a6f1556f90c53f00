package dualdatacenter

import (
	"fmt"
	"sync"

	fwk "k8s.io/kube-scheduler/framework"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

// maxCachedGroups bounds the count cache; the least recently scheduled group is dropped first.
const maxCachedGroups = 256

// nodeCount is what one node contributes to a group, valid for one NodeInfo generation (which
// changes whenever the node's pods or the Node object change).
type nodeCount struct {
	// ni is the snapshot's entry the count was read from. The scheduler's snapshot keeps one
	// NodeInfo per node for the node's lifetime and updates it in place with a new generation, so
	// the same entry at the same generation means nothing changed.
	ni         fwk.NodeInfo
	generation int64
	datacenter string
	usable     bool
	byRevision map[string]int // non-terminating pods of the group per revision; nil if none
}

// groupCounts caches every node's contribution to one group, position by position in the
// snapshot's node list, and keeps their sums, so counting a group costs one pointer and one
// generation comparison per node plus a re-read of the nodes that changed.
type groupCounts struct {
	entries  []nodeCount
	usable   map[string]int            // usable nodes per datacenter
	pods     map[string]map[string]int // revision -> datacenter -> pods
	lastUsed uint64
}

func newGroupCounts(nodes int) *groupCounts {
	return &groupCounts{entries: make([]nodeCount, 0, nodes), usable: map[string]int{}, pods: map[string]map[string]int{}}
}

// apply adds (sign 1) or removes (sign -1) one node's contribution to the sums.
func (gc *groupCounts) apply(nc *nodeCount, sign int) {
	if nc.datacenter == "" {
		return
	}
	if nc.usable {
		if gc.usable[nc.datacenter] += sign; gc.usable[nc.datacenter] == 0 {
			delete(gc.usable, nc.datacenter)
		}
	}
	// Sums that reach zero are dropped, so the revisions of finished rollouts do not pile up.
	for rev, n := range nc.byRevision {
		byDC := gc.pods[rev]
		if byDC == nil {
			byDC = map[string]int{}
			gc.pods[rev] = byDC
		}
		if byDC[nc.datacenter] += sign * n; byDC[nc.datacenter] == 0 {
			delete(byDC, nc.datacenter)
		}
		if len(byDC) == 0 {
			delete(gc.pods, rev)
		}
	}
}

// countCache makes counting a group cheap for a stream of its pods: between two of them only the
// node that got the previous pod has changed, and only that node is read again.
type countCache struct {
	mu     sync.Mutex
	cycle  uint64
	groups map[string]*groupCounts
}

func newCountCache() *countCache { return &countCache{groups: map[string]*groupCounts{}} }

// count returns the datacenters' health and the group's counts over the snapshot's nodes.
func (c *countCache) count(g *dcrule.Group, nodes []fwk.NodeInfo, args config.DualDatacenterArgs) (*dcrule.Health, *dcrule.Counts) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cycle++
	// The owner count is part of the key: a node read before the lister knew a new ReplicaSet of
	// a Deployment must not be reused once it does.
	key := fmt.Sprintf("%s#%d", g.Key(), g.Owners())
	gc := c.groups[key]
	if gc == nil {
		c.evictIfFull()
		gc = newGroupCounts(len(nodes))
		c.groups[key] = gc
	}
	gc.lastUsed = c.cycle
	health := dcrule.NewHealth(args.TopologyKey, args.Datacenters)
	for i, ni := range nodes {
		if i == len(gc.entries) {
			gc.entries = append(gc.entries, nodeCount{})
		}
		e := &gc.entries[i]
		if e.ni == ni && e.generation == ni.GetGeneration() {
			continue
		}
		gc.apply(e, -1)
		*e = readNode(g, ni, health)
		gc.apply(e, 1)
	}
	for i := len(nodes); i < len(gc.entries); i++ { // nodes were removed
		gc.apply(&gc.entries[i], -1)
		gc.entries[i] = nodeCount{}
	}
	gc.entries = gc.entries[:len(nodes)]

	for dc := range gc.usable {
		health.MarkUp(dc)
	}
	counts := dcrule.NewCounts()
	for rev, byDC := range gc.pods {
		for dc, n := range byDC {
			counts.Add(rev, dc, n)
		}
	}
	return health, counts
}

// readNode computes a node's contribution to the group from its NodeInfo.
func readNode(g *dcrule.Group, ni fwk.NodeInfo, h *dcrule.Health) nodeCount {
	nc := nodeCount{ni: ni, generation: ni.GetGeneration()}
	node := ni.Node()
	if nc.datacenter = h.Datacenter(node); nc.datacenter == "" {
		return nc
	}
	nc.usable = dcrule.NodeUsable(node)
	for _, pi := range ni.GetPods() {
		q := pi.GetPod()
		if q.DeletionTimestamp != nil {
			continue
		}
		if rev, member := g.Revision(q); member {
			if nc.byRevision == nil {
				nc.byRevision = map[string]int{}
			}
			nc.byRevision[rev]++
		}
	}
	return nc
}

func (c *countCache) evictIfFull() {
	if len(c.groups) < maxCachedGroups {
		return
	}
	oldest, oldestUse := "", c.cycle
	for key, gc := range c.groups {
		if gc.lastUsed <= oldestUse {
			oldest, oldestUse = key, gc.lastUsed
		}
	}
	delete(c.groups, oldest)
}
