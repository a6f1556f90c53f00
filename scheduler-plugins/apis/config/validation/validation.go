// Package validation checks ecloud's scheduler plugin args, reporting every problem with its
// field path.
package validation

import (
	"fmt"

	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ecloud-io/ecloud/scheduler-plugins/apis/config"
)

// ValidateDualDatacenterArgs returns nil when args are usable, else an aggregate of field errors
// (paths relative to the args: topologyKey, datacenters[i], maxSkew, outagePolicy).
func ValidateDualDatacenterArgs(path *field.Path, args *config.DualDatacenterArgs) error {
	var errs field.ErrorList
	if args.TopologyKey == "" {
		errs = append(errs, field.Required(path.Child("topologyKey"), "the node label naming a node's datacenter"))
	} else {
		errs = append(errs, metav1validation.ValidateLabelName(args.TopologyKey, path.Child("topologyKey"))...)
	}
	dcs := path.Child("datacenters")
	switch len(args.Datacenters) {
	case 0:
		errs = append(errs, field.Required(dcs, "list the datacenters (values of topologyKey) to spread over, at least two"))
	case 1:
		errs = append(errs, field.Invalid(dcs, args.Datacenters, "at least two datacenters are needed"))
	}
	seen := sets.New[string]()
	for i, dc := range args.Datacenters {
		p := dcs.Index(i)
		switch {
		case dc == "":
			errs = append(errs, field.Required(p, "datacenter name"))
		case seen.Has(dc):
			errs = append(errs, field.Duplicate(p, dc))
		default:
			for _, msg := range validation.IsValidLabelValue(dc) {
				errs = append(errs, field.Invalid(p, dc, msg))
			}
		}
		seen.Insert(dc)
	}
	if args.MaxSkew < 1 {
		errs = append(errs, field.Invalid(path.Child("maxSkew"), args.MaxSkew, "must be at least 1"))
	}
	switch args.OutagePolicy {
	case config.OutageHold, config.OutageDegrade:
	default:
		errs = append(errs, field.NotSupported(path.Child("outagePolicy"), args.OutagePolicy,
			[]string{string(config.OutageHold), string(config.OutageDegrade)}))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid DualDatacenter args: %w", errs.ToAggregate())
}
