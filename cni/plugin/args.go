package plugin

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
)

// Kubernetes keys of CNI_ARGS.
const (
	ArgPodNamespace = "K8S_POD_NAMESPACE"
	ArgPodName      = "K8S_POD_NAME"
	ArgPodUID       = "K8S_POD_UID"
	ArgInfraID      = "K8S_POD_INFRA_CONTAINER_ID"
	ArgIgnore       = "IgnoreUnknown"
)

// maxArgs bounds CNI_ARGS so a hostile value cannot make the plugin allocate without limit.
const maxArgs = 4096

// ParseArgs reads the pod from CNI_ARGS ("K=V;K=V", keys in any order). Unknown keys are
// ignored (runtimes add their own); the pod keys must be present and valid. Errors carry
// CodeInvalidEnv and name the key to fix.
func ParseArgs(s string) (nodeapi.PodRef, error) {
	if len(s) > maxArgs {
		return nodeapi.PodRef{}, nodeapi.Errorf(nodeapi.CodeInvalidEnv, "CNI_ARGS is %d bytes, more than %d", len(s), maxArgs)
	}
	kv := map[string]string{}
	for _, pair := range strings.Split(s, ";") {
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return nodeapi.PodRef{}, nodeapi.Errorf(nodeapi.CodeInvalidEnv, "CNI_ARGS: %q is not KEY=VALUE", pair)
		}
		if _, dup := kv[k]; dup {
			return nodeapi.PodRef{}, nodeapi.Errorf(nodeapi.CodeInvalidEnv, "CNI_ARGS: %s is given twice", k)
		}
		kv[k] = v
	}
	pod := nodeapi.PodRef{Namespace: kv[ArgPodNamespace], Name: kv[ArgPodName], UID: kv[ArgPodUID]}
	var errs field.ErrorList
	check := func(key, val string, msgs []string) {
		p := field.NewPath("CNI_ARGS").Key(key)
		if val == "" {
			errs = append(errs, field.Required(p, "the runtime must pass the pod (kubelet/CRI does)"))
			return
		}
		for _, m := range msgs {
			errs = append(errs, field.Invalid(p, val, m))
		}
	}
	check(ArgPodNamespace, pod.Namespace, validation.IsDNS1123Label(pod.Namespace))
	check(ArgPodName, pod.Name, validation.IsDNS1123Subdomain(pod.Name))
	if pod.UID != "" && (len(pod.UID) > 128 || strings.ContainsAny(pod.UID, " \t\n/")) {
		errs = append(errs, field.Invalid(field.NewPath("CNI_ARGS").Key(ArgPodUID), pod.UID, "must be a UID"))
	}
	if len(errs) > 0 {
		return nodeapi.PodRef{}, &nodeapi.Error{Code: nodeapi.CodeInvalidEnv, Msg: "CNI_ARGS does not name a valid pod", Details: errs.ToAggregate().Error()}
	}
	return pod, nil
}
