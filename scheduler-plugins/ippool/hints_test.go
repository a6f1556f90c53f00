package ippool

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

func TestIsSchedulableAfterClaimDeleted(t *testing.T) {
	claim := func(pool string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "network.ecloud.io/v1alpha1", "kind": "IPClaim",
			"metadata": map[string]any{"name": "10.0.0.5"},
			"spec":     map[string]any{"pool": pool, "ip": "10.0.0.5"},
		}}
	}
	pod := func(ann map[string]string) *v1.Pod {
		return &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Annotations: ann}}
	}
	cases := []struct {
		name string
		pod  *v1.Pod
		old  any
		want fwk.QueueingHint
	}{
		{"pod names the freed IP's pool", pod(map[string]string{v1alpha1.AnnotationIPPools: "pool-b,pool-a"}), claim("pool-a"), fwk.Queue},
		{"pod names other pools", pod(map[string]string{v1alpha1.AnnotationIPPools: "pool-b"}), claim("pool-a"), fwk.QueueSkip},
		{"pod names no pool: namespace or default pools may be it", pod(nil), claim("pool-a"), fwk.Queue},
		{"typed claim", pod(map[string]string{v1alpha1.AnnotationIPPools: "pool-b"}),
			&v1alpha1.IPClaim{Spec: v1alpha1.IPClaimSpec{Pool: "pool-b"}}, fwk.Queue},
		{"unknown object: queue rather than strand the pod", pod(map[string]string{v1alpha1.AnnotationIPPools: "pool-b"}), "junk", fwk.Queue},
		{"malformed annotation: queue, PreFilter reports it", pod(map[string]string{v1alpha1.AnnotationIPPools: ",,"}), claim("pool-a"), fwk.Queue},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := isSchedulableAfterClaimDeleted(klog.Background(), tc.pod, tc.old, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("hint = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNeedsIP(t *testing.T) {
	for _, tc := range []struct {
		hostNetwork bool
		want        bool
	}{{false, true}, {true, false}} {
		p := &v1.Pod{Spec: v1.PodSpec{HostNetwork: tc.hostNetwork}}
		if got := needsIP(p); got != tc.want {
			t.Errorf("needsIP(hostNetwork=%v) = %v, want %v", tc.hostNetwork, got, tc.want)
		}
	}
}
