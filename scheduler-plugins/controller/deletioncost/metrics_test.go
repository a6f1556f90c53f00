package deletioncost

import (
	"testing"

	"k8s.io/component-base/metrics/testutil"

	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

// TestGroupSeries: ecloud_dualdatacenter_group_pods has one series per group and datacenter (0 for
// an empty datacenter), and a group that is gone from a namespace loses its series.
func TestGroupSeries(t *testing.T) {
	registerMetrics()
	dcs := []string{"dc-a", "dc-b"}
	state := func(kind dcrule.Kind, name string, perDC map[string]int) *groupState {
		gs := &groupState{group: &dcrule.Group{Kind: kind, Namespace: "shop", Name: name}, counts: dcrule.NewCounts()}
		for dc, n := range perDC {
			gs.counts.Add("r1", dc, n)
		}
		return gs
	}
	var s groupSeries
	s.set("shop", map[string]*groupState{
		"web": state(dcrule.KindDeployment, "web", map[string]int{"dc-a": 2, "dc-b": 1}),
		"db":  state(dcrule.KindStatefulSet, "db", map[string]int{"dc-a": 2}),
	}, dcs)
	for _, tc := range []struct {
		kind, group, dc string
		want            float64
	}{
		{"deployment", "web", "dc-a", 2}, {"deployment", "web", "dc-b", 1},
		{"statefulset", "db", "dc-a", 2}, {"statefulset", "db", "dc-b", 0},
	} {
		got, err := testutil.GetGaugeMetricValue(groupPods.WithLabelValues("shop", tc.kind, tc.group, tc.dc))
		if err != nil || got != tc.want {
			t.Errorf("%s %s in %s: %v (%v), want %v", tc.kind, tc.group, tc.dc, got, err, tc.want)
		}
	}
	s.set("shop", map[string]*groupState{"web": state(dcrule.KindDeployment, "web", map[string]int{"dc-a": 1, "dc-b": 1})}, dcs)
	if groupPods.DeleteLabelValues("shop", "statefulset", "db", "dc-a") {
		t.Error("the series of a group that is gone stayed")
	}
	if !groupPods.DeleteLabelValues("shop", "deployment", "web", "dc-b") {
		t.Error("the series of a group still there was removed")
	}
}
