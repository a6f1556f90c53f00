package main

import (
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/ecloud-io/ecloud/scheduler-plugins/dualdatacenter"
	"github.com/ecloud-io/ecloud/scheduler-plugins/ippool"
)

// Plugins are the out-of-tree plugins this scheduler registers. Add a plugin with one more
// app.WithPlugin(<pkg>.Name, <pkg>.New); its args type goes into scheduler-plugins/apis/config.
func Plugins() []app.Option {
	return []app.Option{
		app.WithPlugin(dualdatacenter.Name, dualdatacenter.New),
		app.WithPlugin(ippool.Name, ippool.New),
	}
}
