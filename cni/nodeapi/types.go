// Package nodeapi is the protocol between the ecloud-cni plugin and the node daemon (netd):
// JSON over HTTP on a root-only unix socket. It holds the request/response types, the error
// codes both sides agree on, the client the plugin uses and the naming rules both apply
// (host veth names, MACs derived from IPs).
package nodeapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
)

// DefaultSocket is where netd listens unless told otherwise.
const DefaultSocket = "/run/ecloud/netd.sock"

// Paths of the daemon's endpoints.
const (
	PathAdd    = "/v1/add"
	PathAttach = "/v1/attach"
	PathDel    = "/v1/del"
	PathCheck  = "/v1/check"
	PathGC     = "/v1/gc"
	PathStatus = "/v1/status"
)

// PodRef names the pod a CNI call is for (from CNI_ARGS).
type PodRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid,omitempty"`
}

func (p PodRef) String() string { return p.Namespace + "/" + p.Name }

// Attachment is one (container, interface) the runtime knows.
type Attachment struct {
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifname"`
}

// AddRequest asks for the pod's IP.
type AddRequest struct {
	Attachment
	Pod PodRef `json:"pod"`
}

// AddResponse is the pod's network configuration.
type AddResponse struct {
	// IP is the pod's address with the pool's prefix length ("10.16.0.7/24").
	IP      string `json:"ip"`
	Gateway string `json:"gateway"`
	MAC     string `json:"mac"`
	VLAN    int    `json:"vlan"`
	Pool    string `json:"pool"`
	MTU     int    `json:"mtu"`
}

// AttachRequest asks the daemon to put the host end of the pod's veth on the bridge and to
// route the pod's IP to it.
type AttachRequest struct {
	Attachment
	Pod      PodRef `json:"pod"`
	HostVeth string `json:"hostVeth"`
	IP       string `json:"ip"`
	VLAN     int    `json:"vlan"`
	Pool     string `json:"pool"`
}

// DelRequest tears down an attachment and releases its IP (ephemeral) or unbinds it (sticky).
type DelRequest struct {
	Attachment
	Pod PodRef `json:"pod"`
}

// CheckRequest asks whether the attachment's port and flows are in place.
type CheckRequest struct {
	Attachment
	IP string `json:"ip"`
}

// GCRequest lists every attachment the runtime still knows; the daemon removes the others.
type GCRequest struct {
	Valid []Attachment `json:"valid"`
}

// GCResponse lists what was removed (host veth / port names).
type GCResponse struct {
	Removed []string `json:"removed"`
}

// StatusResponse reports the daemon's readiness.
type StatusResponse struct {
	Ready   bool   `json:"ready"`
	Message string `json:"message,omitempty"`
}

// HostVethName is the host end of the pod's veth: a stable name derived from the container ID
// and interface name, so DEL finds it without a netns or state. 14 characters (< IFNAMSIZ).
func HostVethName(containerID, ifName string) string {
	sum := sha256.Sum256([]byte(containerID + "/" + ifName))
	return "ecv" + hex.EncodeToString(sum[:])[:11]
}

// MACForIP is the MAC of the interface holding ip: 0a:58 followed by the IPv4 address, so the
// datapath can answer ARP for any IP without a table.
func MACForIP(ip netip.Addr) (net.HardwareAddr, error) {
	if !ip.Is4() {
		return nil, fmt.Errorf("MAC for %s: only IPv4 is supported", ip)
	}
	b := ip.As4()
	return net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}, nil
}
