// Package ovs drives Open vSwitch through its command-line tools (ovs-vsctl for the database,
// ovs-ofctl for OpenFlow): bridges on the kernel or the userspace datapath, access ports with a VLAN tag
// and external_ids, tunnel ports and flows. libovsdb is not available here, so every call is an
// exec with fully built arguments; the argument building and output parsing are pure functions
// with their own unit tests.
package ovs

import (
	"context"
	"fmt"
	"iter"
)

// Name identifies this driver in logs.
const Name = "ovs-exec"

// Switch is the small interface the node daemon needs from Open vSwitch.
type Switch interface {
	// EnsureBridge creates the bridge (secure fail mode) on datapath dp if it is missing, and
	// sets an existing bridge's datapath to dp.
	EnsureBridge(ctx context.Context, bridge string, dp DatapathType) error
	// AddPort adds (or re-adds, replacing the old row) a port and returns its OpenFlow port number.
	AddPort(ctx context.Context, bridge string, p Port) (int, error)
	// UpdatePorts adds (or re-adds) ports and deletes ports by name in one transaction,
	// without waiting for OpenFlow numbers (ListPorts shows them). With ports to add it returns
	// once ovs-vswitchd has applied the transaction (and everything before it); deletes alone
	// return when the database has committed them. Deleting a port that is gone is not an error.
	UpdatePorts(ctx context.Context, bridge string, add []Port, del []string) error
	// DeletePort removes a port; a port that is already gone is not an error.
	DeletePort(ctx context.Context, bridge, name string) error
	// ListPorts lists the bridge's ports whose external_ids contain every key/value of match
	// (all ports when match is empty). A bridge that does not exist has none.
	ListPorts(ctx context.Context, bridge string, match map[string]string) ([]Port, error)
	// AddFlows adds flows (replacing flows with the same match and priority).
	AddFlows(ctx context.Context, bridge string, flows []Flow) error
	// DeleteFlows removes every flow carrying cookie (all bits compared).
	DeleteFlows(ctx context.Context, bridge string, cookie uint64) error
	// ReplaceFlows makes the flows carrying cookie exactly flows: missing ones are added,
	// changed ones modified, the rest of that cookie deleted; flows of other cookies stay.
	// flows is read once, as it is sent (a large table need not be held as a slice); n is how
	// many it yields, which sizes the command's timeout.
	ReplaceFlows(ctx context.Context, bridge string, cookie uint64, n int, flows iter.Seq[Flow]) error
	// ApplyFlows adds (or replaces the actions of) add and removes del (matched strictly on
	// table, priority and match) in one atomic transaction.
	ApplyFlows(ctx context.Context, bridge string, add, del []Flow) error
	// DumpFlows returns the bridge's flows.
	DumpFlows(ctx context.Context, bridge string) ([]Flow, error)
}

// DatapathType is a bridge's datapath_type.
type DatapathType string

// The datapaths ecloud drives.
const (
	// System is the kernel datapath (the openvswitch module): what production runs. Tunnel
	// packets go through the host's IP stack and routes.
	System DatapathType = "system"
	// Netdev is the userspace datapath inside ovs-vswitchd, for hosts without the module. Its
	// tunnels leave only through an OVS bridge that owns the endpoint IP (br-phy), and it does
	// not complete checksums a veth left to "hardware".
	Netdev DatapathType = "netdev"
)

// Validate reports whether d is a supported datapath.
func (d DatapathType) Validate() error {
	switch d {
	case System, Netdev:
		return nil
	}
	return fmt.Errorf("datapath %q: must be %q or %q", string(d), System, Netdev)
}

// TunnelType is the encapsulation of a tunnel port.
type TunnelType string

// Tunnel types OVS encapsulates in userspace.
const (
	VXLAN  TunnelType = "vxlan"
	Geneve TunnelType = "geneve"
)

// Validate reports whether t is a supported tunnel type.
func (t TunnelType) Validate() error {
	switch t {
	case VXLAN, Geneve:
		return nil
	}
	return fmt.Errorf("tunnel type %q: must be %q or %q", string(t), VXLAN, Geneve)
}

// Port is one row of the Port table joined with its Interface.
type Port struct {
	Name string
	// Type is the interface type: "" (a system device such as a veth), "internal", "vxlan", …
	Type string
	// Tag is the VLAN tag of an access port; 0 means none (a trunk).
	Tag int
	// Options are the interface options (remote_ip, key, …) of a tunnel port.
	Options map[string]string
	// ExternalIDs are free-form key/values; ecloud marks its ports with them.
	ExternalIDs map[string]string
	// MAC sets the interface's MAC (internal ports), "" leaves it to OVS.
	MAC string
	// OFPort is the OpenFlow port number (output only; -1 when the interface failed, 0 while
	// ovs-vswitchd has not numbered it yet).
	OFPort int
	// OFPortRequest asks for a specific OpenFlow port number (0 = let OVS choose), so flows
	// can be written before ovs-vswitchd reports the number.
	OFPortRequest int
}

// Flow is one OpenFlow rule in ovs-ofctl syntax.
type Flow struct {
	Cookie   uint64
	Table    int
	Priority int
	// Match is the match part ("ip,reg0=100,nw_dst=10.1.0.5"), "" matches everything.
	Match string
	// Actions is the action list ("output:3", "drop").
	Actions string
}
