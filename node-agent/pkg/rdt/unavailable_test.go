package rdt_test

import (
	"os"
	"strings"
	"testing"

	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2/ktesting"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agentmetrics"
	"github.com/ecloud-io/ecloud/node-agent/pkg/cgroups"
	"github.com/ecloud-io/ecloud/node-agent/pkg/collector"
	"github.com/ecloud-io/ecloud/node-agent/pkg/config"
	"github.com/ecloud-io/ecloud/node-agent/pkg/rdt"
)

// TestNoResctrl: on a host without resctrl (this one, outside the test namespace) Start succeeds,
// reports unavailability through the metric, and the collector emits nothing.
func TestNoResctrl(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("the fake resctrl is mounted here")
	}
	if b, err := os.ReadFile("/proc/mounts"); err != nil || strings.Contains(string(b), " resctrl ") {
		t.Skip("this host has resctrl mounted")
	}
	agentmetrics.Register()
	agentmetrics.RDTAvailable.Set(1)
	_, ctx := ktesting.NewTestContext(t)
	cfg := config.Default().RDT
	cfg.Enabled = true
	m := rdt.New(cfg, cgroups.Hierarchy{Root: t.TempDir(), Version: cgroups.V2}, pods{}, nil)
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Start without resctrl = %v, want nil (agent keeps running)", err)
	}
	if m.Available() {
		t.Fatal("RDT reported available without resctrl")
	}
	if v, _ := testutil.GetGaugeMetricValue(agentmetrics.RDTAvailable); v != 0 {
		t.Errorf("node_agent_rdt_available = %v, want 0", v)
	}
	s := &sinkLog{}
	if err := m.Collect(nil, &collector.Target{Pod: "p", PodUID: "u"}, s); err != nil || len(s.values) != 0 {
		t.Errorf("Collect = %v, %v; want nothing", s.values, err)
	}
	m.Run(ctx) // returns at once when unavailable
}
