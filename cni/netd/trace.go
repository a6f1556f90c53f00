package netd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

// maxConcurrentTraces bounds the traces running at once; more get 429.
const maxConcurrentTraces = 2

// TraceHandler serves nodeapi.PathTrace: an OpenFlow trace of a packet from a pod on this node to
// a destination IP, answered as a nodeapi.TraceResult. It is read-only and takes no OVS syntax
// from the caller: the pod must have a port on this node, the destination must parse as an IP,
// the protocol is icmp, tcp or udp and the port a number. Serve it on the metrics listener,
// which users reach through the apiserver's pod proxy (RBAC: get/create on pods/proxy of the
// netd pods).
func (d *Daemon) TraceHandler() http.Handler {
	return &traceHandler{d: d, slots: make(chan struct{}, maxConcurrentTraces)}
}

type traceHandler struct {
	d     *Daemon
	slots chan struct{}
}

// traceRequest is a validated trace query.
type traceRequest struct {
	pod      nodeapi.PodRef
	dst      netip.Addr
	protocol string
	port     int
}

func parseTraceQuery(q map[string][]string) (traceRequest, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	r := traceRequest{pod: nodeapi.PodRef{Namespace: get(nodeapi.TraceQueryNamespace), Name: get(nodeapi.TraceQueryPod)}, protocol: get(nodeapi.TraceQueryProtocol), port: 80}
	if r.pod.Namespace == "" || r.pod.Name == "" {
		return r, fmt.Errorf("query parameters %s and %s are required", nodeapi.TraceQueryNamespace, nodeapi.TraceQueryPod)
	}
	dst, err := netip.ParseAddr(get(nodeapi.TraceQueryDst))
	if err != nil || !dst.Is4() {
		return r, fmt.Errorf("query parameter %s=%q: want an IPv4 address", nodeapi.TraceQueryDst, get(nodeapi.TraceQueryDst))
	}
	r.dst = dst
	switch r.protocol {
	case "":
		r.protocol = "icmp"
	case "icmp", "tcp", "udp":
	default:
		return r, fmt.Errorf("query parameter %s=%q: want icmp, tcp or udp", nodeapi.TraceQueryProtocol, r.protocol)
	}
	if p := get(nodeapi.TraceQueryPort); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return r, fmt.Errorf("query parameter %s=%q: want a port number 1-65535", nodeapi.TraceQueryPort, p)
		}
		r.port = n
	}
	return r, nil
}

