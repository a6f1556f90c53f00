// Package netd is the ecloud node network daemon: it serves the CNI plugin's socket, hands
// out pod IPs (through an Allocator), attaches pods to the Open vSwitch integration bridge,
// keeps one flow-based tunnel port and programs the OpenFlow rules that say where every overlay
// IP lives (the role ONOS had in the seed design), following the ip-controller's
// IPLocationSlices (cni/locations) for the other nodes' IPs.
package netd

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ecloud-io/ecloud/cni/locations"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

// Name identifies the daemon in logs and metrics.
const Name = "ecloud-netd"

// DatapathLabel on a Node overrides --datapath for the netd on that node ("system" or
// "netdev"): one DaemonSet serves a cluster whose nodes differ.
const DatapathLabel = "network.ecloud.io/datapath"

// TunnelIPAnnotation on a Node overrides the tunnel endpoint (default: its first InternalIP).
const TunnelIPAnnotation = locations.TunnelIPAnnotation

// Config is the daemon's configuration (the netd flags).
type Config struct {
	// NodeName is this node's Node name.
	NodeName string
	// Socket is the CNI plugin's unix socket.
	Socket string
	// Bridge is the integration bridge for pods and tunnels.
	Bridge string
	// GatewayPort is the internal port through which host and pods talk, and through which
	// non-overlay traffic leaves into the host stack.
	GatewayPort string
	// Datapath is the OVS datapath of the bridge: system (the kernel module; tunnels through the
	// host's IP stack) or netdev (userspace, for hosts without the module: the host's uplink
	// must sit on an OVS bridge, br-phy, that owns the tunnel endpoint IP). The node's
	// DatapathLabel overrides it.
	Datapath ovs.DatapathType
	// ModuleDir is where the kernel lists its loaded modules (default /sys/module): the system
	// datapath needs openvswitch there.
	ModuleDir string
	// TunnelType is vxlan or geneve.
	TunnelType ovs.TunnelType
	// MTU of pod interfaces (room for the tunnel header).
	MTU int
	// OVS says how to reach Open vSwitch.
	OVS ovs.Config
	// HostNetNS, if set, is the netns (path) where the gateway port and pod veths live; empty
	// means the daemon's own (production: hostNetwork). Tests run one daemon per namespace
	// "host" in one process.
	HostNetNS string
	// CNIBinDir and CNIConfDir, when set, receive the plugin binary and the conflist at start.
	CNIBinDir, CNIConfDir string
	// PluginBinary is the ecloud-cni binary to install.
	PluginBinary string
	// NetworkName is the conflist's network name.
	NetworkName string
	// CNIVersion is the conflist's cniVersion: 1.1.0 (STATUS and GC; containerd ≥ 2.0), or 1.0.0
	// for runtimes that stop at CNI 1.0 (containerd 1.6/1.7).
	CNIVersion string
	// ResyncPeriod is how often the datapath is reconciled without a trigger.
	ResyncPeriod time.Duration
	// FlowReconcilePeriod is how often a reconcile replaces the bridge's whole flow table (dump,
	// diff, replace: flows changed behind netd's back are repaired); the other syncs send only
	// what changed. While a replace runs (seconds at a hundred thousand flows) location changes
	// wait for it.
	FlowReconcilePeriod time.Duration
	// Locations says where netd learns which node holds each IP: from location relays, or
	// (neither set) from the IPLocationSlices through the apiserver.
	Locations LocationSource
}

// LocationSource is where netd follows the IPs' locations.
type LocationSource struct {
	// RelayService is the namespace/name of the location relays' Service: netd connects to its
	// ready endpoints (from its EndpointSlices), port RelayPortName.
	RelayService string
	// Relays are relays' base URLs (http://host:port), for clusters without the Service.
	Relays []string
	// TokenFile holds the token netd shows the relay (a projected ServiceAccount token for the
	// relay's audience).
	TokenFile string
	// CAFile, when set, makes netd reach the relays over HTTPS and verify them with this CA.
	CAFile string
}

// RelayPortName is the name of the relay Service's port netd connects to.
const RelayPortName = "stream"

// Relayed reports whether netd follows location relays rather than the apiserver.
func (l LocationSource) Relayed() bool { return l.RelayService != "" || len(l.Relays) > 0 }

// DefaultFlowReconcilePeriod is how often the whole flow table is replaced by default.
const DefaultFlowReconcilePeriod = 5 * time.Minute

