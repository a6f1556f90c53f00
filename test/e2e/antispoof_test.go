package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

// Anti-spoofing pools: two of the test's own, the second on another VLAN.
var antispoofPools = []v1alpha1.IPPool{
	{ObjectMeta: metav1.ObjectMeta{Name: "e2e-antispoof"}, Spec: v1alpha1.IPPoolSpec{CIDR: "10.16.201.0/27", Gateway: "10.16.201.1"}},
	{ObjectMeta: metav1.ObjectMeta{Name: "e2e-antispoof-vlan"}, Spec: v1alpha1.IPPoolSpec{CIDR: "10.16.202.0/27", Gateway: "10.16.202.1", VLAN: 202}},
}

// probeSeen is what the workload's /seen reports (test/e2e/images/workload/probe.go).
type probeSeen struct {
	Tags map[string]struct {
		Count int      `json:"count"`
		Src   []string `json:"src"`
	} `json:"tags"`
	ARP []struct {
		Op    int    `json:"op"`
		SPA   string `json:"spa"`
		SHA   string `json:"sha"`
		Count int    `json:"count"`
	} `json:"arp"`
}

// checkAntiSpoofing: an attacker pod with CAP_NET_ADMIN and CAP_NET_RAW on dc-a tries to send as
// a victim pod (its IP, its MAC, both, through the kernel with the victim's IP added to its
// interface and as hand-made frames), as a pod of another VLAN, from a changed MAC, IPv6 and
// another ethertype, forges ARP replies and gratuitous ARP for the victim's IP, and sends to a pod
// of another VLAN. Receivers on the same node and across the tunnel count at their interface what
// arrives: nothing of it may, while the attacker's own probes (sent last) all do.
func checkAntiSpoofing(t *testing.T, c *cluster) {
	ctx := context.Background()
	ec, err := client.NewForConfig(c.config)
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{}
	list, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range list.Items {
		if n.Labels[guestLabel] == "" {
			nodes[n.Labels[zoneLabel]] = n.Name
		}
	}
	ns := fmt.Sprintf("e2e-antispoof-%d", time.Now().Unix())
	if _, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range antispoofPools {
		p.Spec.Namespaces = []string{ns}
		if err := ec.IPPools().Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err) // a pool left by an interrupted run
		}
		if _, err := ec.IPPools().Create(ctx, &p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = c.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
		poll(t, 2*time.Minute, "namespace "+ns+" gone (its claims released)", func(ctx context.Context) (bool, error) {
			_, err := c.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		for _, p := range antispoofPools {
			_ = ec.IPPools().Delete(ctx, p.Name, metav1.DeleteOptions{})
		}
	})

	type podSpec struct {
		name, dc, pool  string
		attacker, sniff bool
	}
	specs := []podSpec{
		{name: "attacker", dc: "dc-a", pool: "e2e-antispoof", attacker: true},
		{name: "victim", dc: "dc-a", pool: "e2e-antispoof"},
		{name: "near", dc: "dc-a", pool: "e2e-antispoof", sniff: true},
		{name: "far", dc: "dc-b", pool: "e2e-antispoof", sniff: true},
		{name: "other-vlan", dc: "dc-a", pool: "e2e-antispoof-vlan", sniff: true},
	}
	for _, s := range specs {
		p := workloadPod(s.dc, nodes[s.dc])
		p.Name, p.Spec.Hostname, p.Labels = s.name, s.name, map[string]string{"app": "antispoof"}
		p.Annotations = map[string]string{v1alpha1.AnnotationIPPools: s.pool}
		if s.sniff {
			p.Spec.Containers[0].Args = []string{"-sniff"}
		}
		if s.attacker {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}}}
		}
		if _, err := c.kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ip := map[string]netip.Addr{}
	for _, s := range specs {
		poll(t, 2*time.Minute, "pod "+s.name+" Ready", func(ctx context.Context) (bool, error) {
			p, err := c.kube.CoreV1().Pods(ns).Get(ctx, s.name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			if !podReady(p) {
				return false, fmt.Errorf("pod %s: %s %s", s.name, p.Status.Phase, p.Status.Message)
			}
			ip[s.name], err = netip.ParseAddr(p.Status.PodIP)
			return err == nil, err
		})
	}
	mac := func(name string) string {
		m, err := nodeapi.MACForIP(ip[name])
		if err != nil {
			t.Fatal(err)
		}
		return m.String()
	}
	call := func(pod, path string, q url.Values) string {
		t.Helper()
		params := map[string]string{}
		for k := range q {
			params[k] = q.Get(k)
		}
		b, err := c.kube.CoreV1().Pods(ns).ProxyGet("http", pod, "8080", path, params).DoRaw(ctx)
		if err != nil {
			t.Fatalf("%s %s?%s: %v: %s", pod, path, q.Encode(), err, b)
		}
		return string(b)
	}
	const n = 20
	// The attacker's own IP reaches the receivers first (the kernel resolves their neighbors),
	// and the near receiver talks to the victim, so it has a neighbor entry ARP could poison.
	for _, to := range []string{"near", "far"} {
		call("attacker", "/send", url.Values{"via": {"socket"}, "dst": {ip[to].String()}, "tag": {"prime"}, "count": {"3"}})
	}
	if body, err := fetchFrom(ctx, c, ns, "near", "http://"+ip["victim"].String()+":8080/"); err != nil || !strings.HasPrefix(body, "hello from victim ") {
		t.Fatalf("near -> victim before the attack: %q, %v", body, err)
	}

	// Every attempt: its tag, the /send or /arp query, and the receivers that must see nothing.
	type attempt struct {
		tag, path string
		q         url.Values
		receivers []string
	}
	other := "02:00:00:00:00:01"
	var attempts []attempt
	for _, to := range []string{"near", "far"} {
		d := ip[to].String()
		attempts = append(attempts,
			attempt{"victim-ip-kernel-" + to, "/send", url.Values{"via": {"socket"}, "src": {ip["victim"].String()}, "dst": {d}}, []string{to}},
			attempt{"victim-ip-" + to, "/send", url.Values{"src": {ip["victim"].String()}, "dst": {d}}, []string{to}},
			attempt{"victim-ip-mac-" + to, "/send", url.Values{"src": {ip["victim"].String()}, "srcmac": {mac("victim")}, "dst": {d}}, []string{to}},
			attempt{"victim-ip-mac-kernel-" + to, "/send", url.Values{"via": {"socket"}, "src": {ip["victim"].String()}, "srcmac": {mac("victim")}, "dst": {d}}, []string{to}},
			attempt{"other-vlan-ip-" + to, "/send", url.Values{"src": {ip["other-vlan"].String()}, "dst": {d}}, []string{to}},
			attempt{"changed-mac-kernel-" + to, "/send", url.Values{"via": {"socket"}, "srcmac": {other}, "dst": {d}}, []string{to}},
			attempt{"changed-mac-" + to, "/send", url.Values{"src": {ip["attacker"].String()}, "srcmac": {other}, "dst": {d}}, []string{to}},
		)
	}
	attempts = append(attempts,
		attempt{"cross-vlan-kernel", "/send", url.Values{"via": {"socket"}, "dst": {ip["other-vlan"].String()}}, []string{"other-vlan"}},
		attempt{"cross-vlan", "/send", url.Values{"src": {ip["attacker"].String()}, "dst": {ip["other-vlan"].String()}}, []string{"other-vlan"}},
		attempt{"ipv6-multicast", "/send", url.Values{"proto": {"udp6"}, "src": {"fe80::858:aff:fe10:c902"}, "dst": {"ff02::1"}, "dstmac": {"33:33:00:00:00:01"}}, []string{"near", "other-vlan"}},
		attempt{"ipv6-unicast", "/send", url.Values{"proto": {"udp6"}, "src": {"fe80::858:aff:fe10:c902"}, "dst": {"fe80::1"}, "dstmac": {mac("near")}}, []string{"near"}},
		attempt{"ethertype-broadcast", "/send", url.Values{"proto": {"ether"}}, []string{"near", "other-vlan"}},
		attempt{"ethertype-unicast", "/send", url.Values{"proto": {"ether"}, "dstmac": {mac("near")}}, []string{"near"}},
		// ARP claiming the victim's IP with the attacker's MAC: a reply to near, gratuitous
		// requests and replies to everyone.
		attempt{"", "/arp", url.Values{"op": {"2"}, "spa": {ip["victim"].String()}, "tpa": {ip["near"].String()}, "tha": {mac("near")}, "dstmac": {mac("near")}}, []string{"near"}},
		attempt{"", "/arp", url.Values{"op": {"1"}, "spa": {ip["victim"].String()}, "tpa": {ip["victim"].String()}}, []string{"near", "other-vlan"}},
		attempt{"", "/arp", url.Values{"op": {"2"}, "spa": {ip["victim"].String()}, "tpa": {ip["victim"].String()}}, []string{"near", "other-vlan"}},
	)
	sent := 0
	for _, a := range attempts {
		a.q.Set("count", fmt.Sprint(n))
		if a.tag != "" {
			a.q.Set("tag", a.tag)
		}
		call("attacker", a.path, a.q)
		sent += n * len(a.receivers)
	}
	// The controls go last, through both paths: once the frames are in, the attempts before
	// them would be too.
	for _, to := range []string{"near", "far"} {
		call("attacker", "/send", url.Values{"via": {"socket"}, "dst": {ip[to].String()}, "tag": {"control-kernel"}, "count": {fmt.Sprint(n)}})
		call("attacker", "/send", url.Values{"src": {ip["attacker"].String()}, "dst": {ip[to].String()}, "tag": {"control"}, "count": {fmt.Sprint(n)}})
	}
	seen := map[string]probeSeen{}
	defer func() {
		if t.Failed() {
			t.Logf("received: %+v", seen)
		}
	}()
	for _, to := range []string{"near", "far", "other-vlan"} {
		poll(t, 30*time.Second, "what "+to+" received", func(ctx context.Context) (bool, error) {
			var s probeSeen
			if err := json.Unmarshal([]byte(call(to, "/seen", nil)), &s); err != nil {
				return false, err
			}
			seen[to] = s
			if to == "other-vlan" {
				return true, nil
			}
			// Frames written to the packet socket all arrive; the kernel's datagrams may lose a
			// few while it resolves the neighbor again (its stale entry was probed from the
			// victim's IP), but some arrive.
			if got := s.Tags["control"].Count; got < n {
				return false, fmt.Errorf("%s received %d of %d control probes from the attacker's own IP and MAC", to, got, n)
			}
			if s.Tags["control-kernel"].Count == 0 {
				return false, fmt.Errorf("%s received none of the attacker's %d datagrams from its own IP", to, n)
			}
			return true, nil
		})
	}
	delivered, controls := 0, 0
	for to, s := range seen {
		for tag, got := range s.Tags {
			switch tag {
			case "prime", "control", "control-kernel":
				controls += got.Count
				if to == "other-vlan" {
					t.Errorf("the attacker's %s probes reached the pod of another VLAN (%d)", tag, got.Count)
				}
				for _, src := range got.Src {
					if src != ip["attacker"].String() {
						t.Errorf("%s: %s probe from %s, want the attacker's %s", to, tag, src, ip["attacker"])
					}
				}
				continue
			}
			delivered += got.Count
			t.Errorf("%s received %d %q probes (sources %v)", to, got.Count, tag, got.Src)
		}
		for _, a := range s.ARP {
			if want, _ := nodeapi.MACForIP(netip.MustParseAddr(a.SPA)); a.SHA != want.String() {
				delivered += a.Count
				t.Errorf("%s received %d ARP op %d claiming %s is at %s", to, a.Count, a.Op, a.SPA, a.SHA)
			}
		}
	}
	// The victim's neighbor entry in near still holds the victim's MAC, and near reaches it.
	neigh := call("near", "/neigh", nil)
	for _, line := range strings.Split(neigh, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == ip["victim"].String() && f[3] != mac("victim") && f[3] != "00:00:00:00:00:00" {
			t.Errorf("near's neighbor entry for the victim %s is %s, want %s:\n%s", ip["victim"], f[3], mac("victim"), neigh)
		}
	}
	if body, err := fetchFrom(ctx, c, ns, "near", "http://"+ip["victim"].String()+":8080/"); err != nil || !strings.HasPrefix(body, "hello from victim ") {
		t.Errorf("near -> victim after the forged ARP: %q, %v", body, err)
	}
	if body, err := fetchFrom(ctx, c, ns, "attacker", "http://"+ip["other-vlan"].String()+":8080/"); err == nil {
		t.Errorf("attacker reached the pod of another VLAN: %q", body)
	}
	fmt.Printf("antispoof: spoofed packets delivered=%d of %d sent (%d attempts: another pod's IP, MAC, both, another VLAN's IP, changed MAC, IPv6, other ethertype, forged ARP, to another VLAN); own probes delivered=%d\n",
		delivered, sent, len(attempts), controls)
}
