// Package config holds the internal (unversioned) types of ecloud's scheduler plugin arguments,
// registered into the kube-scheduler's kubescheduler.config.k8s.io scheme so that a
// KubeSchedulerConfiguration's pluginConfig decodes them as typed, defaulted objects. The
// versioned form users write is in ./v1, validation in ./validation, and ./scheme registers both
// into the scheduler's scheme (import it for its side effect).
//
// Another plugin adds its args here the same way: an internal type in types.go, a v1 type with
// pointer fields, SetDefaults_<Kind> and conversions in v1/, a Validate<Kind> in validation/, and
// both types listed in addKnownTypes of register.go and v1/register.go.
package config
