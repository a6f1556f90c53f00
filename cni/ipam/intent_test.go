package ipam

import (
	"net/netip"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

func podOwnedBy(kind, owner, name string, labels, ann map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: labels, Annotations: ann}}
	if kind != "" {
		p.OwnerReferences = []metav1.OwnerReference{{Kind: kind, Name: owner, Controller: ptr.To(true), APIVersion: "apps/v1"}}
	}
	return p
}

func TestParseIntent(t *testing.T) {
	type want struct {
		kind, name string
		ordinal    *int32
		mode       v1alpha1.ClaimMode
		release    v1alpha1.ReleasePolicy
		pools      []string
		ip         string
	}
	rsHash := map[string]string{appsv1.DefaultDeploymentUniqueLabelKey: "7d9f8"}
	cases := []struct {
		name      string
		pod       *corev1.Pod
		want      want
		errNaming string // the annotation a malformed-annotation error must name
	}{
		{"StatefulSet pod: sticky OnScaleDown with ordinal", podOwnedBy("StatefulSet", "db", "db-2", nil, nil),
			want{kind: "StatefulSet", name: "db", ordinal: ptr.To[int32](2), mode: v1alpha1.ModeSticky, release: v1alpha1.ReleaseOnScaleDown}, ""},
		{"StatefulSet pod with pod-index label", podOwnedBy("StatefulSet", "db", "db-x", map[string]string{appsv1.PodIndexLabel: "4"}, nil),
			want{kind: "StatefulSet", name: "db", ordinal: ptr.To[int32](4), mode: v1alpha1.ModeSticky, release: v1alpha1.ReleaseOnScaleDown}, ""},
		{"StatefulSet pod with Never", podOwnedBy("StatefulSet", "db", "db-0", nil, map[string]string{v1alpha1.AnnotationIPRelease: "Never"}),
			want{kind: "StatefulSet", name: "db", ordinal: ptr.To[int32](0), mode: v1alpha1.ModeSticky, release: v1alpha1.ReleaseNever}, ""},
		{"Deployment pod: ephemeral", podOwnedBy("ReplicaSet", "web-7d9f8", "web-7d9f8-abcde", rsHash, map[string]string{v1alpha1.AnnotationIPPools: "pool-a, pool-b"}),
			want{kind: "Deployment", name: "web", mode: v1alpha1.ModeEphemeral, release: v1alpha1.ReleaseOnDelete, pools: []string{"pool-a", "pool-b"}}, ""},
		{"bare ReplicaSet pod", podOwnedBy("ReplicaSet", "rs", "rs-abcde", nil, nil),
			want{kind: "ReplicaSet", name: "rs", mode: v1alpha1.ModeEphemeral, release: v1alpha1.ReleaseOnDelete}, ""},
		{"Job pod", podOwnedBy("Job", "batch", "batch-xyz", nil, nil),
			want{kind: "Job", name: "batch", mode: v1alpha1.ModeEphemeral, release: v1alpha1.ReleaseOnDelete}, ""},
		{"bare pod", podOwnedBy("", "", "solo", nil, nil),
			want{kind: "Pod", mode: v1alpha1.ModeEphemeral, release: v1alpha1.ReleaseOnDelete}, ""},
		{"static IP: sticky OnDelete", podOwnedBy("", "", "solo", nil, map[string]string{v1alpha1.AnnotationIPAddress: "10.0.0.7"}),
			want{kind: "Static", mode: v1alpha1.ModeSticky, release: v1alpha1.ReleaseOnDelete, ip: "10.0.0.7"}, ""},
		{"static IPv6 with Never", podOwnedBy("", "", "solo", nil, map[string]string{v1alpha1.AnnotationIPAddress: "fd00::7", v1alpha1.AnnotationIPRelease: "never"}),
			want{kind: "Static", mode: v1alpha1.ModeSticky, release: v1alpha1.ReleaseNever, ip: "fd00::7"}, ""},
		{"sticky by annotation", podOwnedBy("ReplicaSet", "web-7d9f8", "web-7d9f8-abcde", rsHash, map[string]string{v1alpha1.AnnotationIPPolicy: "Sticky"}),
			want{kind: "Deployment", name: "web", mode: v1alpha1.ModeSticky, release: v1alpha1.ReleaseOnDelete}, ""},
		{"StatefulSet made ephemeral", podOwnedBy("StatefulSet", "db", "db-1", nil, map[string]string{v1alpha1.AnnotationIPPolicy: "ephemeral"}),
			want{kind: "StatefulSet", name: "db", ordinal: ptr.To[int32](1), mode: v1alpha1.ModeEphemeral, release: v1alpha1.ReleaseOnDelete}, ""},
		{"IP not an address", podOwnedBy("", "", "p", nil, map[string]string{v1alpha1.AnnotationIPAddress: "10.0.0.300"}), want{}, v1alpha1.AnnotationIPAddress},
		{"IP not canonical", podOwnedBy("", "", "p", nil, map[string]string{v1alpha1.AnnotationIPAddress: "fd00:0::7"}), want{}, v1alpha1.AnnotationIPAddress},
		{"empty pool in list", podOwnedBy("", "", "p", nil, map[string]string{v1alpha1.AnnotationIPPools: "a,,b"}), want{}, v1alpha1.AnnotationIPPools},
		{"invalid pool name", podOwnedBy("", "", "p", nil, map[string]string{v1alpha1.AnnotationIPPools: "Pool_A"}), want{}, v1alpha1.AnnotationIPPools},
		{"pool twice", podOwnedBy("", "", "p", nil, map[string]string{v1alpha1.AnnotationIPPools: "a,a"}), want{}, v1alpha1.AnnotationIPPools},
		{"unknown policy", podOwnedBy("", "", "p", nil, map[string]string{v1alpha1.AnnotationIPPolicy: "forever"}), want{}, v1alpha1.AnnotationIPPolicy},
		{"ephemeral static", podOwnedBy("", "", "p", nil, map[string]string{v1alpha1.AnnotationIPPolicy: "ephemeral", v1alpha1.AnnotationIPAddress: "10.0.0.7"}), want{}, v1alpha1.AnnotationIPPolicy},
		{"unknown release", podOwnedBy("", "", "p", nil, map[string]string{v1alpha1.AnnotationIPRelease: "Later"}), want{}, v1alpha1.AnnotationIPRelease},
		{"ephemeral with Never", podOwnedBy("", "", "p", nil, map[string]string{v1alpha1.AnnotationIPRelease: "Never"}), want{}, v1alpha1.AnnotationIPRelease},
		{"OnScaleDown outside a StatefulSet", podOwnedBy("", "", "p", nil, map[string]string{v1alpha1.AnnotationIPPolicy: "sticky", v1alpha1.AnnotationIPRelease: "OnScaleDown"}), want{}, v1alpha1.AnnotationIPRelease},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := ParseIntent(tc.pod)
			if tc.errNaming != "" {
				if ReasonOf(err) != ReasonMalformedAnnotation || !strings.Contains(err.Error(), tc.errNaming) {
					t.Fatalf("want a malformed-annotation error naming %s, got %v", tc.errNaming, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			o := in.Owner
			if o.Namespace != "shop" || o.PodName != tc.pod.Name || o.Kind != w.kind || o.Name != w.name ||
				!ptr.Equal(o.Ordinal, w.ordinal) || in.Mode != w.mode || in.Release != w.release {
				t.Fatalf("got owner %+v (ordinal %v) mode %s release %s; want %+v", o, ptr.Deref(o.Ordinal, -1), in.Mode, in.Release, w)
			}
			if strings.Join(in.Pools, ",") != strings.Join(w.pools, ",") {
				t.Fatalf("pools = %v, want %v", in.Pools, w.pools)
			}
			if (w.ip == "") == in.IP.IsValid() || (w.ip != "" && in.IP != netip.MustParseAddr(w.ip)) {
				t.Fatalf("IP = %v, want %q", in.IP, w.ip)
			}
		})
	}
}

func TestErrorsIs(t *testing.T) {
	err := poolExhausted([]string{"pool-a", "pool-b"})
	if !strings.Contains(err.Error(), "pool exhausted") || !strings.Contains(err.Error(), "pool-a") {
		t.Fatalf("message %q must say pool exhausted and name the pools", err)
	}
	var wrapped error = err
	if !errorsIs(wrapped, ErrPoolExhausted) || errorsIs(wrapped, ErrIPHeld) {
		t.Fatal("errors.Is does not match on the reason")
	}
	if ReasonOf(namespaceNotAllowed("p", "ns")) != ReasonNamespaceNotAllowed {
		t.Fatal("ReasonOf")
	}
}
