package netd

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

func TestCandidates(t *testing.T) {
	tests := []struct {
		name string
		spec v1alpha1.IPPoolSpec
		want []string
	}{
		{"whole /29 without network, gateway, broadcast", v1alpha1.IPPoolSpec{CIDR: "10.0.0.0/29", Gateway: "10.0.0.1"},
			[]string{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}},
		{"include ranges and excludes", v1alpha1.IPPoolSpec{CIDR: "10.0.0.0/24", Gateway: "10.0.0.1",
			IncludeRanges: []v1alpha1.IPRange{{Start: "10.0.0.10", End: "10.0.0.13"}, {Start: "10.0.0.1", End: "10.0.0.2"}}, ExcludeIPs: []string{"10.0.0.11"}},
			[]string{"10.0.0.10", "10.0.0.12", "10.0.0.13", "10.0.0.2"}},
		{"bad cidr", v1alpha1.IPPoolSpec{CIDR: "x"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for ip := range candidates(&v1alpha1.IPPool{Spec: tt.spec}) {
				got = append(got, ip.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("candidates = %v, want %v", got, tt.want)
			}
		})
	}
	if got := lastAddr(netip.MustParsePrefix("10.1.2.0/23")); got.String() != "10.1.3.255" {
		t.Errorf("lastAddr = %s", got)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{NodeName: "n1"}
	ok.Default()
	if errs := ok.Validate(); len(errs) != 0 {
		t.Fatalf("defaulted config: %v", errs)
	}
	bad := ok
	bad.NodeName, bad.TunnelType, bad.MTU, bad.Bridge, bad.CNIBinDir = "", "gre", 100, "a-very-long-bridge-name", "/opt/cni/bin"
	msg := bad.Validate().ToAggregate().Error()
	for _, f := range []string{"netd.nodeName", "netd.tunnelType", "netd.mtu", "netd.bridge", "netd.pluginBinary"} {
		if !strings.Contains(msg, f) {
			t.Errorf("errors %q do not name %s", msg, f)
		}
	}
}

func TestConfList(t *testing.T) {
	b, err := ConfList("1.1.0", "ecloud", "/run/ecloud/netd.sock")
	if err != nil {
		t.Fatal(err)
	}
	var cl struct {
		CNIVersion string           `json:"cniVersion"`
		Name       string           `json:"name"`
		Plugins    []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &cl); err != nil || cl.CNIVersion != "1.1.0" || cl.Name != "ecloud" || len(cl.Plugins) != 1 || cl.Plugins[0]["type"] != "ecloud-cni" || cl.Plugins[0]["socket"] != "/run/ecloud/netd.sock" {
		t.Errorf("conflist %s, %v", b, err)
	}
}

func TestSyncerCoalesces(t *testing.T) {
	var runs atomic.Int32
	release := make(chan struct{})
	s := newSyncer(func(context.Context) error {
		runs.Add(1)
		<-release
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.run(ctx)
	first := s.request()
	for runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// Twenty requests while the first run is busy are served by one more run.
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.sync(ctx) }()
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if err := s.wait(ctx, first); err != nil {
		t.Fatal(err)
	}
	if n := runs.Load(); n != 2 {
		t.Errorf("%d runs for 21 requests, want 2", n)
	}
	s2 := newSyncer(func(context.Context) error { return errors.New("boom") })
	go s2.run(ctx)
	if err := s2.sync(ctx); err == nil || err.Error() != "boom" {
		t.Errorf("sync error = %v", err)
	}
}

func TestTunnelPortName(t *testing.T) {
	a, b := tunnelPortName("dc-a-node-0"), tunnelPortName("dc-a-node-1")
	if a == b || len(a) != 11 || !strings.HasPrefix(a, "ect") || a != tunnelPortName("dc-a-node-0") {
		t.Errorf("tunnel port names %q %q", a, b)
	}
}
