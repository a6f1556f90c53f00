package main

import (
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/util/validation/field"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	kubeschedulerscheme "k8s.io/kubernetes/pkg/scheduler/apis/config/scheme"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
	_ "github.com/ecloud-io/ecloud/scheduler-plugins/apis/config/scheme" // decodes ecloud's plugin args
	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config/validation"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dualdatacenter"
)

// argsFromSchedulerConfig reads the DualDatacenter args (decoded and defaulted as the scheduler
// does) of the profile schedulerName from the KubeSchedulerConfiguration file at path: the
// controller then enforces exactly the rule the scheduler schedules by.
func argsFromSchedulerConfig(path, schedulerName string) (config.DualDatacenterArgs, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return config.DualDatacenterArgs{}, fmt.Errorf("reading the scheduler configuration: %w", err)
	}
	obj, _, err := kubeschedulerscheme.Codecs.UniversalDecoder().Decode(data, nil, nil)
	if err != nil {
		return config.DualDatacenterArgs{}, fmt.Errorf("decoding the scheduler configuration %s: %w", path, err)
	}
	cfg, ok := obj.(*schedconfig.KubeSchedulerConfiguration)
	if !ok {
		return config.DualDatacenterArgs{}, fmt.Errorf("%s holds a %T, not a KubeSchedulerConfiguration", path, obj)
	}
	var names []string
	for i, p := range cfg.Profiles {
		names = append(names, p.SchedulerName)
		if p.SchedulerName != schedulerName {
			continue
		}
		for j, pc := range p.PluginConfig {
			if pc.Name != dualdatacenter.Name {
				continue
			}
			args, ok := pc.Args.(*config.DualDatacenterArgs)
			if !ok {
				return config.DualDatacenterArgs{}, fmt.Errorf("%s: profile %s: %s args decode to %T", path, schedulerName, pc.Name, pc.Args)
			}
			// The scheduler fills in a defaulted pluginConfig for an enabled plugin without one.
			if err := validation.ValidateDualDatacenterArgs(field.NewPath("profiles").Index(i).Child("pluginConfig").Index(j).Child("args"), args); err != nil {
				return config.DualDatacenterArgs{}, fmt.Errorf("%s: %w", path, err)
			}
			return *args, nil
		}
		return config.DualDatacenterArgs{}, fmt.Errorf("%s: profile %s has no pluginConfig for %s", path, schedulerName, dualdatacenter.Name)
	}
	return config.DualDatacenterArgs{}, fmt.Errorf("%s: no profile %q (profiles: %v): set --scheduler-name", path, schedulerName, names)
}
