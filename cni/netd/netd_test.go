package netd

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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
