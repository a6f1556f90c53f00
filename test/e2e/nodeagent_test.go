package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ecloud-io/ecloud/node-agent/testutil/falcontest"
	"github.com/ecloud-io/ecloud/test/netns"
)

// controlPlaneIP is the control plane's address on the datacenter network both hosts hang on
// (hack/cluster/lib.sh: CP_IP); the Odin test receiver listens there.
const controlPlaneIP = "10.250.0.1"

const (
	nodeAgentDS     = "ecloud-node-agent"
	nodeAgentConfig = "ecloud-node-agent"
	nodeAgentPort   = "9102"
)

// checkNodeAgentSamples points the node agents, with their default flags, at an Odin receiver that
// answers as Open-Falcon's transfer does (falcontest: plain JSON only, transfer's validation; the
// real transfer cannot be built from the module proxy) on the datacenter network, and checks that
// both hosts push the example pods' container samples there, that every item the agents count as
// sent arrived with nothing rejected or dropped, and that they serve the samples on /metrics.
//
// With the guest node, pods on the guest burn a CPU and hold 200 MiB, and checkGuestNodeAgent checks
// their samples (real cgroup v2) through the same receiver.
func checkNodeAgentSamples(t *testing.T, c *cluster, ns string) {
	ctx := context.Background()
	guest := c.guestNodeName()
	if guest != "" {
		startGuestLoad(t, c, ns, guest)
	}
	cpNS, err := os.Open("/run/netns/" + c.prefix + "-cp")
	if err != nil {
		t.Fatal(err)
	}
	defer cpNS.Close()
	l, err := netns.Listen(cpNS, net.JoinHostPort(controlPlaneIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	odin := falcontest.NewOn(l)
	defer odin.Close()

	cms := c.kube.CoreV1().ConfigMaps("kube-system")
	cm, err := cms.Get(ctx, nodeAgentConfig, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setURL := func(url string) {
		patch := fmt.Sprintf(`{"data":{"odin-url":%q}}`, url)
		if _, err := cms.Patch(context.Background(), nodeAgentConfig, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Errorf("set odin-url: %v", err)
		}
		restartNodeAgents(t, c)
	}
	setURL(odin.URL())
	defer setURL(cm.Data["odin-url"])

	// The demo's pods run on the namespace hosts (the guest node is tainted).
	nodes, err := c.kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "!" + guestLabel})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("samples of the example pods reach Odin from both hosts", func(t *testing.T) {
		poll(t, 2*time.Minute, "container_cpu_usage_seconds_total of ecloud-demo pods from every node", func(context.Context) (bool, error) {
			from := map[string]bool{}
			for _, it := range odin.Items() {
				if it.Metric == "container_cpu_usage_seconds_total" && strings.Contains(it.Tags, "namespace="+demoNS) &&
					strings.Contains(it.Tags, "container=app") {
					from[it.Endpoint] = true
				}
			}
			for _, n := range nodes.Items {
				if !from[n.Name] {
					return false, fmt.Errorf("%d valid items (%d invalid, %d pushes); none for an %s container from %s",
						len(odin.Items()), odin.Invalid(), odin.Requests(), demoNS, n.Name)
				}
			}
			return true, nil
		})
		if n := odin.Invalid(); n > 0 {
			t.Errorf("the receiver refused %d items as falcon transfer would", n)
		}
	})
	t.Run("on the guest node (cgroup v2)", func(t *testing.T) {
		if guest == "" {
			requireGuest(t, c)
		}
		checkGuestNodeAgent(t, c, odin, ns, guest)
	})
	t.Run("every item the agents count as sent arrived, none dropped", func(t *testing.T) {
		// Read the agents' counters first: whatever they count as sent was accepted before.
		var sent float64
		for _, h := range []string{"a", "b"} {
			f, err := os.Open("/run/netns/" + c.prefix + "-" + h)
			if err != nil {
				t.Fatal(err)
			}
			body, err := httpGetIn(f, "127.0.0.1:"+nodeAgentPort, "/metrics")
			f.Close()
			if err != nil {
				t.Fatalf("node-agent /metrics on host %s: %v", h, err)
			}
			for _, m := range []struct {
				series string
				want0  bool
			}{
				{`node_agent_odin_items_total{outcome="sent"}`, false},
				{`node_agent_odin_items_total{outcome="rejected"}`, true},
				{`node_agent_odin_items_total{outcome="spool_dropped"}`, true},
				{`node_agent_odin_items_total{outcome="invalid"}`, true},
				{`node_agent_odin_gzip_fallbacks_total`, true},
			} {
				v, ok := sampleValue(body, m.series)
				switch {
				case !ok:
					t.Errorf("host %s: no %s on /metrics", h, m.series)
				case m.want0 && v != 0:
					t.Errorf("host %s: %s = %v, want 0 with the default flags", h, m.series, v)
				case !m.want0:
					sent += v
				}
			}
		}
		got := len(odin.Items())
		if float64(got) < sent || sent == 0 {
			t.Errorf("the receiver holds %d valid items, the agents count %v sent", got, sent)
		}
		t.Logf("the receiver holds %d valid items (%d invalid), the agents count %v sent", got, odin.Invalid(), sent)
		if enc := odin.LastHeader().Get("Content-Encoding"); enc != "" {
			t.Errorf("the agents pushed with Content-Encoding %q, want plain JSON by default", enc)
		}
	})
	t.Run("samples of the example pods on /metrics", func(t *testing.T) {
		f, err := os.Open("/run/netns/" + c.prefix + "-a")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		poll(t, time.Minute, "node-agent /metrics on host a", func(context.Context) (bool, error) {
			body, err := httpGetIn(f, "127.0.0.1:"+nodeAgentPort, "/metrics")
			if err != nil {
				return false, err
			}
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(l, "container_memory_working_set_bytes{") && strings.Contains(l, `namespace="`+demoNS+`"`) &&
					strings.Contains(l, `container="app"`) {
					return true, nil
				}
			}
			return false, fmt.Errorf("no container_memory_working_set_bytes of an %s container in %d bytes", demoNS, len(body))
		})
	})
}

