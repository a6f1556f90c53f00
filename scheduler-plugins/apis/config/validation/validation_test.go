package validation

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
)

func TestValidateDualDatacenterArgs(t *testing.T) {
	valid := func() *config.DualDatacenterArgs {
		return &config.DualDatacenterArgs{TopologyKey: "topology.kubernetes.io/zone", Datacenters: []string{"dc-a", "dc-b"}, MaxSkew: 1, OutagePolicy: config.OutageHold}
	}
	cases := []struct {
		name   string
		mutate func(*config.DualDatacenterArgs)
		want   []string // substrings of the error; none = valid
	}{
		{"valid", func(*config.DualDatacenterArgs) {}, nil},
		{"valid three datacenters, Degrade", func(a *config.DualDatacenterArgs) {
			a.Datacenters = append(a.Datacenters, "dc-c")
			a.OutagePolicy = config.OutageDegrade
		}, nil},
		{"maxSkew 0", func(a *config.DualDatacenterArgs) { a.MaxSkew = 0 }, []string{"maxSkew: Invalid value: 0: must be at least 1"}},
		{"one datacenter", func(a *config.DualDatacenterArgs) { a.Datacenters = []string{"dc-a"} }, []string{"datacenters: Invalid value", "at least two datacenters"}},
		{"no datacenters", func(a *config.DualDatacenterArgs) { a.Datacenters = nil }, []string{"datacenters: Required value"}},
		{"empty topologyKey", func(a *config.DualDatacenterArgs) { a.TopologyKey = "" }, []string{"topologyKey: Required value"}},
		{"bad topologyKey", func(a *config.DualDatacenterArgs) { a.TopologyKey = "a b" }, []string{"topologyKey: Invalid value"}},
		{"duplicate datacenter", func(a *config.DualDatacenterArgs) { a.Datacenters = []string{"dc-a", "dc-a"} }, []string{"datacenters[1]: Duplicate value"}},
		{"empty datacenter", func(a *config.DualDatacenterArgs) { a.Datacenters = []string{"dc-a", ""} }, []string{"datacenters[1]: Required value"}},
		{"datacenter not a label value", func(a *config.DualDatacenterArgs) { a.Datacenters = []string{"dc-a", "dc b"} }, []string{"datacenters[1]: Invalid value"}},
		{"unknown outage policy", func(a *config.DualDatacenterArgs) { a.OutagePolicy = "Ignore" }, []string{`outagePolicy: Unsupported value: "Ignore"`}},
		{"several errors at once", func(a *config.DualDatacenterArgs) { a.MaxSkew, a.TopologyKey = -1, "" }, []string{"maxSkew", "topologyKey"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := valid()
			tc.mutate(args)
			err := ValidateDualDatacenterArgs(field.NewPath(""), args)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error containing %q, got nil", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
