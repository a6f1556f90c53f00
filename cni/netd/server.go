package netd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

// handler serves the nodeapi endpoints.
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+nodeapi.PathAdd, serve(d, "add", d.add))
	mux.HandleFunc("POST "+nodeapi.PathAttach, serve(d, "attach", d.attach))
	mux.HandleFunc("POST "+nodeapi.PathDel, serve(d, "del", d.del))
	mux.HandleFunc("POST "+nodeapi.PathCheck, serve(d, "check", d.check))
	mux.HandleFunc("POST "+nodeapi.PathGC, serve(d, "gc", d.gc))
	mux.HandleFunc("POST "+nodeapi.PathStatus, serve(d, "status", d.status))
	return mux
}

// serve decodes and validates the request (decodeRequest, validateRequest), runs fn and encodes
// its answer or its *nodeapi.Error. Errors that are not refusals become "try again later" (the
// apiserver or OVS may be back soon).
func serve[Req, Resp any](d *Daemon, op string, fn func(context.Context, Req) (Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var resp Resp
		req, err := decodeRequest[Req](op, r.Body)
		if err == nil {
			err = validateRequest(req)
		}
		blocked := d.blockedError()
		switch {
		case err != nil: // undecodable or invalid: refused before anything happens
		case blocked != nil && !teardown(op) && op != "status":
			// A node that cannot have a datapath refuses at once rather than letting pods wait.
			err = blocked
		case op != "status" && !d.Ready() && !(blocked != nil && teardown(op) && d.synced.Load()):
			err = nodeapi.Errorf(nodeapi.CodeTryAgainLater, "ecloud netd on %s is starting (datapath not reconciled yet)", d.cfg.NodeName)
		default:
			ctx := klog.NewContext(r.Context(), klog.LoggerWithValues(klog.FromContext(r.Context()), "op", op))
			resp, err = fn(ctx, req)
		}
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			var e *nodeapi.Error
			if !errors.As(err, &e) {
				e = &nodeapi.Error{Code: nodeapi.CodeTryAgainLater, Msg: fmt.Sprintf("ecloud netd on %s: %s failed", d.cfg.NodeName, op), Details: err.Error()}
			}
			klog.FromContext(r.Context()).Error(err, "CNI request failed", "op", op, "code", e.Code)
			observeRequest(op, start, e.Code)
			w.WriteHeader(http.StatusUnprocessableEntity)
			_ = json.NewEncoder(w).Encode(e)
			return
		}
		observeRequest(op, start, 0)
		_ = json.NewEncoder(w).Encode(resp)
	}
}

// teardown reports whether op only removes (DEL, GC): those run on a blocked node too, so
// pods that never got a network can still be deleted and their IPs released.
func teardown(op string) bool { return op == "del" || op == "gc" }

type empty struct{}

func (d *Daemon) add(ctx context.Context, req nodeapi.AddRequest) (nodeapi.AddResponse, error) {
	start := time.Now()
	lease, err := d.alloc.Allocate(ctx, req.Pod, req.ContainerID, d.cfg.NodeName)
	d.observePhase("add", "ipam", req.ContainerID, start)
	if err != nil {
		return nodeapi.AddResponse{}, err
	}
	mac, err := nodeapi.MACForIP(lease.IP.Addr())
	if err != nil {
		if rerr := d.alloc.Release(ctx, req.Pod, req.ContainerID, lease.IP.Addr()); rerr != nil {
			klog.FromContext(ctx).Error(rerr, "Releasing an unusable lease failed", "ip", lease.IP)
		}
		return nodeapi.AddResponse{}, nodeapi.Errorf(nodeapi.CodePoolNotAllowed, "pod %s got %s from pool %s: %v: use an IPv4 pool", req.Pod, lease.IP, lease.Pool, err)
	}
	klog.FromContext(ctx).V(2).Info("Leased IP", "pod", req.Pod.String(), "ip", lease.IP, "pool", lease.Pool)
	// The port's name and number are known now: its flows go in while the plugin makes the
	// veth (the attach reuses them; a DEL or GC drops them if the ADD goes no further).
	port, _ := d.prepare(podPort(req.Attachment, req.Pod, nodeapi.HostVethName(req.ContainerID, req.IfName), lease.IP.Addr(), lease.VLAN, lease.Pool))
	// The plugin makes the veth while netd allocates: when it is there already, OVS gets the
	// port now and the attach finds it done or in flight.
	if _, err := d.nl.LinkByName(port.Name); err == nil {
		d.startPortAdd(context.WithoutCancel(ctx), req.Attachment, port)
	}
	return nodeapi.AddResponse{IP: lease.IP.String(), Gateway: lease.Gateway.String(), MAC: mac.String(), VLAN: lease.VLAN, Pool: lease.Pool, MTU: d.cfg.MTU}, nil
}

