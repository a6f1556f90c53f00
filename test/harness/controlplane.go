package harness

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	kubeapiservertesting "k8s.io/kubernetes/cmd/kube-apiserver/app/testing"

	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/manifests/crds"
)

// ControlPlane is a running etcd + kube-apiserver with ecloud's CRDs installed, and clients for it.
type ControlPlane struct {
	// Config is an admin (system:masters) client config for the apiserver.
	Config *rest.Config
	// Kube is the typed Kubernetes client.
	Kube kubernetes.Interface
	// Dynamic is the dynamic client.
	Dynamic dynamic.Interface
	// Ecloud is the typed client for network.ecloud.io.
	Ecloud *client.Clientset
	// Kubeconfig is the path of a kubeconfig file for this apiserver (for binaries and kubectl).
	Kubeconfig string
	// Ctx is cancelled when the test ends; every goroutine the harness starts stops with it.
	Ctx context.Context
	// EtcdURL and StoragePrefix say where the apiserver keeps its objects (benchmarks load bulk
	// data straight into etcd: <StoragePrefix>/<group>/<resource>/<name> for custom resources).
	EtcdURL, StoragePrefix string
}

type options struct {
	apiserverFlags []string
	skipCRDs       bool
}

// Option changes how Start brings up the control plane.
type Option func(*options)

// WithAPIServerFlags passes extra kube-apiserver flags.
func WithAPIServerFlags(flags ...string) Option {
	return func(o *options) { o.apiserverFlags = append(o.apiserverFlags, flags...) }
}

// WithoutCRDs skips installing ecloud's CRDs.
func WithoutCRDs() Option { return func(o *options) { o.skipCRDs = true } }

// Start brings up a kube-apiserver (on the shared etcd of Main, under a storage prefix of its own,
// so several control planes can run in one test binary) and installs ecloud's CRDs. Everything is
// torn down when the test ends.
func Start(tb testing.TB, opts ...Option) *ControlPlane {
	tb.Helper()
	o, ctx, storage, flags := prepare(tb, opts)
	server := kubeapiservertesting.StartTestServerOrDie(tb, &kubeapiservertesting.TestServerInstanceOptions{
		DisableInvariantChecks: true,
	}, flags, storage)
	tb.Cleanup(server.TearDownFn)

	cfg := rest.CopyConfig(server.ClientConfig)
	cfg.QPS, cfg.Burst = 1000, 2000
	cp := newControlPlane(tb, ctx, cfg, o)
	cp.EtcdURL, cp.StoragePrefix = storage.Transport.ServerList[0], storage.Prefix
	return cp
}

// prepare parses the options and makes the test's context, a storage config under a prefix of
// its own and the apiserver flags.
func prepare(tb testing.TB, opts []Option) (options, context.Context, *storagebackend.Config, []string) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)

	storage := storagebackend.NewDefaultConfig("/"+string(uuid.NewUUID())+"/registry", nil)
	storage.Transport.ServerList = []string{etcdURL(tb)}
	flags := append([]string{
		// No controller-manager runs: ServiceAccount admission would reject every pod (no
		// "default" ServiceAccount appears) and TaintNodesByCondition would leave every Node
		// tainted not-ready forever.
		"--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
	}, o.apiserverFlags...)
	return o, ctx, storage, flags
}

// newControlPlane builds the clients and the kubeconfig for cfg and installs the CRDs.
func newControlPlane(tb testing.TB, ctx context.Context, cfg *rest.Config, o options) *ControlPlane {
	tb.Helper()
	cp := &ControlPlane{Config: cfg, Ctx: ctx}
	cp.Kube = kubernetes.NewForConfigOrDie(cfg)
	cp.Dynamic = dynamic.NewForConfigOrDie(cfg)
	var err error
	if cp.Ecloud, err = client.NewForConfig(cfg); err != nil {
		tb.Fatalf("harness: %v", err)
	}
	cp.Kubeconfig = filepath.Join(tb.TempDir(), "kubeconfig")
	WriteKubeconfig(tb, cfg, cp.Kubeconfig)
	if !o.skipCRDs {
		cp.InstallCRDs(tb)
	}
	return cp
}

// InstallCRDs creates every CRD under manifests/crds and waits until each is Established and
// served.
func (cp *ControlPlane) InstallCRDs(tb testing.TB) {
	tb.Helper()
	ext := apiextensionsclient.NewForConfigOrDie(cp.Config)
	objs, err := crds.Objects()
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	for _, crd := range objs {
		if _, err := ext.ApiextensionsV1().CustomResourceDefinitions().Create(cp.Ctx, crd, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			tb.Fatalf("harness: create CRD %s: %v", crd.Name, err)
		}
		err = wait.PollUntilContextTimeout(cp.Ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			got, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			tb.Fatalf("harness: CRD %s not established: %v", crd.Name, err)
		}
	}
	// Established comes slightly before the resource is served by every handler; list until it is.
	err = wait.PollUntilContextTimeout(cp.Ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if _, err := cp.Ecloud.IPPools().List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
			return false, nil
		}
		_, err := cp.Ecloud.IPClaims().List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
	if err != nil {
		tb.Fatalf("harness: ecloud resources not served: %v", err)
	}
}

// Eventually polls cond every 50ms until it returns true or timeout passes, then fails the test
// with what, formatted with args, and the last error cond returned.
func Eventually(tb testing.TB, timeout time.Duration, cond func() (bool, error), what string, args ...any) {
	tb.Helper()
	EventuallyEvery(tb, 50*time.Millisecond, timeout, cond, what, args...)
}

// EventuallyEvery is Eventually polling every interval (for conditions that are costly to
// check, such as listing many objects).
func EventuallyEvery(tb testing.TB, interval, timeout time.Duration, cond func() (bool, error), what string, args ...any) {
	tb.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), interval, timeout, true, func(context.Context) (bool, error) {
		ok, err := cond()
		last = err
		return ok, nil
	})
	if err != nil {
		tb.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, fmt.Sprintf(what, args...), last)
	}
}
