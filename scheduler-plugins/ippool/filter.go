package ippool

import (
	"context"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
)

const stateKey fwk.StateKey = Name + ".state"

// cycleState is what PreFilter decided for the pod; it is not modified afterwards, so Clone shares it.
type cycleState struct {
	// pools are the candidate pools in order of preference (for a sticky pod: its claim's pool).
	pools []candidate
	// held is the claim the pod already holds (sticky, or this pod instance's), if any.
	held *v1alpha1.IPClaim
}

// candidate is a pool as Filter needs it, computed once per pod rather than once per node.
type candidate struct {
	pool *v1alpha1.IPPool
	// reach selects the nodes the pool reaches.
	reach labels.Selector
	// free is the pool's free IPs at PreFilter (Reserve checks again under the lock).
	free int64
}

func (s *cycleState) Clone() fwk.StateData { return s }

// PreFilter reads the pod's intent and resolves its candidate pools: the pool of the claim it
// already holds, else the pools it (or its namespace, or the default pools) names, access-checked.
// Anything no node can fix (a malformed annotation, an unknown or forbidden pool, an IP another
// pod holds) makes the pod UnschedulableAndUnresolvable with the reason in the message.
func (p *IPPool) PreFilter(ctx context.Context, state fwk.CycleState, pod *v1.Pod, _ []fwk.NodeInfo) (*fwk.PreFilterResult, *fwk.Status) {
	if !needsIP(pod) {
		return nil, fwk.NewStatus(fwk.Skip)
	}
	if err := p.waitSynced(ctx); err != nil {
		return nil, fwk.AsStatus(err)
	}
	s, err := p.resolve(pod)
	if err != nil {
		if r := ipam.ReasonOf(err); r != "" {
			failures.WithLabelValues(string(r)).Inc()
			return nil, fwk.NewStatus(fwk.UnschedulableAndUnresolvable, err.Error())
		}
		return nil, fwk.AsStatus(fmt.Errorf("resolving the IP pools of pod %s/%s: %w", pod.Namespace, pod.Name, err))
	}
	state.Write(stateKey, s)
	return nil, nil
}

func (p *IPPool) candidates(pools []*v1alpha1.IPPool) ([]candidate, error) {
	out := make([]candidate, 0, len(pools))
	for _, pool := range pools {
		sel, err := ipam.NodeSelector(pool)
		if err != nil {
			return nil, err
		}
		out = append(out, candidate{pool: pool, reach: sel, free: p.free(pool.Name)})
	}
	return out, nil
}

func (p *IPPool) resolve(pod *v1.Pod) (*cycleState, error) {
	in, err := ipam.ParseIntent(pod)
	if err != nil {
		return nil, err
	}
	if held := p.heldClaim(pod, in); held != nil {
		pool, err := p.alloc.Pool(held.Spec.Pool)
		if err != nil {
			return nil, err
		}
		cands, err := p.candidates([]*v1alpha1.IPPool{pool})
		return &cycleState{pools: cands, held: held}, err
	}
	pools, err := p.alloc.Candidates(pod.Namespace, in)
	if err != nil {
		return nil, err
	}
	cands, err := p.candidates(pools)
	return &cycleState{pools: cands}, err
}

// heldClaim is the claim the pod keeps: its sticky claim, or a claim of this very pod instance
// (reserved in an earlier cycle or by a scheduler that restarted).
func (p *IPPool) heldClaim(pod *v1.Pod, in ipam.Intent) *v1alpha1.IPClaim {
	for _, c := range ipam.ClaimsByIndex(p.claims, ipam.IndexOwner, ipam.OwnerKey(pod.Namespace, pod.Name)) {
		if c.DeletionTimestamp != nil || c.Status.Phase == v1alpha1.PhaseReleased {
			continue
		}
		if (in.Mode == v1alpha1.ModeSticky && c.Spec.Mode == v1alpha1.ModeSticky) || c.Status.PodUID == pod.UID {
			return c
		}
	}
	return nil
}

func readState(state fwk.CycleState) (*cycleState, error) {
	d, err := state.Read(stateKey)
	if err != nil {
		return nil, fmt.Errorf("%s: reading cycle state: %w", Name, err)
	}
	s, ok := d.(*cycleState)
	if !ok {
		return nil, fmt.Errorf("%s: cycle state of type %T", Name, d)
	}
	return s, nil
}

// PreFilterExtensions: none (other pods' placement does not change which pools reach a node).
func (p *IPPool) PreFilterExtensions() fwk.PreFilterExtensions { return nil }

// Filter passes a node that a candidate pool reaches and that pool still has a free IP (free IPs
// count reservations in flight). For a pod holding a claim only reach matters: its IP is its own.
func (p *IPPool) Filter(_ context.Context, state fwk.CycleState, pod *v1.Pod, nodeInfo fwk.NodeInfo) *fwk.Status {
	s, err := readState(state)
	if err != nil {
		return fwk.AsStatus(err)
	}
	nodeLabels := labels.Set(nodeInfo.Node().Labels)
	var exhausted []string
	for _, c := range s.pools {
		if !c.reach.Matches(nodeLabels) {
			continue
		}
		if s.held != nil || c.free > 0 {
			return nil
		}
		exhausted = append(exhausted, c.pool.Name)
	}
	if s.held != nil {
		return fwk.NewStatus(fwk.UnschedulableAndUnresolvable,
			fmt.Sprintf("node(s) not reached by IP pool %s of the pod's sticky IP %s", s.held.Spec.Pool, s.held.Spec.IP))
	}
	if len(exhausted) > 0 {
		// Unschedulable (not Unresolvable): an IP freed in the pool makes the node fit again.
		return fwk.NewStatus(fwk.Unschedulable, fmt.Sprintf("IP pool(s) %s exhausted: no free IP", strings.Join(exhausted, ",")))
	}
	return fwk.NewStatus(fwk.UnschedulableAndUnresolvable, fmt.Sprintf("node(s) not reached by IP pool(s) %s", poolNames(s.pools)))
}

func poolNames(pools []candidate) string {
	names := make([]string, len(pools))
	for i, c := range pools {
		names[i] = c.pool.Name
	}
	return strings.Join(names, ",")
}
