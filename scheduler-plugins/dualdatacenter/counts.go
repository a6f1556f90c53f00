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
	generation int64
	datacenter string
	usable     bool
	byRevision map[string]int // non-terminating pods of the group per revision; nil if none
	cycle      uint64
}

// groupCounts caches every node's contribution to one group.
type groupCounts struct {
	nodes    map[string]*nodeCount
	lastUsed uint64
}

// countCache makes counting a group O(nodes) map lookups instead of a walk over every pod: a
// node is re-read only when its generation moved since the group was last counted, which for a
// stream of pods of one group is the node that got the previous pod.
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
		gc = &groupCounts{nodes: make(map[string]*nodeCount, len(nodes))}
		c.groups[key] = gc
	}
	gc.lastUsed = c.cycle
	health := dcrule.NewHealth(args.TopologyKey, args.Datacenters)
	counts := dcrule.NewCounts()
	for _, ni := range nodes {
		node := ni.Node()
		if node == nil {
			continue
		}
		nc := gc.nodes[node.Name]
		if nc == nil || nc.generation != ni.GetGeneration() {
			nc = readNode(g, ni, health)
			gc.nodes[node.Name] = nc
		}
		nc.cycle = c.cycle
		if nc.usable {
			health.MarkUp(nc.datacenter)
		}
		for rev, n := range nc.byRevision {
			counts.Add(rev, nc.datacenter, n)
		}
	}
	if len(gc.nodes) > len(nodes) { // nodes were removed
		for name, nc := range gc.nodes {
			if nc.cycle != c.cycle {
				delete(gc.nodes, name)
			}
		}
	}
	return health, counts
}

// readNode computes a node's contribution to the group from its NodeInfo.
func readNode(g *dcrule.Group, ni fwk.NodeInfo, h *dcrule.Health) *nodeCount {
	node := ni.Node()
	nc := &nodeCount{generation: ni.GetGeneration(), datacenter: h.Datacenter(node)}
	if nc.datacenter == "" {
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
