package plugin

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name, in string
		want     nodeapi.PodRef
		errHas   string
	}{
		{"kubelet order", "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=1234-5678",
			nodeapi.PodRef{Namespace: "shop", Name: "db-0", UID: "1234-5678"}, ""},
		{"other order, no uid", "K8S_POD_NAME=web.a;K8S_POD_NAMESPACE=default", nodeapi.PodRef{Namespace: "default", Name: "web.a"}, ""},
		{"empty pairs tolerated", ";K8S_POD_NAMESPACE=a;;K8S_POD_NAME=b;", nodeapi.PodRef{Namespace: "a", Name: "b"}, ""},
		{"missing name", "K8S_POD_NAMESPACE=shop", nodeapi.PodRef{}, "K8S_POD_NAME"},
		{"missing everything", "", nodeapi.PodRef{}, "K8S_POD_NAMESPACE"},
		{"bad namespace", "K8S_POD_NAMESPACE=Shop_1;K8S_POD_NAME=a", nodeapi.PodRef{}, "K8S_POD_NAMESPACE"},
		{"not key=value", "K8S_POD_NAMESPACE", nodeapi.PodRef{}, "KEY=VALUE"},
		{"duplicate", "K8S_POD_NAME=a;K8S_POD_NAME=b;K8S_POD_NAMESPACE=c", nodeapi.PodRef{}, "twice"},
		{"bad uid", "K8S_POD_NAMESPACE=a;K8S_POD_NAME=b;K8S_POD_UID=x/y", nodeapi.PodRef{}, "K8S_POD_UID"},
		{"too long", strings.Repeat("a=b;", 2000), nodeapi.PodRef{}, "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseArgs(tt.in)
			if tt.errHas == "" {
				if err != nil || got != tt.want {
					t.Fatalf("ParseArgs = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) || nodeapi.CodeOf(err) != nodeapi.CodeInvalidEnv {
				t.Fatalf("ParseArgs error %v (code %d), want code %d naming %q", err, nodeapi.CodeOf(err), nodeapi.CodeInvalidEnv, tt.errHas)
			}
		})
	}
}

// FuzzParseArgs: never panics; an accepted pod round-trips through CNI_ARGS.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{
		"IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=db-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=1234",
		"K8S_POD_NAME=a;K8S_POD_NAMESPACE=b", "=", ";;;", "K8S_POD_NAME==;K8S_POD_NAMESPACE=x", "a=b=c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pod, err := ParseArgs(s)
		if err != nil {
			if nodeapi.CodeOf(err) != nodeapi.CodeInvalidEnv {
				t.Fatalf("code %d for %q", nodeapi.CodeOf(err), s)
			}
			return
		}
		again, err := ParseArgs(argsString(pod))
		if err != nil || again != pod {
			t.Fatalf("round trip of %+v: %+v, %v", pod, again, err)
		}
	})
}

// argsString renders a pod as CNI_ARGS (tests and tools).
func argsString(p nodeapi.PodRef) string {
	return fmt.Sprintf("IgnoreUnknown=1;%s=%s;%s=%s;%s=%s", ArgPodNamespace, p.Namespace, ArgPodName, p.Name, ArgPodUID, p.UID)
}