func (d *Daemon) attach(ctx context.Context, req nodeapi.AttachRequest) (empty, error) {
	ip, err := netip.ParsePrefix(req.IP) // validated in serve
	if err != nil {
		return empty{}, nodeapi.Errorf(nodeapi.CodeInvalidEnv, "ip %q: %v", req.IP, err)
	}
	done := d.attaching(req.HostVeth)
	defer done()
	// Usually the lease prepared the port and its flows are in (or on their way); the OVS
	// transaction runs alongside.
	port, gen := d.prepare(podPort(req.Attachment, req.Pod, req.HostVeth, ip.Addr(), req.VLAN, req.Pool))
	start := time.Now()
	flows := make(chan error, 1)
	go func() {
		err := d.syncer.wait(ctx, gen)
		d.observePhase("attach", "flows", req.ContainerID, start)
		flows <- err
	}()
	err = d.addPort(ctx, req.Attachment, port)
	d.observePhase("attach", "port", req.ContainerID, start)
	if err != nil {
		d.forget(req.Attachment, port.Name)
		d.syncer.request(false) // take its flows out again
		return empty{}, err
	}
	if err := <-flows; err != nil {
		return empty{}, fmt.Errorf("flows for port %s of %s: %w", port.Name, req.Pod, err)
	}
	return empty{}, nil
}

// podPort is the OVS port of a pod attachment.
func podPort(a nodeapi.Attachment, pod nodeapi.PodRef, hostVeth string, ip netip.Addr, vlan int, pool string) ovs.Port {
	return ovs.Port{Name: hostVeth, Tag: vlan, ExternalIDs: map[string]string{
		extRole: rolePod, extContainer: a.ContainerID, extIfName: a.IfName,
		extPodNS: pod.Namespace, extPodName: pod.Name, extPodUID: pod.UID,
		extIP: ip.String(), extPool: pool, extVLAN: strconv.Itoa(vlan),
	}}
}

// attachmentPorts lists the pod ports of an attachment.
func (d *Daemon) attachmentPorts(ctx context.Context, a nodeapi.Attachment) ([]ovs.Port, error) {
	return d.sw.ListPorts(ctx, d.cfg.Bridge, map[string]string{extRole: rolePod, extContainer: a.ContainerID, extIfName: a.IfName})
}

func (d *Daemon) del(ctx context.Context, req nodeapi.DelRequest) (empty, error) {
	ports, ok := d.knownAttachment(req.Attachment)
	if !ok { // not attached by this process (e.g. before a restart): ask OVS
		var err error
		if ports, err = d.attachmentPorts(ctx, req.Attachment); err != nil {
			return empty{}, err
		}
	}
	var ip netip.Addr
	for _, p := range ports {
		if a, err := netip.ParseAddr(p.ExternalIDs[extIP]); err == nil {
			ip = a
		}
		if req.Pod.Name == "" {
			req.Pod = nodeapi.PodRef{Namespace: p.ExternalIDs[extPodNS], Name: p.ExternalIDs[extPodName]}
		}
	}
	// Out of the record first, so no sync computes flows for it again (its IP may go to another
	// pod here as soon as it is released); a DEL retried after an error asks OVS.
	for _, p := range ports {
		d.forget(req.Attachment, p.Name)
	}
	// The port and the claim go in parallel: one OVS transaction, one apiserver call.
	start := time.Now()
	portsGone := make(chan error, 1)
	go func() {
		for _, p := range ports {
			if err := d.ports.del(ctx, p.Name); err != nil {
				portsGone <- err
				return
			}
		}
		d.observePhase("del", "port", req.ContainerID, start)
		portsGone <- nil
	}()
	relErr := d.alloc.Release(ctx, req.Pod, req.ContainerID, ip)
	d.observePhase("del", "release", req.ContainerID, start)
	if err := errors.Join(<-portsGone, relErr); err != nil {
		return empty{}, err
	}
	if len(ports) > 0 {
		// The port is gone, so its flows match nothing; they are removed in the background
		// (an attach that reuses the IP or the number waits for its own sync).
		d.syncer.request(false)
	}
	return empty{}, nil
}