func (h *traceHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "trace: GET only", http.StatusMethodNotAllowed)
		return
	}
	req, err := parseTraceQuery(r.URL.Query())
	if err != nil {
		http.Error(w, "trace: "+err.Error(), http.StatusBadRequest)
		return
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		http.Error(w, "trace: too many traces running, try again", http.StatusTooManyRequests)
		return
	}
	res, status, err := h.d.trace(r.Context(), req)
	if err != nil {
		klog.FromContext(r.Context()).V(2).Info("Trace failed", "pod", req.pod.String(), "dst", req.dst, "err", err)
		http.Error(w, "trace: "+err.Error(), status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// trace runs the trace; on failure it also returns the HTTP status to answer.
func (d *Daemon) trace(ctx context.Context, req traceRequest) (*nodeapi.TraceResult, int, error) {
	tracer, ok := d.sw.(ovs.Tracer)
	if !ok {
		return nil, http.StatusNotImplemented, fmt.Errorf("the OVS driver %T cannot trace", d.sw)
	}
	ports, err := d.sw.ListPorts(ctx, d.cfg.Bridge, nil)
	if err != nil {
		return nil, http.StatusServiceUnavailable, fmt.Errorf("listing the ports of %s: %w", d.cfg.Bridge, err)
	}
	var src *ovs.Port
	for i, p := range ports {
		if p.ExternalIDs[extRole] == rolePod && p.ExternalIDs[extPodNS] == req.pod.Namespace && p.ExternalIDs[extPodName] == req.pod.Name && p.OFPort > 0 {
			src = &ports[i]
		}
	}
	if src == nil {
		return nil, http.StatusNotFound, fmt.Errorf("pod %s has no port on %s of node %s", req.pod, d.cfg.Bridge, d.cfg.NodeName)
	}
	srcIP, err := netip.ParseAddr(src.ExternalIDs[extIP])
	if err != nil {
		return nil, http.StatusInternalServerError, fmt.Errorf("port %s of pod %s carries no IP: %w", src.Name, req.pod, err)
	}
	flow := traceFlow(src.OFPort, srcIP, req)
	out, err := tracer.Trace(ctx, d.cfg.Bridge, flow)
	if err != nil {
		return nil, http.StatusServiceUnavailable, fmt.Errorf("tracing %s on %s: %w", flow, d.cfg.Bridge, err)
	}
	res := ParseTrace(out, d.cfg.Bridge, ports)
	res.Node, res.Bridge, res.Flow = d.cfg.NodeName, d.cfg.Bridge, flow
	if res.Out != nil && res.Out.Role == roleTunnel {
		if l, ok := d.locs.Lookup(req.dst); ok {
			res.Out.Node = l.Node
		}
	}
	res.Source, res.SourceIP, res.Destination = tracePort(*src), srcIP.String(), req.dst.String()
	return res, http.StatusOK, nil
}

// traceFlow is the packet the pod would send: from its port, MAC and IP to dst.
func traceFlow(ofport int, src netip.Addr, req traceRequest) string {
	f := fmt.Sprintf("in_port=%d,%s,dl_src=%s,dl_dst=%s,nw_src=%s,nw_dst=%s,nw_ttl=64", ofport, req.protocol, macOf(src), gatewayMAC, src, req.dst)
	if req.protocol != "icmp" {
		f += fmt.Sprintf(",tp_src=40000,tp_dst=%d", req.port)
	}
	return f
}

func tracePort(p ovs.Port) nodeapi.TracePort {
	tp := nodeapi.TracePort{Name: p.Name, OFPort: p.OFPort, Role: p.ExternalIDs[extRole], RemoteIP: p.Options["remote_ip"]}
	if ns, name := p.ExternalIDs[extPodNS], p.ExternalIDs[extPodName]; name != "" {
		tp.Pod = ns + "/" + name
	}
	return tp
}

var (
	// " 0. ip,in_port=5,nw_src=10.20.0.10, priority 200, cookie 0xec10d" (the match may be empty).
	traceRuleLine = regexp.MustCompile(`^\s*(\d+)\.\s+(?:(.*), )?priority (\d+)(?:, cookie (0x[0-9a-f]+))?$`)
	traceOutput   = regexp.MustCompile(`^output:(\d+)$`)
	traceTunDst   = regexp.MustCompile(`^set_field:([0-9.]+)->tun_dst$`)
)

// ParseTrace reads ofproto/trace output: the rules matched on bridge, their actions, and where
// the last output action sends the packet (ports names it), or drop. Sections of other bridges
// (the host's, after a tunnel's native routing) are left out.
func ParseTrace(out, bridge string, ports []ovs.Port) *nodeapi.TraceResult {
	res := &nodeapi.TraceResult{Output: out, Verdict: nodeapi.TraceDrop}
	outPort := 0
	tunDst := ""
	inBridge := false
	for _, line := range strings.Split(out, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "bridge("):
			inBridge = line == fmt.Sprintf("bridge(%q)", bridge)
		case strings.HasPrefix(line, "Datapath actions:"):
			res.DatapathActions = strings.TrimSpace(strings.TrimPrefix(line, "Datapath actions:"))
		case strings.HasPrefix(line, "Final flow:"), trimmed == "":
			inBridge = inBridge && trimmed == ""
		case !inBridge || strings.HasPrefix(trimmed, "---"):
		case traceRuleLine.MatchString(line):
			m := traceRuleLine.FindStringSubmatch(line)
			table, _ := strconv.Atoi(m[1])
			prio, _ := strconv.Atoi(m[3])
			res.Rules = append(res.Rules, nodeapi.TraceRule{Table: table, Priority: prio, Match: m[2], Cookie: m[4]})
		case len(res.Rules) > 0 && !strings.HasPrefix(trimmed, "->") && !strings.HasPrefix(trimmed, ">>"):
			last := &res.Rules[len(res.Rules)-1]
			last.Actions = append(last.Actions, trimmed)
			if m := traceOutput.FindStringSubmatch(trimmed); m != nil {
				outPort, _ = strconv.Atoi(m[1])
			}
			if m := traceTunDst.FindStringSubmatch(trimmed); m != nil {
				tunDst = m[1]
			}
		}
	}
	if outPort == 0 {
		return res
	}
	res.Verdict = nodeapi.TraceOther
	res.Out = &nodeapi.TracePort{OFPort: outPort}
	for _, p := range ports {
		if p.OFPort != outPort {
			continue
		}
		tp := tracePort(p)
		res.Out = &tp
		switch tp.Role {
		case rolePod:
			res.Verdict = nodeapi.TraceLocal
		case roleTunnel:
			res.Verdict = nodeapi.TraceTunnel
			if tunDst != "" {
				res.Out.RemoteIP = tunDst // the flow-based port's endpoint is the flow's
			}
		case roleGateway:
			res.Verdict = nodeapi.TraceGateway
		}
	}
	return res
}
