// Package crds embeds the generated CustomResourceDefinitions of network.ecloud.io so that tests
// and tools install exactly the YAML that users apply.
package crds

import "embed"

// FS holds every generated CRD manifest (*.yaml) of this folder.
//
//go:embed network.ecloud.io_*.yaml
var FS embed.FS
