package ippool

import (
	"context"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/pkg/scheduler/framework"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// TestFilter: a node passes when a candidate pool reaching it has a free IP (or the pod holds its
// claim already); an exhausted pool is Unschedulable (an IP freed makes the node fit), a node no
// candidate reaches UnschedulableAndUnresolvable.
func TestFilter(t *testing.T) {
	pool := func(name, dc string, free int64) candidate {
		return candidate{pool: &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}},
			reach: labels.SelectorFromSet(labels.Set{"topology.kubernetes.io/zone": dc}), free: free}
	}
	nodeIn := func(dc string) fwk.NodeInfo {
		ni := framework.NewNodeInfo()
		ni.SetNode(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-" + dc, Labels: map[string]string{"topology.kubernetes.io/zone": dc}}})
		return ni
	}
	held := &v1alpha1.IPClaim{Spec: v1alpha1.IPClaimSpec{Pool: "pool-a", IP: "10.0.0.5"}}
	for _, tc := range []struct {
		name     string
		state    *cycleState
		dc       string
		want     fwk.Code
		msgParts []string
	}{
		{"free IP in the pool reaching the node", &cycleState{pools: []candidate{pool("pool-a", "dc-a", 3)}}, "dc-a", fwk.Success, nil},
		{"exhausted pool", &cycleState{pools: []candidate{pool("pool-a", "dc-a", 0)}}, "dc-a", fwk.Unschedulable, []string{"pool-a", "exhausted"}},
		{"exhausted first choice, free second", &cycleState{pools: []candidate{pool("pool-a", "dc-a", 0), pool("pool-both", "dc-a", 1)}}, "dc-a", fwk.Success, nil},
		{"free IPs only in a pool not reaching the node", &cycleState{pools: []candidate{pool("pool-b", "dc-b", 5)}}, "dc-a", fwk.UnschedulableAndUnresolvable, []string{"not reached", "pool-b"}},
		{"held claim: the pool's fullness does not matter", &cycleState{pools: []candidate{pool("pool-a", "dc-a", 0)}, held: held}, "dc-a", fwk.Success, nil},
		{"held claim's pool not reaching the node", &cycleState{pools: []candidate{pool("pool-a", "dc-a", 0)}, held: held}, "dc-b", fwk.UnschedulableAndUnresolvable, []string{"sticky IP 10.0.0.5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := framework.NewCycleState()
			state.Write(stateKey, tc.state)
			st := (&IPPool{}).Filter(context.Background(), state, &v1.Pod{}, nodeIn(tc.dc))
			if st.Code() != tc.want {
				t.Fatalf("Filter = %v %q, want %v", st.Code(), st.Message(), tc.want)
			}
			for _, part := range tc.msgParts {
				if !strings.Contains(st.Message(), part) {
					t.Errorf("message %q does not name %q", st.Message(), part)
				}
			}
		})
	}
}
