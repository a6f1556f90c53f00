package config

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
)

// SchemeGroupVersion is the internal version of kubescheduler.config.k8s.io that the args are
// converted to before a plugin's constructor sees them.
var SchemeGroupVersion = schema.GroupVersion{Group: schedconfig.GroupName, Version: runtime.APIVersionInternal}

var (
	// localSchemeBuilder is the in-tree scheduler's builder, so every scheme the scheduler builds
	// after this package's init (the plugin-args conversion scheme) knows ecloud's args.
	localSchemeBuilder = &schedconfig.SchemeBuilder
	// AddToScheme registers the internal args types into a scheme.
	AddToScheme = localSchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&DualDatacenterArgs{},
	)
	return nil
}

func init() {
	localSchemeBuilder.Register(addKnownTypes)
}