// restartNodeAgents replaces the node-agent pods (they read the ConfigMap at start) and waits
// until the new ones are available on every node.
func restartNodeAgents(t *testing.T, c *cluster) {
	t.Helper()
	ctx := context.Background()
	sel := "app.kubernetes.io/name=" + nodeAgentDS
	if err := c.kube.CoreV1().Pods("kube-system").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: sel}); err != nil {
		t.Fatalf("restart node agents: %v", err)
	}
	// The guest node (emulated) takes minutes to stop and start a pod.
	limit := 2 * time.Minute
	if c.guestNodeName() != "" {
		limit = 6 * time.Minute
	}
	poll(t, limit, "node-agent DaemonSet available again", func(ctx context.Context) (bool, error) {
		ds, err := c.kube.AppsV1().DaemonSets("kube-system").Get(ctx, nodeAgentDS, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		pods, err := c.kube.CoreV1().Pods("kube-system").List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return false, err
		}
		terminating := 0
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				terminating++
			}
		}
		if terminating > 0 || ds.Status.NumberAvailable != ds.Status.DesiredNumberScheduled {
			return false, fmt.Errorf("%d terminating, %d/%d available", terminating, ds.Status.NumberAvailable, ds.Status.DesiredNumberScheduled)
		}
		return true, nil
	})
}

// sampleValue finds the sample `series value` (series exactly as exposed, labels included) in a
// Prometheus text exposition.
func sampleValue(body, series string) (float64, bool) {
	for _, l := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(l, series+" ")
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(rest, &v); err == nil {
			return v, true
		}
	}
	return 0, false
}
