package v1

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	schedconfigv1 "k8s.io/kube-scheduler/config/v1"
)

// SchemeGroupVersion is kubescheduler.config.k8s.io/v1, the version users write.
var SchemeGroupVersion = schema.GroupVersion{Group: schedconfigv1.GroupName, Version: "v1"}

var (
	// localSchemeBuilder is the kube-scheduler's own v1 builder, so that schemes the scheduler
	// builds later include ecloud's args.
	localSchemeBuilder = &schedconfigv1.SchemeBuilder
	// AddToScheme registers the v1 args types, their defaults and conversions into a scheme.
	AddToScheme = localSchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion,
		&DualDatacenterArgs{},
	)
	return nil
}

func init() {
	localSchemeBuilder.Register(addKnownTypes, RegisterDefaults, RegisterConversions)
}
