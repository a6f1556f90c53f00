// Package crds embeds the generated CustomResourceDefinitions of network.ecloud.io so that tests
// and tools install exactly the YAML that users apply.
package crds

import (
	"embed"
	"fmt"
	"io/fs"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// FS holds every generated CRD manifest (*.yaml) of this folder.
//
//go:embed network.ecloud.io_*.yaml
var FS embed.FS

// Objects decodes every embedded CRD.
func Objects() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := fs.Glob(FS, "*.yaml")
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRDs embedded from manifests/crds")
	}
	out := make([]*apiextensionsv1.CustomResourceDefinition, 0, len(files))
	for _, f := range files {
		raw, err := FS.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(raw, crd); err != nil {
			return nil, fmt.Errorf("decode %s: %w", f, err)
		}
		out = append(out, crd)
	}
	return out, nil
}
