// Package plugin is the ecloud CNI plugin: it parses the network configuration and CNI_ARGS,
// asks the node daemon (netd) for the pod's IP, plumbs the pod's veth and reports a CNI 1.1
// result. cmd/ecloud-cni wires it to the containernetworking/cni skel.
package plugin

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

// Name is the plugin's type in a conflist.
const Name = "ecloud-cni"

// DefaultTimeout bounds every call to the daemon.
const DefaultTimeout = 30 * time.Second

// NetConf is the plugin's entry of the conflist.
type NetConf struct {
	types.NetConf
	// Socket is netd's unix socket (default nodeapi.DefaultSocket).
	Socket string `json:"socket,omitempty"`
	// TimeoutSeconds bounds each daemon call (default 30).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// MTU is the pod interfaces' MTU as netd configures it (netd writes it into the conflist),
	// so the veth is made with it before the lease; 0: set from the lease afterwards.
	MTU int `json:"mtu,omitempty"`
	// Datapath is the node's OVS datapath as netd runs it (netd writes it into the conflist):
	// "netdev" (the default) turns the pod interface's transmit checksum offload off, since the
	// userspace datapath forwards packets whose checksum the veth left to "hardware" without
	// completing it; "system" (the kernel datapath) keeps the offload.
	Datapath string `json:"datapath,omitempty"`
	// ValidAttachments is what the runtime passes to GC (CNI 1.1).
	ValidAttachments []nodeapi.Attachment `json:"cni.dev/valid-attachments,omitempty"`
}

// The datapath values of NetConf.Datapath (netd's --datapath).
const (
	DatapathSystem = "system"
	DatapathNetdev = "netdev"
)

// txChecksumOff says whether pod interfaces need their transmit checksum offload turned off.
func (c *NetConf) txChecksumOff() bool { return c.Datapath == DatapathNetdev }

// Timeout is the daemon call timeout.
func (c *NetConf) Timeout() time.Duration { return time.Duration(c.TimeoutSeconds) * time.Second }

// ParseNetConf decodes, defaults and validates stdin; errors carry CNI codes (6 for JSON that
// does not decode, 7 for an invalid configuration) and name the field to fix.
func ParseNetConf(data []byte) (*NetConf, error) {
	conf := &NetConf{}
	if err := json.Unmarshal(data, conf); err != nil {
		return nil, &nodeapi.Error{Code: nodeapi.CodeDecoding, Msg: "the network configuration is not valid JSON", Details: err.Error()}
	}
	if conf.Socket == "" {
		conf.Socket = nodeapi.DefaultSocket
	}
	if conf.Datapath == "" {
		conf.Datapath = DatapathNetdev
	}
	if conf.TimeoutSeconds == 0 {
		conf.TimeoutSeconds = int(DefaultTimeout / time.Second)
	}
	if errs := conf.validate(); len(errs) > 0 {
		return nil, &nodeapi.Error{Code: nodeapi.CodeInvalidConfig, Msg: "invalid ecloud-cni network configuration", Details: errs.ToAggregate().Error()}
	}
	return conf, nil
}

func (c *NetConf) validate() field.ErrorList {
	var errs field.ErrorList
	if c.CNIVersion == "" {
		errs = append(errs, field.Required(field.NewPath("cniVersion"), "set the CNI spec version, e.g. \"1.1.0\""))
	}
	if c.Name == "" {
		errs = append(errs, field.Required(field.NewPath("name"), "name the network, e.g. \"ecloud\""))
	}
	if c.Type != "" && c.Type != Name {
		errs = append(errs, field.NotSupported(field.NewPath("type"), c.Type, []string{Name}))
	}
	if !filepath.IsAbs(c.Socket) || len(c.Socket) > 107 {
		errs = append(errs, field.Invalid(field.NewPath("socket"), c.Socket, "must be an absolute path of at most 107 bytes (netd's --socket)"))
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 9000) {
		errs = append(errs, field.Invalid(field.NewPath("mtu"), c.MTU, "must be between 576 and 9000 (netd's --mtu)"))
	}
	if c.Datapath != DatapathSystem && c.Datapath != DatapathNetdev {
		errs = append(errs, field.NotSupported(field.NewPath("datapath"), c.Datapath, []string{DatapathSystem, DatapathNetdev}))
	}
	if c.TimeoutSeconds < 0 || c.TimeoutSeconds > 600 {
		errs = append(errs, field.Invalid(field.NewPath("timeoutSeconds"), c.TimeoutSeconds, "must be between 1 and 600"))
	}
	for i, a := range c.ValidAttachments {
		p := field.NewPath("cni.dev/valid-attachments").Index(i)
		if a.ContainerID == "" {
			errs = append(errs, field.Required(p.Child("containerID"), ""))
		}
		if a.IfName == "" {
			errs = append(errs, field.Required(p.Child("ifname"), ""))
		}
	}
	return errs
}

// prevIP is the pod's address from prevResult (CHECK, first DEL), if any.
func (c *NetConf) prevIP() (netip.Prefix, bool) {
	ips, _ := c.RawPrevResult["ips"].([]any)
	for _, x := range ips {
		m, _ := x.(map[string]any)
		s, _ := m["address"].(string)
		if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

func (c *NetConf) String() string { return fmt.Sprintf("%s (cniVersion %s)", c.Name, c.CNIVersion) }
