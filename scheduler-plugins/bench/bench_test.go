package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
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

// BenchmarkPerfScheduling runs performance-config.yaml: one test case per profile, same nodes
// and pod count. `make bench-scheduler` turns the throughputs into the RESULT ratios.
func BenchmarkPerfScheduling(b *testing.B) {
	registry := frameworkruntime.Registry{
		dualdatacenter.Name: dualdatacenter.New,
		ippool.Name:         ippool.New,
	}
	perf.RunBenchmarkPerfScheduling(b, "performance-config.yaml", "ecloud", registry, perf.WithPrepareFn(installPools))
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
	files, err := crds.FS.ReadDir(".")
	if err != nil {
		return err
	}
	for _, f := range files {
		if filepath.Ext(f.Name()) != ".yaml" {
			continue
		}
		raw, err := crds.FS.ReadFile(f.Name())
		if err != nil {
			return err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(raw, crd); err != nil {
			return fmt.Errorf("decode %s: %w", f.Name(), err)
		}
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
		// The CRD may take a moment to be served.
		var err error
		for try := 0; try < 100; try++ {
			if _, err = cs.IPPools().Create(tCtx, pool, metav1.CreateOptions{}); err == nil || apierrors.IsAlreadyExists(err) {
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("create pool %s: %w", pool.Name, err)
		}
	}
	return nil
}
