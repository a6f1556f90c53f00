package plugin

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

// Versions are the CNI spec versions the plugin speaks.
var Versions = version.PluginSupports("0.4.0", "1.0.0", "1.1.0")

// About is printed when the binary runs without CNI_COMMAND.
const About = "ecloud-cni: pod networking on Open vSwitch br-int, IPs from ecloud IP pools (via the node's netd)"

// Funcs are the CNI commands for skel.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: Add, Del: Del, Check: Check, Status: Status, GC: GC}
}

type call struct {
	timings *timings
	conf    *NetConf
	client  *nodeapi.Client
	ctx     context.Context
	cancel  context.CancelFunc
}

// withCall parses the configuration and runs fn with a daemon client; errors keep their codes.
func withCall(args *skel.CmdArgs, fn func(*call) error) error {
	c, err := newCall(args.StdinData)
	if err != nil {
		return err
	}
	defer c.cancel()
	return fn(c)
}

func newCall(stdin []byte) (*call, error) {
	t := newTimings()
	conf, err := ParseNetConf(stdin)
	if err != nil {
		return nil, cniError(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), conf.Timeout())
	t.mark("setup")
	return &call{timings: t, conf: conf, client: nodeapi.NewClient(conf.Socket, conf.Timeout()), ctx: ctx, cancel: cancel}, nil
}

// cniError turns err into the *types.Error skel prints, keeping its code.
func cniError(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(*nodeapi.Error); ok {
		return types.NewError(e.Code, e.Msg, e.Details)
	}
	return types.NewError(nodeapi.CodeOf(err), err.Error(), "")
}

// Add implements CNI ADD.
func Add(args *skel.CmdArgs) error {
	return withCall(args, func(c *call) error {
		pod, err := ParseArgs(args.Args)
		if err != nil {
			return cniError(err)
		}
		if args.Netns == "" {
			return types.NewError(nodeapi.CodeInvalidEnv, "CNI_NETNS is empty", "ADD needs the pod's network namespace")
		}
		if _, err := os.Stat(args.Netns); err != nil {
			return types.NewError(nodeapi.CodeInvalidEnv, fmt.Sprintf("CNI_NETNS %s is not usable", args.Netns), err.Error())
		}
		att := nodeapi.Attachment{ContainerID: args.ContainerID, IfName: args.IfName}
		hostVeth := nodeapi.HostVethName(args.ContainerID, args.IfName)
		// The veth pair needs nothing from the lease: it is made while netd allocates the IP.
		type vethResult struct {
			hostMAC net.HardwareAddr
			err     error
		}
		veth := make(chan vethResult, 1)
		go func() {
			start := time.Now()
			mac, err := createVeth(args.Netns, hostVeth, args.IfName, c.conf.MTU, c.conf.txChecksumOff())
			c.timings.add("veth_create", time.Since(start))
			veth <- vethResult{mac, err}
		}()
		var lease nodeapi.AddResponse
		leaseErr := c.client.Do(c.ctx, nodeapi.PathAdd, nodeapi.AddRequest{Attachment: att, Pod: pod}, &lease)
		c.timings.mark("lease")
		v := <-veth
		c.timings.mark("veth_wait")
		if leaseErr != nil {
			_ = deleteLink(hostVeth)
			return cniError(leaseErr)
		}
		res, err := c.plumb(args, pod, att, lease, v.hostMAC, v.err)
		if err != nil {
			// Undo: the daemon removes the port (if any) and releases the IP; the veth goes here.
			_ = deleteLink(hostVeth)
			_ = c.client.Do(c.ctx, nodeapi.PathDel, nodeapi.DelRequest{Attachment: att, Pod: pod}, nil)
			return cniError(err)
		}
		defer c.timings.print(os.Stderr)
		return types.PrintResult(res, c.conf.CNIVersion)
	})
}

// plumb finishes the attachment with the lease: the pod end of the veth (made by createVeth,
// which reported hostMAC and vethErr) and the OVS port.
func (c *call) plumb(args *skel.CmdArgs, pod nodeapi.PodRef, att nodeapi.Attachment, lease nodeapi.AddResponse, hostMAC net.HardwareAddr, vethErr error) (*current.Result, error) {
	if vethErr != nil {
		return nil, nodeapi.Errorf(nodeapi.CodeInternal, "plumb pod %s: %v", pod, vethErr)
	}
	ip, err := netip.ParsePrefix(lease.IP)
	if err != nil {
		return nil, nodeapi.Errorf(nodeapi.CodeInternal, "netd returned IP %q: %v", lease.IP, err)
	}
	gw, err := netip.ParseAddr(lease.Gateway)
	if err != nil {
		return nil, nodeapi.Errorf(nodeapi.CodeInternal, "netd returned gateway %q: %v", lease.Gateway, err)
	}
	mac, err := net.ParseMAC(lease.MAC)
	if err != nil {
		return nil, nodeapi.Errorf(nodeapi.CodeInternal, "netd returned MAC %q: %v", lease.MAC, err)
	}
	n := podNet{IfName: args.IfName, HostVeth: nodeapi.HostVethName(args.ContainerID, args.IfName), MAC: mac, IP: ip, Gateway: gw, MTU: lease.MTU}
	// The pod end is configured while netd attaches the host end to OVS.
	configured := make(chan error, 1)
	go func() {
		start := time.Now()
		err := configurePod(args.Netns, n, c.conf.MTU)
		c.timings.add("configure", time.Since(start))
		configured <- err
	}()
	attach := nodeapi.AttachRequest{Attachment: att, Pod: pod, HostVeth: n.HostVeth, IP: lease.IP, VLAN: lease.VLAN, Pool: lease.Pool}
	attachErr := c.client.Do(c.ctx, nodeapi.PathAttach, attach, nil)
	c.timings.mark("attach")
	if err := <-configured; err != nil {
		return nil, nodeapi.Errorf(nodeapi.CodeInternal, "plumb pod %s: %v", pod, err)
	}
	c.timings.mark("configure_wait")
	if attachErr != nil {
		return nil, attachErr
	}
	return &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: n.HostVeth, Mac: hostMAC.String()},
			{Name: n.IfName, Mac: mac.String(), Sandbox: args.Netns},
		},
		IPs:    []*current.IPConfig{{Interface: current.Int(1), Address: *prefixToIPNet(ip), Gateway: gw.AsSlice()}},
		Routes: []*types.Route{{Dst: *defaultRoute(), GW: gw.AsSlice()}},
	}, nil
}

