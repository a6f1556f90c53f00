package netd

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{NodeName: "n1"}
	ok.Default()
	if errs := ok.Validate(); len(errs) != 0 {
		t.Fatalf("defaulted config: %v", errs)
	}
	if ok.Datapath != ovs.System {
		t.Errorf("default datapath %q, want system (what production runs)", ok.Datapath)
	}
	bad := ok
	bad.NodeName, bad.TunnelType, bad.MTU, bad.Bridge, bad.CNIBinDir, bad.Datapath = "", "gre", 100, "a-very-long-bridge-name", "/opt/cni/bin", "kernel"
	msg := bad.Validate().ToAggregate().Error()
	for _, f := range []string{"netd.nodeName", "netd.tunnelType", "netd.mtu", "netd.bridge", "netd.pluginBinary", "netd.datapath"} {
		if !strings.Contains(msg, f) {
			t.Errorf("errors %q do not name %s", msg, f)
		}
	}
}

func TestModuleLoaded(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "openvswitch"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		want bool
	}{{"openvswitch", true}, {"geneve", false}} {
		got, err := moduleLoaded(dir, tt.name)
		if err != nil || got != tt.want {
			t.Errorf("moduleLoaded(%s) = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

func TestConfList(t *testing.T) {
	b, err := ConfList("1.1.0", "ecloud", "/run/ecloud/netd.sock", 1400, ovs.System)
	if err != nil {
		t.Fatal(err)
	}
	var cl struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &cl); err != nil || cl.CNIVersion != "1.1.0" || cl.Name != "ecloud" || len(cl.Plugins) != 1 || cl.Plugins[0]["type"] != "ecloud-cni" || cl.Plugins[0]["socket"] != "/run/ecloud/netd.sock" || cl.Plugins[0]["mtu"] != float64(1400) || cl.Plugins[0]["datapath"] != "system" {
		t.Errorf("conflist %s, %v", b, err)
	}
}

func TestSyncerCoalesces(t *testing.T) {
	var runs, fullRuns atomic.Int32
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	s := newSyncer(func(_ context.Context, full bool) error {
		runs.Add(1)
		if full {
			fullRuns.Add(1)
		}
		started <- struct{}{}
		<-release
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.run(ctx)
	first := s.request(false)
	<-started
	// Twenty requests while the first run is busy are served by one more run, a full one as
	// one of them asked for it.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.sync(ctx, i == 7) }()
	}
	// Release the first run only once all twenty are queued (the syncer has counted them).
	for queued := uint64(0); queued < 21; {
		s.mu.Lock()
		queued = s.want
		s.mu.Unlock()
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if err := s.wait(ctx, first); err != nil {
		t.Fatal(err)
	}
	if n, f := runs.Load(), fullRuns.Load(); n != 2 || f != 1 {
		t.Errorf("%d runs (%d full) for 21 requests (1 full), want 2 (1 full)", n, f)
	}
	// A light request after the full run gets a light run.
	if err := s.sync(ctx, false); err != nil || fullRuns.Load() != 1 {
		t.Errorf("light sync after a full one: err %v, %d full runs", err, fullRuns.Load())
	}
	s2 := newSyncer(func(context.Context, bool) error { return errors.New("boom") })
	go s2.run(ctx)
	if err := s2.sync(ctx, true); err == nil || err.Error() != "boom" {
		t.Errorf("sync error = %v", err)
	}
}

func TestTunnelPort(t *testing.T) {
	for _, tt := range []ovs.TunnelType{ovs.VXLAN, ovs.Geneve} {
		p := tunnelPort(tt)
		if len(p.Name) > 15 || p.Type != string(tt) || p.Options["remote_ip"] != "flow" || p.Options["key"] != "flow" || p.ExternalIDs[extRole] != roleTunnel {
			t.Errorf("tunnel port for %s: %+v", tt, p)
		}
	}
	if tunnelPortName(ovs.VXLAN) == tunnelPortName(ovs.Geneve) {
		t.Error("vxlan and geneve share a port name")
	}
}

func TestDatapathInputChanged(t *testing.T) {
	node := func(rv string, mutate func(*corev1.Node)) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", ResourceVersion: rv, Labels: map[string]string{"zone": "dc-a"}}}
		if mutate != nil {
			mutate(n)
		}
		return n
	}
	pool := func(rv string, gen int64, mutate func(*v1alpha1.IPPool)) *v1alpha1.IPPool {
		p := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: rv, Generation: gen}, Spec: v1alpha1.IPPoolSpec{CIDR: "10.0.0.0/24"}}
		if mutate != nil {
			mutate(p)
		}
		return p
	}
	now := metav1.Now()
	for _, tt := range []struct {
		name     string
		old, cur any
		want     bool
	}{
		{"a node's resync", node("7", nil), node("7", nil), false},
		{"the kubelet's status update", node("7", nil), node("8", func(n *corev1.Node) {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
		}), false},
		{"a node's label", node("7", nil), node("8", func(n *corev1.Node) { n.Labels[DatapathLabel] = "netdev" }), true},
		{"a node's spec", node("7", nil), node("8", func(n *corev1.Node) { n.Spec.Unschedulable = true }), true},
		{"a pool's usage counts", pool("7", 1, nil), pool("8", 1, func(p *v1alpha1.IPPool) { p.Status.Allocated = 3 }), false},
		{"a pool's spec", pool("7", 1, nil), pool("8", 2, func(p *v1alpha1.IPPool) { p.Spec.VLAN = 100 }), true},
		{"a pool being deleted", pool("7", 1, nil), pool("8", 1, func(p *v1alpha1.IPPool) { p.DeletionTimestamp = &now }), true},
		{"another kind", "x", "y", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := datapathInputChanged(tt.old, tt.cur); got != tt.want {
				t.Errorf("datapathInputChanged = %v, want %v", got, tt.want)
			}
		})
	}
}
