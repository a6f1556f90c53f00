package netd

import (
	"context"
	"net/netip"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

// Lease is the IP the daemon hands to a pod, with what the datapath needs to know about its pool.
type Lease struct {
	// IP is the pod's address with its pool's prefix length.
	IP      netip.Prefix
	Gateway netip.Addr
	VLAN    int
	Pool    string
	// Sticky claims survive the pod (the IP follows its name to another host).
	Sticky bool
}

// Allocator is where the daemon gets IPs: the seam for cni/ipam. Refusals (pool exhausted, not
// allowed, IP taken, unknown pool, bad annotation) must be *nodeapi.Error with the ecloud codes
// (nodeapi.CodePoolExhausted …) and a message that says what to fix; any other error is
// reported to the runtime as "try again later".
type Allocator interface {
	// Allocate returns the pod's IP on node, binding the pod's existing claim (sticky, or
	// reserved by the scheduler) or claiming a free IP. Calling it again for the same
	// container returns the same lease.
	Allocate(ctx context.Context, pod nodeapi.PodRef, containerID, node string) (Lease, error)
	// Release gives up what containerID holds: an ephemeral claim is deleted, a sticky one is
	// unbound from the node (kept for the pod's next incarnation). ip is the attachment's IP
	// when known (invalid otherwise). Releasing what is already gone is not an error.
	Release(ctx context.Context, pod nodeapi.PodRef, containerID string, ip netip.Addr) error
}