// Del implements CNI DEL. It is idempotent and works without a netns (the runtime's second
// DEL): nothing that is already gone makes it fail. Only a daemon that cannot be reached does
// (code 11), so the runtime retries and the IP is not leaked.
func Del(args *skel.CmdArgs) error {
	return withCall(args, func(c *call) error {
		pod, err := ParseArgs(args.Args)
		if err != nil {
			// Without the pod the daemon can still tear down by container ID.
			pod = nodeapi.PodRef{}
		}
		att := nodeapi.Attachment{ContainerID: args.ContainerID, IfName: args.IfName}
		if err := c.client.Do(c.ctx, nodeapi.PathDel, nodeapi.DelRequest{Attachment: att, Pod: pod}, nil); err != nil {
			return cniError(err)
		}
		c.timings.mark("release")
		if err := deleteLink(nodeapi.HostVethName(args.ContainerID, args.IfName)); err != nil {
			return cniError(nodeapi.Errorf(nodeapi.CodeInternal, "%v", err))
		}
		if err := deletePodLink(args.Netns, args.IfName); err != nil {
			return cniError(nodeapi.Errorf(nodeapi.CodeInternal, "%v", err))
		}
		c.timings.mark("veth")
		c.timings.print(os.Stderr)
		return nil
	})
}

// Check implements CNI CHECK: the pod's interface, address, route and offload setting, the
// host veth, and (from the daemon) the OVS port and its flows.
func Check(args *skel.CmdArgs) error {
	return withCall(args, func(c *call) error {
		ip, ok := c.conf.prevIP()
		if !ok {
			return types.NewError(nodeapi.CodeInvalidConfig, "CHECK needs prevResult with the pod's IP", "pass the result of ADD as prevResult")
		}
		gwRaw, _ := c.conf.RawPrevResult["routes"].([]any)
		var gw netip.Addr
		for _, r := range gwRaw {
			m, _ := r.(map[string]any)
			if s, _ := m["gw"].(string); s != "" {
				gw, _ = netip.ParseAddr(s)
			}
		}
		mac, _ := nodeapi.MACForIP(ip.Addr())
		n := podNet{IfName: args.IfName, HostVeth: nodeapi.HostVethName(args.ContainerID, args.IfName), MAC: mac, IP: ip, Gateway: gw}
		if err := checkPodSide(args.Netns, n, c.conf.txChecksumOff()); err != nil {
			return types.NewError(nodeapi.CodeInternal, "pod side of the attachment is broken", err.Error())
		}
		if err := hostVethExists(n.HostVeth); err != nil {
			return types.NewError(nodeapi.CodeInternal, "host side of the attachment is broken", err.Error())
		}
		req := nodeapi.CheckRequest{Attachment: nodeapi.Attachment{ContainerID: args.ContainerID, IfName: args.IfName}, IP: ip.String()}
		return cniError(c.client.Do(c.ctx, nodeapi.PathCheck, req, nil))
	})
}

// Status implements CNI STATUS: ready when the daemon answers and says so.
func Status(args *skel.CmdArgs) error {
	return withCall(args, func(c *call) error {
		var st nodeapi.StatusResponse
		if err := c.client.Do(c.ctx, nodeapi.PathStatus, struct{}{}, &st); err != nil {
			return types.NewError(nodeapi.CodeNotAvailable, "ecloud netd is not available", err.Error())
		}
		if !st.Ready {
			return types.NewError(nodeapi.CodeNotAvailable, "ecloud netd is not ready", st.Message)
		}
		return nil
	})
}

// GC implements CNI GC: the daemon removes every attachment not in the valid list.
func GC(args *skel.CmdArgs) error {
	return withCall(args, func(c *call) error {
		var res nodeapi.GCResponse
		if err := c.client.Do(c.ctx, nodeapi.PathGC, nodeapi.GCRequest{Valid: c.conf.ValidAttachments}, &res); err != nil {
			return cniError(err)
		}
		for _, name := range res.Removed {
			if err := deleteLink(name); err != nil {
				return cniError(nodeapi.Errorf(nodeapi.CodeInternal, "GC: %v", err))
			}
		}
		return nil
	})
}
