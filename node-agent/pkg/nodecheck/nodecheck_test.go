package nodecheck

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/testutil"

	"github.com/ecloud-io/ecloud/node-agent/pkg/agentmetrics"
)

func TestBroken(t *testing.T) {
	for _, tc := range []struct {
		facts Facts
		want  bool
	}{
		{Facts{FSType: XFSMagic, DType: false}, true},
		{Facts{FSType: XFSMagic, DType: true}, false},
		{Facts{FSType: 0xEF53, DType: false}, false}, // ext4: not this check
		{Facts{FSType: 0x01021994, DType: true}, false},
	} {
		if got := tc.facts.Broken(); got != tc.want {
			t.Errorf("%+v.Broken() = %v, want %v", tc.facts, got, tc.want)
		}
	}
}

// TestProbe runs the real probe on a temp dir (this host's filesystems all have d_type).
func TestProbe(t *testing.T) {
	f, err := Probe(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !f.DType || f.FSType == 0 {
		t.Errorf("Probe = %+v, want d_type support and a filesystem type", f)
	}
	if _, err := Probe("/nonexistent-runtime-root"); err == nil {
		t.Error("Probe of a missing root succeeded")
	}
}

// TestReport: a broken root gives a Warning Event on the Node and sets the metric.
func TestReport(t *testing.T) {
	agentmetrics.Register()
	var mu sync.Mutex
	var events []*v1.Event
	bc := record.NewBroadcaster()
	defer bc.Shutdown()
	bc.StartEventWatcher(func(e *v1.Event) { mu.Lock(); events = append(events, e); mu.Unlock() })
	rec := bc.NewRecorder(scheme.Scheme, v1.EventSource{Component: "ecloud-node-agent"})

	Report(context.Background(), Facts{FSType: XFSMagic}, "/var/lib/containerd", "node-1", rec)
	if v, _ := testutil.GetGaugeMetricValue(agentmetrics.NodeCheckXFSNoFtype); v != 1 {
		t.Errorf("metric = %v, want 1", v)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0].InvolvedObject.Kind != "Node" || events[0].InvolvedObject.Name != "node-1" ||
		events[0].Type != v1.EventTypeWarning || events[0].Reason != ReasonXFSNoFtype || !strings.Contains(events[0].Message, "ftype=1") {
		t.Fatalf("events = %+v", events)
	}
	Report(context.Background(), Facts{FSType: XFSMagic, DType: true}, "/var/lib/containerd", "node-1", rec)
	if v, _ := testutil.GetGaugeMetricValue(agentmetrics.NodeCheckXFSNoFtype); v != 0 {
		t.Errorf("metric after a healthy check = %v, want 0", v)
	}
}
