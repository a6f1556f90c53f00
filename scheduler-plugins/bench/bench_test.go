//go:build schedulerperf

// Package bench runs the upstream scheduler_perf harness (k8s.io/kubernetes/test/integration/
// scheduler_perf) with ecloud's plugins in its out-of-tree registry, comparing the stock
// PodTopologySpread rule with DualDatacenter, and DualDatacenter with DualDatacenter + IPPool, on two
// datacenters. It needs an etcd binary on PATH
// (scheduler_perf starts one per workload); `make bench-scheduler` builds it from this module.
// The build tag keeps this heavy test binary out of `go test ./...`.
package bench

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	_ "k8s.io/component-base/logs/json/register"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	perf "k8s.io/kubernetes/test/integration/scheduler_perf"
	"k8s.io/kubernetes/test/utils/client-go/ktesting"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/manifests/crds"
	"github.com/ecloud-io/ecloud/scheduler-plugins/dualdatacenter"
	"github.com/ecloud-io/ecloud/scheduler-plugins/ippool"
)

func TestMain(m *testing.M) {
	if err := perf.InitTests(); err != nil {
		fmt.Fprintf(os.Stderr, "%v\n", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// outOfTree is the registry the benchmark's schedulers get: the same plugins as ecloud-scheduler.
func outOfTree() frameworkruntime.Registry {
	return frameworkruntime.Registry{
		dualdatacenter.Name: dualdatacenter.New,
		ippool.Name:         ippool.New,
	}
}

func BenchmarkPerfScheduling(b *testing.B) {
	perf.RunBenchmarkPerfScheduling(b, "performance-config.yaml", "ecloud", outOfTree(), perf.WithPrepareFn(installPools))
}

// installPools installs the network.ecloud.io CRDs and one default pool per datacenter, large
// enough for every measured pod, into the workload's apiserver. (The IPPool plugin's informers,
// started with the scheduler, retry until the CRDs exist; the other profiles ignore them.)
func installPools(tCtx ktesting.TContext) error {
	cfg := tCtx.RESTConfig()
	ext, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	objs, err := crds.Objects()
	if err != nil {
		return err
	}
	for _, crd := range objs {
		if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(tCtx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create CRD %s: %w", crd.Name, err)
		}
	}
	cs, err := client.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for i, dc := range []string{"dc-a", "dc-b"} {
		pool := &v1alpha1.IPPool{
			ObjectMeta: metav1.ObjectMeta{Name: "bench-" + dc},
			Spec: v1alpha1.IPPoolSpec{
				CIDR:         fmt.Sprintf("10.%d.0.0/16", 100+i),
				Gateway:      fmt.Sprintf("10.%d.0.1", 100+i),
				NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.DefaultDatacenterLabel: dc}},
				Default:      true,
			},
		}
		// The CRD takes a moment to be served.
		err := wait.PollUntilContextTimeout(tCtx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := cs.IPPools().Create(ctx, pool, metav1.CreateOptions{})
			return err == nil || apierrors.IsAlreadyExists(err), nil
		})
		if err != nil {
			return fmt.Errorf("create pool %s: %w", pool.Name, err)
		}
	}
	return nil
}
