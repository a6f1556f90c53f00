package integration

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestCNIBadInputs: each bad ADD returns the right CNI error code with a message naming the
// problem, and leaves no port, veth, pod interface or claim behind.
func TestCNIBadInputs(t *testing.T) {
	e := newCNIEnv(t, 1, "")
	h := e.hosts[0]
	e.createPool("ecni-def", "10.71.0.0/24", "10.71.0.1", 10, true)
	e.createPool("ecni-other", "10.72.0.0/24", "10.72.0.1", 20, false, "other")
	tiny := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "ecni-tiny"}, Spec: v1alpha1.IPPoolSpec{CIDR: "10.73.0.0/24", Gateway: "10.73.0.1", VLAN: 30,
		IncludeRanges: []v1alpha1.IPRange{{Start: "10.73.0.10", End: "10.73.0.10"}}}}
	if _, err := e.cp.Ecloud.IPPools().Create(e.cp.Ctx, tiny, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The tiny pool's only IP is taken.
	holder := e.newPod(h, "holder", map[string]string{v1alpha1.AnnotationIPPools: "ecni-tiny"})
	holder.add(t)

	good := func(p *pod) []byte { return h.netConf(nil) }
	tests := []struct {
		name        string
		annotations map[string]string
		stdin       func(*pod) []byte
		env         func(*pod, map[string]string)
		code        uint
		msgHas      string
	}{
		{name: "malformed JSON", stdin: func(*pod) []byte { return []byte(`{"cniVersion":"1.1.0","name":`) }, code: nodeapi.CodeDecoding},
		{name: "missing network name", stdin: func(*pod) []byte { return []byte(`{"cniVersion":"1.1.0","type":"ecloud-cni"}`) }, code: nodeapi.CodeInvalidConfig, msgHas: "name"},
		{name: "unknown cniVersion", stdin: func(*pod) []byte {
			return []byte(`{"cniVersion":"9.9.9","name":"ecloud","type":"ecloud-cni","socket":"` + h.Socket + `"}`)
		}, code: nodeapi.CodeIncompatibleVersion, msgHas: "version"},
		{name: "relative socket", stdin: func(*pod) []byte { return []byte(`{"cniVersion":"1.1.0","name":"ecloud","socket":"x.sock"}`) }, code: nodeapi.CodeInvalidConfig, msgHas: "configuration"},
		{name: "missing K8S_POD_NAME", stdin: good, env: func(p *pod, m map[string]string) {
			m["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAMESPACE=ecni;K8S_POD_UID=x"
		}, code: nodeapi.CodeInvalidEnv, msgHas: "CNI_ARGS"},
		{name: "missing CNI_IFNAME", stdin: good, env: func(p *pod, m map[string]string) { delete(m, "CNI_IFNAME") }, code: nodeapi.CodeInvalidEnv},
		{name: "netns does not exist", stdin: good, env: func(p *pod, m map[string]string) { m["CNI_NETNS"] = "/run/netns/" + e.id + "-nonexistent" }, code: nodeapi.CodeInvalidEnv, msgHas: "CNI_NETNS"},
		{name: "daemon down", stdin: func(*pod) []byte {
			return []byte(`{"cniVersion":"1.1.0","name":"ecloud","type":"ecloud-cni","socket":"` + e.dir + `/nobody.sock"}`)
		}, code: nodeapi.CodeTryAgainLater, msgHas: "not reachable"},
		{name: "pool not allowed for the namespace", annotations: map[string]string{v1alpha1.AnnotationIPPools: "ecni-other"}, stdin: good, code: nodeapi.CodePoolNotAllowed, msgHas: "spec.namespaces"},
		{name: "unknown pool", annotations: map[string]string{v1alpha1.AnnotationIPPools: "ecni-nope"}, stdin: good, code: nodeapi.CodeUnknownPool, msgHas: "does not exist"},
		{name: "bad pool annotation", annotations: map[string]string{v1alpha1.AnnotationIPPools: "ecni-def,,x"}, stdin: good, code: nodeapi.CodeBadAnnotation, msgHas: "empty pool name"},
		{name: "pool exhausted", annotations: map[string]string{v1alpha1.AnnotationIPPools: "ecni-tiny"}, stdin: good, code: nodeapi.CodePoolExhausted, msgHas: "no free IP"},
		{name: "requested IP taken", annotations: map[string]string{v1alpha1.AnnotationIPAddress: "10.73.0.10", v1alpha1.AnnotationIPPools: "ecni-tiny"}, stdin: good, code: nodeapi.CodeIPTaken, msgHas: "another pod holds it"},
	}
	before := len(h.podPorts())
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.newPod(h, "bad-"+string(rune('a'+i)), tt.annotations)
			env := p.env(true)
			if tt.env != nil {
				tt.env(p, env)
			}
			r := h.invoke("ADD", env, tt.stdin(p))
			if r.Err == nil {
				t.Fatalf("ADD succeeded: %s", r.Stdout)
			}
			if r.Code != tt.code {
				t.Errorf("code %d (%s), want %d", r.Code, r.Stdout, tt.code)
			}
			if !strings.Contains(r.Msg+string(r.Stdout), tt.msgHas) {
				t.Errorf("message %s does not say %q", r.Stdout, tt.msgHas)
			}
			// Nothing left behind.
			if n := len(h.podPorts()); n != before {
				t.Errorf("%d pod ports, want %d", n, before)
			}
			for _, v := range h.hostVeths() {
				if v == nodeapi.HostVethName(p.ContainerID, "eth0") {
					t.Errorf("veth %s left in the host", v)
				}
			}
			if out, _ := shOut("ip", "-n", p.NS, "-o", "link", "show"); strings.Contains(out, "eth0") {
				t.Errorf("eth0 left in the pod netns: %s", out)
			}
			claims, err := e.cp.Ecloud.IPClaims().List(e.cp.Ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range claims.Items {
				if c.Spec.Owner.PodName == p.Name {
					t.Errorf("claim %s left for %s", c.Name, p.Name)
				}
			}
			// DEL of what never came up succeeds.
			if tt.code != nodeapi.CodeTryAgainLater && tt.code != nodeapi.CodeDecoding && tt.code != nodeapi.CodeInvalidConfig && tt.code != nodeapi.CodeIncompatibleVersion {
				if r := h.invoke("DEL", p.env(false), h.netConf(nil)); r.Err != nil {
					t.Errorf("DEL after the failed ADD: %v", r.Err)
				}
			}
		})
	}

	// A failure after the lease (the interface name is taken in the pod's netns, so the veth
	// cannot be made): the plugin undoes the ADD and nothing is left, flows included.
	late := e.newPod(h, "late-fail", map[string]string{})
	sh(t, "ip", "-n", late.NS, "link", "add", "net1", "type", "veth", "peer", "name", "net1p")
	lateEnv := late.env(true)
	lateEnv["CNI_IFNAME"] = "net1"
	if r := h.invoke("ADD", lateEnv, h.netConf(nil)); r.Err == nil || r.Code != nodeapi.CodeInternal || !strings.Contains(r.Msg, "plumb pod") {
		t.Errorf("ADD with the interface name taken: code %d, %v, want %d from plumbing the leased IP", r.Code, r.Err, nodeapi.CodeInternal)
	}
	if n := len(h.podPorts()); n != before {
		t.Errorf("after a failure past the lease: %d pod ports, want %d", n, before)
	}
	if slices.Contains(h.hostVeths(), nodeapi.HostVethName(late.ContainerID, "net1")) {
		t.Error("after a failure past the lease: host veth left")
	}
	if claims, err := e.cp.Ecloud.IPClaims().List(e.cp.Ctx, metav1.ListOptions{}); err == nil {
		for _, c := range claims.Items {
			if c.Spec.Owner.PodName == late.Name {
				t.Errorf("after a failure past the lease: claim %s left", c.Name)
			}
		}
	}
	harness.Eventually(t, 5*time.Second, func() (bool, error) { return len(h.podFlows("10.71.0.")) == 0, nil },
		"flows of the failed pod removed")

	// CHECK finds a broken attachment: the OVS port is gone.
	if r := h.invoke("CHECK", holder.env(true), h.netConf(map[string]any{"prevResult": holder.Result})); r.Err != nil {
		t.Errorf("CHECK of a healthy pod: %v", r.Err)
	}
	h.vsctl("del-port", "br-int", nodeapi.HostVethName(holder.ContainerID, "eth0"))
	if r := h.invoke("CHECK", holder.env(true), h.netConf(map[string]any{"prevResult": holder.Result})); r.Err == nil || !strings.Contains(string(r.Stdout), "ports on br-int") {
		t.Errorf("CHECK without the OVS port: %v %s", r.Err, r.Stdout)
	}

	// STATUS: ready with netd, code 50 without it.
	if r := h.invoke("STATUS", map[string]string{}, h.netConf(nil)); r.Err != nil {
		t.Errorf("STATUS with netd up: %v", r.Err)
	}
	holder.del(t, true)
	h.stopNetd()
	if r := h.invoke("STATUS", map[string]string{}, h.netConf(nil)); r.Code != nodeapi.CodeNotAvailable {
		t.Errorf("STATUS with netd down: code %d (%v), want %d", r.Code, r.Err, nodeapi.CodeNotAvailable)
	}
	// DEL with the daemon down must not claim success (the IP would leak): try again later.
	if r := h.invoke("DEL", holder.env(false), h.netConf(nil)); r.Code != nodeapi.CodeTryAgainLater {
		t.Errorf("DEL with netd down: code %d, want %d", r.Code, nodeapi.CodeTryAgainLater)
	}
}
