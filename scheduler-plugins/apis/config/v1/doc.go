// Package v1 is the versioned form (kubescheduler.config.k8s.io/v1) of ecloud's scheduler plugin
// args: pointer fields so that defaulting can tell "unset" from "zero", SetDefaults_<Kind>, and
// hand-written conversions to the internal types in the parent package.
package v1
