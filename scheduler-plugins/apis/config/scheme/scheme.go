// Package scheme registers ecloud's scheduler plugin args into the kube-scheduler's own config
// scheme (kubescheduler.config.k8s.io), so a KubeSchedulerConfiguration's pluginConfig decodes
// them into typed, defaulted v1 objects and converts them to the internal types the plugins
// receive. Import it for its side effect wherever a plugin is registered.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	kubeschedulerscheme "k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	configv1 "github.com/ecloud-io/ecloud/scheduler-plugins/apis/config/v1"
)

// Scheme is the kube-scheduler's config scheme, with ecloud's args added.
var Scheme = kubeschedulerscheme.Scheme

func init() { AddToScheme(Scheme) }

// AddToScheme adds the internal and v1 args types, defaults and conversions to a scheme.
func AddToScheme(scheme *runtime.Scheme) {
	utilruntime.Must(config.AddToScheme(scheme))
	utilruntime.Must(configv1.AddToScheme(scheme))
}
