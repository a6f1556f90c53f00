package netd

// The daemon's Allocator on cni/ipam, the allocation package the scheduler's IPPool plugin and
// the IP controller use too: the IP the scheduler reserved for the pod is bound as is; a pod that
// comes without a reservation (another scheduler, a static pod) gets its sticky claim or a free
// IP of a pool reaching this node.

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

// IPAMAllocator implements Allocator with an ipam.Allocator. Release is the claim-level release
// of ClaimAllocator (delete an ephemeral claim, unbind a sticky one).
type IPAMAllocator struct {
	*ClaimAllocator
	ipam  *ipam.Allocator
	nodes cache.Store
}

// NewIPAMAllocator wraps an ipam.Allocator; claims is the claim-level allocator used for
// Release and pod lookups, nodes the daemon's node store.
func NewIPAMAllocator(alloc *ipam.Allocator, claims *ClaimAllocator, nodes cache.Store) *IPAMAllocator {
	return &IPAMAllocator{ClaimAllocator: claims, ipam: alloc, nodes: nodes}
}

var _ Allocator = &IPAMAllocator{}

// codes maps ipam refusals to the ecloud CNI error codes the plugin returns to the runtime.
var codes = map[ipam.Reason]uint{
	ipam.ReasonPoolExhausted:       nodeapi.CodePoolExhausted,
	ipam.ReasonNamespaceNotAllowed: nodeapi.CodePoolNotAllowed,
	ipam.ReasonNodeNotReached:      nodeapi.CodePoolNotAllowed,
	ipam.ReasonNoPool:              nodeapi.CodePoolNotAllowed,
	ipam.ReasonIPOutsidePool:       nodeapi.CodePoolNotAllowed,
	ipam.ReasonPoolUnusable:        nodeapi.CodePoolNotAllowed,
	ipam.ReasonIPHeld:              nodeapi.CodeIPTaken,
	ipam.ReasonUnknownPool:         nodeapi.CodeUnknownPool,
	ipam.ReasonMalformedAnnotation: nodeapi.CodeBadAnnotation,
}

// Allocate binds the pod's reserved (or sticky) claim to this node and sandbox, or allocates one.
func (a *IPAMAllocator) Allocate(ctx context.Context, ref nodeapi.PodRef, containerID, nodeName string) (Lease, error) {
	pod, err := a.pod(ctx, ref)
	if err != nil {
		return Lease{}, err
	}
	if pod == nil {
		// No pod object (a runtime driven without a kubelet, e.g. cnitool): a bare pod of that
		// name, ephemeral, drawing from its namespace's or the default pools.
		pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name, UID: types.UID(ref.UID)}}
	}
	node := &corev1.Node{}
	node.Name = nodeName
	if o, ok, _ := a.nodes.GetByKey(nodeName); ok {
		node = o.(*corev1.Node)
	}
	// One call binds the pod's existing claim (reserved by the scheduler, or sticky) or, when it
	// has none, allocates one Bound: the same as Bind and then Allocate on ReasonNotReserved,
	// with one apiserver lookup of the pod's claims instead of two and no NotReserved refusal.
	claim, err := a.ipam.Allocate(ctx, ipam.Request{Pod: pod, Node: node, Phase: v1alpha1.PhaseBound, ContainerID: containerID})
	if err != nil {
		var refusal *ipam.Error
		if errors.As(err, &refusal) {
			if code, ok := codes[refusal.Reason]; ok {
				return Lease{}, nodeapi.Errorf(code, "pod %s: %s", ref, refusal.Error())
			}
		}
		return Lease{}, fmt.Errorf("IP for pod %s on node %s: %w", ref, nodeName, err)
	}
	return a.leaseFor(claim)
}
