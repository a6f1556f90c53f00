package nodeapi

// PathTrace is netd's read-only OpenFlow trace endpoint on its metrics/health HTTP server (not on
// the CNI socket): GET with the query parameters TraceQuery* name the source pod (which must have
// a port on this node) and the destination; the answer is a TraceResult. It runs exactly one
// command, `ovs-appctl ofproto/trace <bridge> <flow>`, with a flow netd builds itself from the
// pod's port and the parsed destination, so callers cannot pass OVS arguments.
const PathTrace = "/debug/ecloud/trace"

// Query parameters of PathTrace.
const (
	TraceQueryNamespace = "namespace"
	TraceQueryPod       = "pod"
	TraceQueryDst       = "dst"
	// TraceQueryProtocol is icmp (default), tcp or udp.
	TraceQueryProtocol = "protocol"
	// TraceQueryPort is the destination port for tcp and udp (default 80).
	TraceQueryPort = "port"
)

// Verdicts of a trace: where the bridge sends the packet.
const (
	TraceLocal   = "local"   // to a pod port on the same node
	TraceTunnel  = "tunnel"  // into the tunnel to another node
	TraceGateway = "gateway" // through the gateway port into the host stack
	TraceDrop    = "drop"    // nowhere: the last rule in Rules drops it
	TraceOther   = "other"   // to a port netd does not own
)

// TraceRule is one OpenFlow rule the packet matched, in order.
type TraceRule struct {
	Table    int      `json:"table"`
	Priority int      `json:"priority"`
	Match    string   `json:"match"`
	Cookie   string   `json:"cookie,omitempty"`
	Actions  []string `json:"actions"`
}

// TracePort is a bridge port the packet leaves through.
type TracePort struct {
	Name   string `json:"name"`
	OFPort int    `json:"ofport"`
	// Role is pod, tunnel or gateway (the port's ecloud-role), "" for ports netd does not own.
	Role string `json:"role,omitempty"`
	// Pod is the pod of a pod port (namespace/name).
	Pod string `json:"pod,omitempty"`
	// Node is the node a tunnel port leads to, and RemoteIP its tunnel endpoint.
	Node     string `json:"node,omitempty"`
	RemoteIP string `json:"remoteIP,omitempty"`
}

// TraceResult is the answer of PathTrace.
type TraceResult struct {
	// Node is the node whose bridge was traced, Bridge the bridge.
	Node   string `json:"node"`
	Bridge string `json:"bridge"`
	// Source is the pod's port, SourceIP its address, Destination the traced destination.
	Source      TracePort `json:"source"`
	SourceIP    string    `json:"sourceIP"`
	Destination string    `json:"destination"`
	// Flow is the flow given to ofproto/trace.
	Flow string `json:"flow"`
	// Rules are the rules the packet matched, in order.
	Rules []TraceRule `json:"rules"`
	// Verdict is one of the Trace* verdicts; Out is the port for local, tunnel, gateway and other.
	Verdict string     `json:"verdict"`
	Out     *TracePort `json:"out,omitempty"`
	// DatapathActions is the datapath's "Datapath actions:" line.
	DatapathActions string `json:"datapathActions"`
	// Output is ofproto/trace's full output.
	Output string `json:"output"`
}
