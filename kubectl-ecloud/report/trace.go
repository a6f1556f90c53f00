package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

// TraceReport is the answer of `kubectl ecloud trace <pod> <IP>`: netd's trace and what the
// cluster knows about the destination.
type TraceReport struct {
	Pod string `json:"pod"`
	nodeapi.TraceResult
	// DestinationOwner is the pod holding the destination IP (from its IPClaim), DestinationNode
	// its node and DestinationDatacenter that node's datacenter.
	DestinationOwner      string `json:"destinationOwner,omitempty"`
	DestinationNode       string `json:"destinationNode,omitempty"`
	DestinationDatacenter string `json:"destinationDatacenter,omitempty"`
	// TunnelDatacenter is the datacenter of the node a tunnel verdict leads to.
	TunnelDatacenter string `json:"tunnelDatacenter,omitempty"`
	// Path is the verdict in one sentence.
	Path string `json:"path"`
}

// BuildTrace words netd's trace; dcOf gives a node's datacenter ("" unknown).
func BuildTrace(pod string, res nodeapi.TraceResult, dstOwner, dstNode string, dcOf func(node string) string) *TraceReport {
	r := &TraceReport{Pod: pod, TraceResult: res, DestinationOwner: dstOwner, DestinationNode: dstNode, DestinationDatacenter: dcOf(dstNode)}
	in := func(node string) string {
		if dc := dcOf(node); dc != "" {
			return node + " (" + dc + ")"
		}
		return node
	}
	switch res.Verdict {
	case nodeapi.TraceLocal:
		r.Path = fmt.Sprintf("delivered on node %s to port %s (OpenFlow port %d) of pod %s", res.Node, res.Out.Name, res.Out.OFPort, res.Out.Pod)
	case nodeapi.TraceTunnel:
		r.TunnelDatacenter = dcOf(res.Out.Node)
		r.Path = fmt.Sprintf("into the tunnel %s (OpenFlow port %d) to node %s, remote IP %s", res.Out.Name, res.Out.OFPort, in(res.Out.Node), res.Out.RemoteIP)
	case nodeapi.TraceGateway:
		r.Path = fmt.Sprintf("out of the overlay through the gateway port %s (OpenFlow port %d) into node %s's host network", res.Out.Name, res.Out.OFPort, res.Node)
	case nodeapi.TraceOther:
		r.Path = fmt.Sprintf("out of OpenFlow port %d, which netd does not own", res.Out.OFPort)
	default:
		r.Path = "dropped"
		if n := len(res.Rules); n > 0 {
			last := res.Rules[n-1]
			r.Path = fmt.Sprintf("dropped by table %d, priority %d, match %q (%s)", last.Table, last.Priority, orNone(last.Match), dropMeaning(last))
		}
	}
	return r
}

// dropMeaning says why netd's pipeline drops in a rule (cni/netd's tables).
func dropMeaning(rule nodeapi.TraceRule) string {
	switch {
	case rule.Table == 0:
		return "the packet's source is not this pod's IP on its port: anti-spoofing"
	case strings.Contains(rule.Match, "nw_dst=") && rule.Priority > 0:
		return "the destination is in a pool but not reachable from the pod's VLAN: another pool, or an IP no pod holds"
	}
	return "no rule forwards it"
}

// Table implements Renderer.
func (r *TraceReport) Table(w io.Writer, wide bool) error {
	fmt.Fprintf(w, "From pod %s (%s, port %s on node %s) to %s", r.Pod, r.SourceIP, r.Source.Name, r.Node, r.Destination)
	if r.DestinationOwner != "" {
		fmt.Fprintf(w, " (pod %s on node %s)", r.DestinationOwner, orNone(r.DestinationNode))
	}
	fmt.Fprintf(w, "\nPath: %s\n", r.Path)
	fmt.Fprintln(w, "Rules matched:")
	for _, rule := range r.Rules {
		fmt.Fprintf(w, "  table %d, priority %d, %s\n      -> %s\n", rule.Table, rule.Priority, orNone(rule.Match), strings.Join(rule.Actions, ", "))
	}
	fmt.Fprintf(w, "Datapath actions: %s\n", r.DatapathActions)
	if wide {
		fmt.Fprintf(w, "Flow: %s\n\n%s", r.Flow, r.Output)
	}
	return nil
}
