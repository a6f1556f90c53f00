package prereq

import (
	"strings"
	"testing"
)

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		ci                 string
		wantFail, wantSkip bool
	}{
		{ci: "true", wantFail: true},
		{ci: "1", wantFail: true},
		{ci: "", wantSkip: true},
		{ci: "false", wantSkip: true},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := Run(t, func(tb testing.TB) { Missing(tb, "needs Open vSwitch: ovs-vsctl not on PATH") })
			if r.DidFail != tc.wantFail || r.DidSkip != tc.wantSkip {
				t.Fatalf("failed %v skipped %v, want failed %v skipped %v", r.DidFail, r.DidSkip, tc.wantFail, tc.wantSkip)
			}
			if !strings.Contains(r.Msg, "ovs-vsctl not on PATH") {
				t.Errorf("message %q does not name what is missing", r.Msg)
			}
		})
	}
}

func TestNotApplicableSkipsInCI(t *testing.T) {
	t.Setenv("CI", "true")
	r := Run(t, func(tb testing.TB) { NotApplicable(tb, "the host has cgroup v1") })
	if !r.DidSkip || r.DidFail || !strings.Contains(r.Msg, "cgroup v1") {
		t.Fatalf("failed %v skipped %v message %q, want a skip naming the reason", r.DidFail, r.DidSkip, r.Msg)
	}
}
