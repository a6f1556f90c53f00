package report

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

// SpreadReport is the answer of `kubectl ecloud spread <workload>`.
type SpreadReport struct {
	Workload    string   `json:"workload"`
	Desired     int32    `json:"desired"`
	Datacenters []string `json:"datacenters"`
	MaxSkew     int32    `json:"maxSkew"`
	// Out are the datacenters without a usable node.
	Out []string `json:"out,omitempty"`
	// Revisions are the running pods per datacenter of each revision; Total over all.
	Revisions []RevisionSpread `json:"revisions"`
	Total     map[string]int   `json:"total"`
	// Waiting counts pods pending or terminating (a move or a scale is under way).
	Waiting int `json:"waiting"`
	// NextRevision is the revision new pods get; Next says, per datacenter, whether the
	// two-datacenter rule lets the next pod of it go there and why not.
	NextRevision string          `json:"nextRevision"`
	Next         []NextPlacement `json:"next"`
	// Pods are the running pods in the order a scale-down removes them, with the deletion
	// cost the controller set and the one the rule computes.
	Pods []PodCost `json:"pods"`
	// CostNote explains when costs do not apply.
	CostNote string `json:"costNote,omitempty"`
}

// RevisionSpread is one revision's pods per datacenter.
type RevisionSpread struct {
	Revision string         `json:"revision"`
	Counts   map[string]int `json:"counts"`
}

// NextPlacement is the rule's verdict for one more pod in a datacenter.
type NextPlacement struct {
	Datacenter string `json:"datacenter"`
	Allowed    bool   `json:"allowed"`
	Reason     string `json:"reason,omitempty"`
}

// PodCost is a running pod with its deletion cost.
type PodCost struct {
	Pod        string `json:"pod"`
	Revision   string `json:"revision"`
	Datacenter string `json:"datacenter"`
	Node       string `json:"node"`
	// Cost is the controller.kubernetes.io/pod-deletion-cost annotation ("" when unset),
	// Expected what the deletion-cost controller computes from the current placement.
	Cost     string `json:"cost"`
	Expected int32  `json:"expected"`
}

// SpreadObservation is a group and what is around it.
type SpreadObservation struct {
	Group *dcrule.Group
	// Pods are the namespace's pods (the group's are picked by dcrule.Group.Revision).
	Pods  []corev1.Pod
	Nodes []corev1.Node
	Topo  Topology
	// NextRevision is the revision new pods get; "" picks the newest pod's.
	NextRevision string
}

// BuildSpread counts a group per datacenter and revision and applies the rule (dcrule).
func BuildSpread(o SpreadObservation) *SpreadReport {
	g, topo := o.Group, o.Topo
	r := &SpreadReport{Workload: g.String(), Desired: g.Replicas, Datacenters: topo.Datacenters, MaxSkew: topo.MaxSkew,
		Total: map[string]int{}, Revisions: []RevisionSpread{}, Pods: []PodCost{}}
	nodes := nodeIndex(o.Nodes)
	health := topo.Health(o.Nodes)
	counts := dcrule.NewCounts()
	var placed []dcrule.Placed
	var newest *corev1.Pod
	revOrder := map[string]int{}
	for i := range o.Pods {
		pod := &o.Pods[i]
		rev, ok := g.Revision(pod)
		if !ok || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || dcrule.Exempt(pod, g) {
			continue
		}
		if newest == nil || newest.CreationTimestamp.Before(&pod.CreationTimestamp) {
			newest = pod
		}
		if pod.DeletionTimestamp != nil || pod.Spec.NodeName == "" {
			r.Waiting++
			continue
		}
		dc := topo.Datacenter(nodes[pod.Spec.NodeName])
		if dc == "" {
			continue
		}
		counts.Add(rev, dc, 1)
		placed = append(placed, dcrule.Placed{Pod: pod, Revision: rev, Datacenter: dc})
		if t := pod.CreationTimestamp.Unix(); revOrder[rev] == 0 || int(t) < revOrder[rev] {
			revOrder[rev] = int(t)
		}
	}
	r.NextRevision = o.NextRevision
	if r.NextRevision == "" && newest != nil {
		r.NextRevision, _ = g.Revision(newest)
	}
	for _, dc := range topo.Datacenters {
		r.Total[dc] = counts.Total[dc]
		if !health.Up(dc) {
			r.Out = append(r.Out, dc)
		}
	}
	revs := make([]string, 0, len(counts.ByRevision))
	for rev := range counts.ByRevision {
		revs = append(revs, rev)
	}
	sort.Slice(revs, func(i, j int) bool {
		if revOrder[revs[i]] != revOrder[revs[j]] {
			return revOrder[revs[i]] < revOrder[revs[j]]
		}
		return revs[i] < revs[j]
	})
	for _, rev := range revs {
		rs := RevisionSpread{Revision: rev, Counts: map[string]int{}}
		for _, dc := range topo.Datacenters {
			rs.Counts[dc] = counts.ByRevision[rev][dc]
		}
		r.Revisions = append(r.Revisions, rs)
	}
	verdict := dcrule.Rule{MaxSkew: topo.MaxSkew}.Evaluate(g, r.NextRevision, counts, topo.Datacenters)
	for _, dc := range topo.Datacenters {
		np := NextPlacement{Datacenter: dc, Allowed: verdict.Allowed(dc), Reason: verdict[dc]}
		if !health.Up(dc) {
			np.Allowed, np.Reason = false, fmt.Sprintf("datacenter %s is out (no Ready, schedulable node)", dc)
		}
		r.Next = append(r.Next, np)
	}
	if g.Kind == dcrule.KindStatefulSet {
		r.CostNote = "a StatefulSet removes its highest ordinal first: deletion costs do not apply"
	}
	costs := dcrule.DeletionCosts(placed)
	for _, p := range placed {
		r.Pods = append(r.Pods, PodCost{Pod: p.Pod.Name, Revision: p.Revision, Datacenter: p.Datacenter, Node: p.Pod.Spec.NodeName,
			Cost: p.Pod.Annotations[corev1.PodDeletionCost], Expected: costs[p.Pod]})
	}
	// The ReplicaSet controller removes the lowest cost first (then younger pods).
	sort.SliceStable(r.Pods, func(i, j int) bool {
		if r.Pods[i].Expected != r.Pods[j].Expected {
			return r.Pods[i].Expected < r.Pods[j].Expected
		}
		return r.Pods[i].Pod > r.Pods[j].Pod
	})
	return r
}

