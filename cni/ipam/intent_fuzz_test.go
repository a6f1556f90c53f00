package ipam

import (
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// asciiLower lowers ASCII letters only: what the annotations' case-insensitive words allow.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// FuzzParseIntent feeds any values of the four IPAM annotations (each present or not) to
// ParseIntent, for a bare pod, a Deployment pod and a StatefulSet pod. Properties: no panic; a
// refusal is ReasonMalformedAnnotation naming one of the annotations; an accepted intent holds
// the rules (ephemeral IPs released on delete, OnScaleDown only for StatefulSets, a specific IP
// sticky and written canonically), its mode and release policy are the words written (ASCII case
// aside), and its pool list is valid, without duplicates, and parses back to itself.
func FuzzParseIntent(f *testing.F) {
	f.Add(uint8(0xf), uint8(0), "pool-a, pool-b", "10.0.0.7", "sticky", "Never")
	f.Add(uint8(0x1), uint8(1), "pool-a,,pool-b", "", "", "")
	f.Add(uint8(0x1), uint8(1), "pool-a,pool-a", "", "", "")
	f.Add(uint8(0x2), uint8(0), "", "010.0.0.7", "", "")
	f.Add(uint8(0x2), uint8(0), "", "fe80::1%eth0", "", "")
	f.Add(uint8(0x6), uint8(0), "", "10.0.0.7", "ephemeral", "")
	f.Add(uint8(0x8), uint8(2), "", "", "", "onscaledown")
	f.Add(uint8(0x8), uint8(1), "", "", "", "OnScaleDown")
	f.Add(uint8(0xc), uint8(1), "", "", "Sticky", "never")
	f.Add(uint8(0x4), uint8(0), "", "", "stic\u212ay", "")
	f.Add(uint8(0xc), uint8(2), "", "", "sticky", "On\u017fcaleDown")
	names := []string{v1alpha1.AnnotationIPPools, v1alpha1.AnnotationIPAddress, v1alpha1.AnnotationIPPolicy, v1alpha1.AnnotationIPRelease}
	f.Fuzz(func(t *testing.T, present, owner uint8, pools, ip, policy, release string) {
		ann := map[string]string{}
		for i, v := range []string{pools, ip, policy, release} {
			if present&(1<<i) != 0 {
				ann[names[i]] = v
			}
		}
		var pod *corev1.Pod
		switch owner % 3 {
		case 0:
			pod = podOwnedBy("", "", "solo", nil, ann)
		case 1:
			pod = podOwnedBy("ReplicaSet", "web-7d9f8", "web-7d9f8-abcde", map[string]string{"pod-template-hash": "7d9f8"}, ann)
		default:
			pod = podOwnedBy("StatefulSet", "db", "db-3", nil, ann)
		}
		in, err := ParseIntent(pod)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Reason != ReasonMalformedAnnotation || !slices.Contains(names, e.Annotation) ||
				!strings.Contains(e.Detail, e.Annotation) {
				t.Fatalf("refusal %#v is not a malformed-annotation error naming one of %v", err, names)
			}
			if _, ok := ann[e.Annotation]; !ok {
				t.Fatalf("refusal names %s, which the pod does not have: %v", e.Annotation, err)
			}
			return
		}
		if in.Mode != v1alpha1.ModeSticky && in.Mode != v1alpha1.ModeEphemeral {
			t.Fatalf("mode %q", in.Mode)
		}
		if in.Mode == v1alpha1.ModeEphemeral && in.Release != v1alpha1.ReleaseOnDelete {
			t.Fatalf("ephemeral IP with release %q", in.Release)
		}
		if in.Release == v1alpha1.ReleaseOnScaleDown && in.Owner.Kind != KindStatefulSet {
			t.Fatalf("OnScaleDown for a %s pod", in.Owner.Kind)
		}
		if v, ok := ann[v1alpha1.AnnotationIPAddress]; ok {
			if !in.IP.IsValid() || in.IP.String() != strings.TrimSpace(v) || in.IP.Zone() != "" || in.Mode != v1alpha1.ModeSticky {
				t.Fatalf("%s=%q gave IP %s mode %s", v1alpha1.AnnotationIPAddress, v, in.IP, in.Mode)
			}
		} else if in.IP.IsValid() {
			t.Fatalf("IP %s without the annotation", in.IP)
		}
		if v, ok := ann[v1alpha1.AnnotationIPPolicy]; ok && asciiLower(strings.TrimSpace(v)) != asciiLower(string(in.Mode)) {
			t.Fatalf("%s=%q gave mode %s", v1alpha1.AnnotationIPPolicy, v, in.Mode)
		}
		if v, ok := ann[v1alpha1.AnnotationIPRelease]; ok && asciiLower(strings.TrimSpace(v)) != asciiLower(string(in.Release)) {
			t.Fatalf("%s=%q gave release policy %s", v1alpha1.AnnotationIPRelease, v, in.Release)
		}
		if _, ok := ann[v1alpha1.AnnotationIPPools]; ok != (in.Pools != nil) {
			t.Fatalf("pools %q from annotation present=%v", in.Pools, ok)
		}
		if in.Pools != nil {
			if len(in.Pools) != strings.Count(pools, ",")+1 {
				t.Fatalf("%q gave %d pools %q", pools, len(in.Pools), in.Pools)
			}
			again, err := ParsePoolList(v1alpha1.AnnotationIPPools, strings.Join(in.Pools, ","))
			if err != nil || !slices.Equal(again, in.Pools) {
				t.Fatalf("pools %q do not parse back to themselves: %q, %v", in.Pools, again, err)
			}
			for i, p := range in.Pools {
				if p == "" || p != strings.TrimSpace(p) || slices.Contains(in.Pools[i+1:], p) {
					t.Fatalf("pool list %q", in.Pools)
				}
			}
		}
	})
}
