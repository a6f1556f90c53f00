package v1

import (
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// Defaults of DualDatacenterArgs.
const (
	DefaultTopologyKey  = v1alpha1.DefaultDatacenterLabel
	DefaultMaxSkew      = int32(1)
	DefaultOutagePolicy = "Hold"
)

// RegisterDefaults adds the defaulting functions of this package to a scheme.
func RegisterDefaults(scheme *runtime.Scheme) error {
	scheme.AddTypeDefaultingFunc(&DualDatacenterArgs{}, func(obj any) { SetDefaults_DualDatacenterArgs(obj.(*DualDatacenterArgs)) })
	return nil
}

// SetDefaults_DualDatacenterArgs fills unset fields. Datacenters has no default (see the type).
func SetDefaults_DualDatacenterArgs(obj *DualDatacenterArgs) { //nolint:revive,stylecheck // scheme naming convention
	if obj.TopologyKey == nil {
		k := DefaultTopologyKey
		obj.TopologyKey = &k
	}
	if obj.MaxSkew == nil {
		s := DefaultMaxSkew
		obj.MaxSkew = &s
	}
	if obj.OutagePolicy == nil {
		p := DefaultOutagePolicy
		obj.OutagePolicy = &p
	}
}