// Default fills unset fields.
func (c *Config) Default() {
	if c.Socket == "" {
		c.Socket = nodeapi.DefaultSocket
	}
	if c.Bridge == "" {
		c.Bridge = "br-int"
	}
	if c.GatewayPort == "" {
		c.GatewayPort = "ecloud-gw"
	}
	if c.Datapath == "" {
		c.Datapath = ovs.System
	}
	if c.ModuleDir == "" {
		c.ModuleDir = "/sys/module"
	}
	if c.TunnelType == "" {
		c.TunnelType = ovs.VXLAN
	}
	if c.MTU == 0 {
		c.MTU = 1400
	}
	if c.NetworkName == "" {
		c.NetworkName = "ecloud"
	}
	if c.CNIVersion == "" {
		c.CNIVersion = "1.1.0"
	}
	if c.ResyncPeriod == 0 {
		c.ResyncPeriod = 30 * time.Second
	}
	if c.FlowReconcilePeriod == 0 {
		c.FlowReconcilePeriod = DefaultFlowReconcilePeriod
	}
}

// Validate checks the configuration; errors name the flag's field.
func (c *Config) Validate() field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("netd")
	if c.NodeName == "" {
		errs = append(errs, field.Required(p.Child("nodeName"), "set --node-name (or NODE_NAME from the downward API)"))
	}
	if !filepath.IsAbs(c.Socket) || len(c.Socket) > 107 {
		errs = append(errs, field.Invalid(p.Child("socket"), c.Socket, "must be an absolute path of at most 107 bytes"))
	}
	for _, n := range []struct {
		f, v string
	}{{"bridge", c.Bridge}, {"gatewayPort", c.GatewayPort}} {
		if n.v == "" || len(n.v) > 15 {
			errs = append(errs, field.Invalid(p.Child(n.f), n.v, "must be an interface name of 1-15 characters"))
		}
	}
	if err := c.Datapath.Validate(); err != nil {
		errs = append(errs, field.NotSupported(p.Child("datapath"), c.Datapath, []string{string(ovs.System), string(ovs.Netdev)}))
	}
	if err := c.TunnelType.Validate(); err != nil {
		errs = append(errs, field.NotSupported(p.Child("tunnelType"), c.TunnelType, []string{string(ovs.VXLAN), string(ovs.Geneve)}))
	}
	if !slices.Contains(supportedConfVersions, c.CNIVersion) {
		errs = append(errs, field.NotSupported(p.Child("cniVersion"), c.CNIVersion, supportedConfVersions))
	}
	if c.MTU < 576 || c.MTU > 9000 {
		errs = append(errs, field.Invalid(p.Child("mtu"), c.MTU, "must be between 576 and 9000"))
	}
	if (c.CNIBinDir == "") != (c.PluginBinary == "") {
		errs = append(errs, field.Invalid(p.Child("pluginBinary"), c.PluginBinary, "set together with --cni-bin-dir"))
	}
	if c.ResyncPeriod < time.Second {
		errs = append(errs, field.Invalid(p.Child("resyncPeriod"), c.ResyncPeriod.String(), "must be at least 1s"))
	}
	if c.FlowReconcilePeriod < c.ResyncPeriod {
		errs = append(errs, field.Invalid(p.Child("flowReconcilePeriod"), c.FlowReconcilePeriod.String(), "must be at least the resync period ("+c.ResyncPeriod.String()+"): the replace runs within a reconcile"))
	}
	errs = append(errs, c.Locations.validate(p.Child("locations"))...)
	return errs
}

// supportedConfVersions are the cniVersions netd writes into its conflist.
var supportedConfVersions = []string{"1.1.0", "1.0.0"}

func (l LocationSource) validate(p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if l.RelayService != "" && len(l.Relays) > 0 {
		errs = append(errs, field.Invalid(p.Child("relays"), strings.Join(l.Relays, ","), "set --location-relay-service or --location-relays, not both"))
	}
	if ns, name, ok := strings.Cut(l.RelayService, "/"); l.RelayService != "" && (!ok || ns == "" || name == "" || strings.Contains(name, "/")) {
		errs = append(errs, field.Invalid(p.Child("relayService"), l.RelayService, "must be namespace/name"))
	}
	for i, r := range l.Relays {
		if u, err := url.Parse(r); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, field.Invalid(p.Child("relays").Index(i), r, "must be an http:// or https:// URL with a host"))
		}
	}
	if l.Relayed() && l.TokenFile == "" {
		errs = append(errs, field.Required(p.Child("tokenFile"), "location relays need a token (--location-relay-token-file)"))
	}
	return errs
}
