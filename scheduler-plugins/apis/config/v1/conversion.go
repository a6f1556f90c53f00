package v1

import (
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
)

// RegisterConversions adds the conversions between this version and the internal types.
func RegisterConversions(s *runtime.Scheme) error {
	if err := s.AddConversionFunc((*DualDatacenterArgs)(nil), (*config.DualDatacenterArgs)(nil), func(a, b any, scope conversion.Scope) error {
		return Convert_v1_DualDatacenterArgs_To_config_DualDatacenterArgs(a.(*DualDatacenterArgs), b.(*config.DualDatacenterArgs), scope)
	}); err != nil {
		return err
	}
	return s.AddConversionFunc((*config.DualDatacenterArgs)(nil), (*DualDatacenterArgs)(nil), func(a, b any, scope conversion.Scope) error {
		return Convert_config_DualDatacenterArgs_To_v1_DualDatacenterArgs(a.(*config.DualDatacenterArgs), b.(*DualDatacenterArgs), scope)
	})
}

// Convert_v1_DualDatacenterArgs_To_config_DualDatacenterArgs converts v1 args (defaulted or not)
// to the internal type; unset pointers become zero values, which validation rejects.
func Convert_v1_DualDatacenterArgs_To_config_DualDatacenterArgs(in *DualDatacenterArgs, out *config.DualDatacenterArgs, _ conversion.Scope) error { //nolint:revive,stylecheck
	out.TopologyKey = deref(in.TopologyKey)
	out.Datacenters = append([]string(nil), in.Datacenters...)
	out.MaxSkew = deref(in.MaxSkew)
	out.OutagePolicy = config.OutagePolicy(deref(in.OutagePolicy))
	return nil
}

// Convert_config_DualDatacenterArgs_To_v1_DualDatacenterArgs converts internal args to v1.
func Convert_config_DualDatacenterArgs_To_v1_DualDatacenterArgs(in *config.DualDatacenterArgs, out *DualDatacenterArgs, _ conversion.Scope) error { //nolint:revive,stylecheck
	key, skew, policy := in.TopologyKey, in.MaxSkew, string(in.OutagePolicy)
	out.TopologyKey, out.MaxSkew, out.OutagePolicy = &key, &skew, &policy
	out.Datacenters = append([]string(nil), in.Datacenters...)
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