func (d *Daemon) check(ctx context.Context, req nodeapi.CheckRequest) (empty, error) {
	ports, err := d.attachmentPorts(ctx, req.Attachment)
	if err != nil {
		return empty{}, err
	}
	if len(ports) != 1 {
		return empty{}, nodeapi.Errorf(nodeapi.CodeInternal, "container %s interface %s has %d ports on %s, want 1", req.ContainerID, req.IfName, len(ports), d.cfg.Bridge)
	}
	p := ports[0]
	want, _ := netip.ParsePrefix(req.IP)
	if p.OFPort <= 0 {
		return empty{}, nodeapi.Errorf(nodeapi.CodeInternal, "port %s on %s is broken (no OpenFlow port: its veth is gone)", p.Name, d.cfg.Bridge)
	}
	if p.ExternalIDs[extIP] != want.Addr().String() {
		return empty{}, nodeapi.Errorf(nodeapi.CodeInternal, "port %s carries IP %s, the result says %s", p.Name, p.ExternalIDs[extIP], req.IP)
	}
	flows, err := d.sw.DumpFlows(ctx, d.cfg.Bridge)
	if err != nil {
		return empty{}, err
	}
	for _, f := range flows {
		if f.Cookie == Cookie && strings.Contains(f.Match, "nw_dst="+want.Addr().String()) && strings.HasSuffix(f.Actions, "output:"+strconv.Itoa(p.OFPort)) {
			return empty{}, nil
		}
	}
	return empty{}, nodeapi.Errorf(nodeapi.CodeInternal, "no flow delivers %s to port %s on %s", want.Addr(), p.Name, d.cfg.Bridge)
}

func (d *Daemon) gc(ctx context.Context, req nodeapi.GCRequest) (nodeapi.GCResponse, error) {
	valid := map[nodeapi.Attachment]bool{}
	for _, a := range req.Valid {
		valid[a] = true
	}
	ports, err := d.sw.ListPorts(ctx, d.cfg.Bridge, map[string]string{extRole: rolePod})
	if err != nil {
		return nodeapi.GCResponse{}, err
	}
	ports = append(ports, d.pendingPorts(ports)...) // leased, never attached
	var res nodeapi.GCResponse
	for _, p := range ports {
		a := nodeapi.Attachment{ContainerID: p.ExternalIDs[extContainer], IfName: p.ExternalIDs[extIfName]}
		if valid[a] {
			continue
		}
		if err := d.ports.del(ctx, p.Name); err != nil {
			return res, err
		}
		d.forget(a, p.Name)
		ip, _ := netip.ParseAddr(p.ExternalIDs[extIP])
		pod := nodeapi.PodRef{Namespace: p.ExternalIDs[extPodNS], Name: p.ExternalIDs[extPodName]}
		if err := d.alloc.Release(ctx, pod, a.ContainerID, ip); err != nil {
			return res, err
		}
		if err := d.deleteHostLink(p.Name); err != nil {
			return res, err
		}
		klog.FromContext(ctx).Info("GC removed attachment", "container", a.ContainerID, "pod", pod.String(), "port", p.Name)
		res.Removed = append(res.Removed, p.Name)
	}
	if len(res.Removed) > 0 {
		return res, d.syncer.sync(ctx, true)
	}
	return res, nil
}

func (d *Daemon) status(_ context.Context, _ empty) (nodeapi.StatusResponse, error) {
	if !d.Ready() {
		return nodeapi.StatusResponse{Ready: false, Message: d.NotReadyReason()}, nil
	}
	return nodeapi.StatusResponse{Ready: true}, nil
}
