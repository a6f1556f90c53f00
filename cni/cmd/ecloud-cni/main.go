// Command ecloud-cni is the ecloud CNI plugin (spec 1.1: ADD, DEL, CHECK, STATUS, GC,
// VERSION). The container runtime executes it; it needs the node daemon netd running.
package main

import (
	"github.com/containernetworking/cni/pkg/skel"

	"github.com/ecloud-io/ecloud/cni/plugin"
)

func main() {
	skel.PluginMainFuncs(plugin.Funcs(), plugin.Versions, plugin.About)
}