// Table implements Renderer.
func (r *SpreadReport) Table(w io.Writer, wide bool) error {
	desired := strconv.Itoa(int(r.Desired))
	if r.Desired < 0 {
		desired = "unknown"
	}
	fmt.Fprintf(w, "%s: desired %s, datacenters %s (maxSkew %d)", r.Workload, desired, strings.Join(r.Datacenters, ", "), r.MaxSkew)
	if r.Waiting > 0 {
		fmt.Fprintf(w, ", %d pod(s) pending or terminating", r.Waiting)
	}
	fmt.Fprintln(w)
	if len(r.Out) > 0 {
		fmt.Fprintf(w, "Datacenter(s) out: %s\n", strings.Join(r.Out, ", "))
	}
	t := newTable(w, append(append([]string{"REVISION"}, upper(r.Datacenters)...), "TOTAL")...)
	for _, rev := range r.Revisions {
		name := orNone(rev.Revision)
		if rev.Revision == r.NextRevision {
			name += " (new)"
		}
		t.row(countRow(name, rev.Counts, r.Datacenters)...)
	}
	t.row(countRow("ALL", r.Total, r.Datacenters)...)
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nNext pod of revision %s:\n", orNone(r.NextRevision))
	for _, n := range r.Next {
		if n.Allowed {
			fmt.Fprintf(w, "  %s: allowed\n", n.Datacenter)
		} else {
			fmt.Fprintf(w, "  %s: refused: %s\n", n.Datacenter, n.Reason)
		}
	}
	fmt.Fprintln(w, "\nScale-down order (first removed first):")
	if r.CostNote != "" {
		fmt.Fprintf(w, "  %s\n", r.CostNote)
	}
	header := []string{"POD", "REVISION", "DATACENTER", "DELETION-COST"}
	if wide {
		header = append(header, "EXPECTED", "NODE")
	}
	t = newTable(w, header...)
	for _, p := range r.Pods {
		row := []string{p.Pod, orNone(p.Revision), p.Datacenter, orNone(p.Cost)}
		if wide {
			row = append(row, strconv.Itoa(int(p.Expected)), p.Node)
		}
		t.row(row...)
	}
	return t.flush()
}

func upper(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToUpper(v)
	}
	return out
}

func countRow(name string, counts map[string]int, dcs []string) []string {
	row := []string{name}
	total := 0
	for _, dc := range dcs {
		row = append(row, strconv.Itoa(counts[dc]))
		total += counts[dc]
	}
	return append(row, strconv.Itoa(total))
}
