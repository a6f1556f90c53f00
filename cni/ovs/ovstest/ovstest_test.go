package ovstest

import (
	"strings"
	"testing"

	"github.com/ecloud-io/ecloud/test/prereq"
)

// TestStartTWithoutOVS runs StartT on a PATH without the Open vSwitch programs: under CI=true the
// test fails naming Open vSwitch and the missing program; elsewhere it skips with that reason.
func TestStartTWithoutOVS(t *testing.T) {
	for _, tc := range []struct {
		ci       string
		wantFail bool
	}{{"true", true}, {"", false}} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("PATH", t.TempDir())
			t.Setenv("CI", tc.ci)
			r := prereq.Run(t, func(tb testing.TB) {
				StartT(tb, "")
				tb.Fatal("StartT returned without Open vSwitch on PATH")
			})
			if r.DidFail != tc.wantFail || r.DidSkip == tc.wantFail {
				t.Fatalf("failed %v skipped %v (%q), want failed %v", r.DidFail, r.DidSkip, r.Msg, tc.wantFail)
			}
			for _, want := range []string{"Open vSwitch", "ovsdb-tool not on PATH"} {
				if !strings.Contains(r.Msg, want) {
					t.Errorf("message %q does not name %q", r.Msg, want)
				}
			}
		})
	}
}
