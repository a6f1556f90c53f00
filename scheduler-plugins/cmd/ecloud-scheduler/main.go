// Command ecloud-scheduler is kube-scheduler with ecloud's out-of-tree plugins registered. It takes
// the scheduler's own flags; enable the plugins for a profile in the KubeSchedulerConfiguration
// (see manifests/scheduler/scheduler-config.yaml). Bad plugin args make it exit with field errors.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register" // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	os.Exit(cli.Run(app.NewSchedulerCommand(Plugins()...)))
}
