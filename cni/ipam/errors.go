package ipam

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// Reason classifies why an allocation was refused. Callers map it: the scheduler plugin to an
// unschedulable status, the CNI daemon to a CNI error code, the controller to an Event reason.
type Reason string

// Reasons an allocation is refused. Each is also the reason of the Warning Event recorded on the
// pod.
const (
	// ReasonPoolExhausted: every candidate pool reaching the node has no free IP.
	ReasonPoolExhausted Reason = "PoolExhausted"
	// ReasonNamespaceNotAllowed: the pod's namespace may not use the pool it names (or the pool
	// of the IP it asks for).
	ReasonNamespaceNotAllowed Reason = "NamespaceNotAllowed"
	// ReasonIPHeld: the requested IP is held by another pod's claim.
	ReasonIPHeld Reason = "IPHeld"
	// ReasonUnknownPool: the pod (or its namespace) names a pool that does not exist.
	ReasonUnknownPool Reason = "UnknownPool"
	// ReasonIPOutsidePool: the requested IP is not allocatable in any candidate pool.
	ReasonIPOutsidePool Reason = "IPOutsidePool"
	// ReasonMalformedAnnotation: an ecloud.io/ip-* annotation cannot be parsed.
	ReasonMalformedAnnotation Reason = "MalformedAnnotation"
	// ReasonPoolUnusable: the pool overlaps an older pool or its spec cannot be parsed.
	ReasonPoolUnusable Reason = "PoolUnusable"
	// ReasonNoPool: no pool is a candidate for the pod (none named, none default and allowed).
	ReasonNoPool Reason = "NoPool"
	// ReasonNodeNotReached: no candidate pool (or the pool of the pod's sticky IP) reaches the node.
	ReasonNodeNotReached Reason = "NodeNotReached"
	// ReasonNotReserved: Bind found no claim for the pod.
	ReasonNotReserved Reason = "NotReserved"
)

// Error is a refusal with its Reason and the objects it is about. Use errors.As to get it, or
// ReasonOf / errors.Is with the Err* sentinels.
type Error struct {
	Reason Reason
	// Pool, Namespace, IP and Annotation name what the refusal is about (empty when unrelated).
	Pool       string
	Namespace  string
	IP         string
	Annotation string
	// Holder is the owner of the claim holding IP (ReasonIPHeld).
	Holder *v1alpha1.ClaimOwner
	// Detail is the human explanation.
	Detail string
}

func (e *Error) Error() string { return e.Detail }

// Is makes errors.Is(err, ErrPoolExhausted) (and the other sentinels) match on the Reason.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Detail == "" && t.Reason == e.Reason
}

// Sentinels for errors.Is.
var (
	ErrPoolExhausted       = &Error{Reason: ReasonPoolExhausted}
	ErrNamespaceNotAllowed = &Error{Reason: ReasonNamespaceNotAllowed}
	ErrIPHeld              = &Error{Reason: ReasonIPHeld}
	ErrUnknownPool         = &Error{Reason: ReasonUnknownPool}
	ErrIPOutsidePool       = &Error{Reason: ReasonIPOutsidePool}
	ErrMalformedAnnotation = &Error{Reason: ReasonMalformedAnnotation}
	ErrPoolUnusable        = &Error{Reason: ReasonPoolUnusable}
	ErrNoPool              = &Error{Reason: ReasonNoPool}
	ErrNodeNotReached      = &Error{Reason: ReasonNodeNotReached}
	ErrNotReserved         = &Error{Reason: ReasonNotReserved}
)

// ReasonOf returns the Reason of an ipam refusal anywhere in err's chain, or "" for other errors
// (API failures, cancelled contexts).
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func poolExhausted(pools []string) *Error {
	return &Error{Reason: ReasonPoolExhausted, Pool: strings.Join(pools, ","),
		Detail: fmt.Sprintf("pool exhausted: no free IP in pool %s: add addresses to a pool (spec.cidr/includeRanges) or name another pool in %s",
			strings.Join(pools, ", "), v1alpha1.AnnotationIPPools)}
}

func namespaceNotAllowed(pool, ns string) *Error {
	return &Error{Reason: ReasonNamespaceNotAllowed, Pool: pool, Namespace: ns,
		Detail: fmt.Sprintf("namespace %q is not allowed to use IP pool %q: list the namespace in the pool's spec.namespaces (or match it by spec.namespaceSelector), or use another pool", ns, pool)}
}

func unknownPool(pool, annotation string) *Error {
	return &Error{Reason: ReasonUnknownPool, Pool: pool, Annotation: annotation,
		Detail: fmt.Sprintf("IP pool %q named by %s does not exist: create it or name an existing pool", pool, annotation)}
}

func ipHeld(ip string, c *v1alpha1.IPClaim) *Error {
	owner := c.Spec.Owner
	return &Error{Reason: ReasonIPHeld, IP: ip, Pool: c.Spec.Pool, Holder: &owner,
		Detail: fmt.Sprintf("IP %s (annotation %s) is held by the %s claim of pod %s/%s: another pod holds it; ask for another IP, or free it by deleting IPClaim %s",
			ip, v1alpha1.AnnotationIPAddress, strings.ToLower(string(c.Spec.Mode)), owner.Namespace, owner.PodName, c.Name)}
}

func malformed(annotation, value, why string) *Error {
	return &Error{Reason: ReasonMalformedAnnotation, Annotation: annotation,
		Detail: fmt.Sprintf("malformed annotation %s=%q: %s", annotation, value, why)}
}
