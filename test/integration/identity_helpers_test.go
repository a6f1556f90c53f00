package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/cni/netd"
	"github.com/ecloud-io/ecloud/test/harness"
)

// nodeNameExtra is the user extra key the apiserver fills from a pod-bound ServiceAccount token
// with the pod's node.
const nodeNameExtra = "authentication.kubernetes.io/node-name"

// installAccess applies what `kubectl apply -k manifests/` installs for access control: the
// ServiceAccounts, RBAC and admission policies (kube-system), exactly as rendered by kustomize.
func installAccess(t *testing.T, cp *harness.ControlPlane) {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), "../../manifests")
	if err != nil {
		t.Fatalf("kustomize build manifests: %v", err)
	}
	// kind → namespaced (kustomize sets the namespace on kinds it does not know to be cluster-scoped,
	// such as the admission policies; the apiserver ignores it there for kubectl apply).
	kinds := map[string]bool{"ServiceAccount": true, "ClusterRole": false, "ClusterRoleBinding": false, "Role": true, "RoleBinding": true,
		"ValidatingAdmissionPolicy": false, "ValidatingAdmissionPolicyBinding": false}
	for _, r := range resMap.Resources() {
		namespaced, install := kinds[r.GetKind()]
		if !install {
			continue
		}
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(y, &u.Object); err != nil {
			t.Fatalf("%s: %v", r.CurId(), err)
		}
		gvr, _ := meta.UnsafeGuessKindToResource(u.GroupVersionKind())
		var ri interface {
			Create(context.Context, *unstructured.Unstructured, metav1.CreateOptions, ...string) (*unstructured.Unstructured, error)
		} = cp.Dynamic.Resource(gvr)
		if namespaced {
			ri = cp.Dynamic.Resource(gvr).Namespace(u.GetNamespace())
		} else {
			u.SetNamespace("")
		}
		if _, err := ri.Create(cp.Ctx, u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

// identity is a client acting as one ecloud ServiceAccount of kube-system.
type identity struct {
	name   string
	cfg    *rest.Config
	kube   kubernetes.Interface
	ecloud *client.Clientset
	// kubeconfig is a kubeconfig file with the token (for components that take one).
	kubeconfig string
}

// serviceAccountIdentity gets a token for ServiceAccount kube-system/sa from the TokenRequest API.
// With node set, the token is bound to a pod of that ServiceAccount running on node (created here),
// as the kubelet projects it into the pod: the apiserver then puts the node into the user's extra
// info. With node empty the token is bound to nothing.
func serviceAccountIdentity(t *testing.T, cp *harness.ControlPlane, sa, node string) *identity {
	t.Helper()
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	name := sa
	if node != "" {
		name = sa + "-" + node
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: name},
			Spec: corev1.PodSpec{ServiceAccountName: sa, NodeName: node,
				Containers: []corev1.Container{{Name: "c", Image: "ecloud/" + sa + ":dev"}}},
		}
		created, err := cp.Kube.CoreV1().Pods("kube-system").Create(cp.Ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create pod %s: %v", name, err)
		}
		req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: created.Name, UID: created.UID}
	}
	tok, err := cp.Kube.CoreV1().ServiceAccounts("kube-system").CreateToken(cp.Ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token for %s: %v", name, err)
	}
	cfg := rest.AnonymousClientConfig(cp.Config)
	cfg.BearerToken = tok.Status.Token
	id := &identity{name: name, cfg: cfg, kube: kubernetes.NewForConfigOrDie(cfg)}
	if id.ecloud, err = client.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	id.kubeconfig = t.TempDir() + "/kubeconfig"
	harness.WriteKubeconfig(t, cfg, id.kubeconfig)

	// The apiserver must see the node in the token, else no node-bound rule can hold.
	review, err := id.kube.AuthenticationV1().SelfSubjectReviews().Create(cp.Ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("self subject review of %s: %v", name, err)
	}
	if got := review.Status.UserInfo.Extra[nodeNameExtra]; node != "" && (len(got) != 1 || got[0] != node) {
		t.Fatalf("token of %s: user extra %s = %v, want [%s]", name, nodeNameExtra, got, node)
	}
	return id
}

// netdAllocator is netd's allocator for node built as the daemon builds it (cni/netd daemon.go:
// an informer of node's claims only), on informers and clients of the identity id.
func netdAllocator(t *testing.T, cp *harness.ControlPlane, id *identity, node string) *netd.IPAMAllocator {
	t.Helper()
	ctx, cancel := context.WithCancel(cp.Ctx)
	pools := client.NewIPPoolInformer(id.ecloud, 0)
	claims := client.NewFilteredIPClaimInformer(id.ecloud, 0, nil, "status.node="+node)
	factory := informers.NewSharedInformerFactory(id.kube, 0)
	nodes := factory.Core().V1().Nodes().Informer()
	nsInf := factory.Core().V1().Namespaces().Informer()
	alloc, err := ipam.New(ipam.Config{Claims: id.ecloud.IPClaims(), Pools: pools, ClaimsInformer: claims,
		Namespaces: corelisters.NewNamespaceLister(nsInf.GetIndexer())})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	go pools.RunWithContext(ctx)
	go claims.RunWithContext(ctx)
	factory.Start(ctx.Done())
	t.Cleanup(func() { cancel(); factory.Shutdown() }) // Shutdown waits for the informers ctx stops
	if !cache.WaitForCacheSync(ctx.Done(), alloc.HasSynced, nodes.HasSynced, nsInf.HasSynced) {
		t.Fatalf("informers of %s did not sync", id.name)
	}
	return netd.NewIPAMAllocator(alloc, netd.NewClaimAllocator(id.kube, id.ecloud, claims.GetIndexer(), pools.GetStore(), nil), nodes.GetStore())
}

// nodePod creates a pod already placed on node (no scheduler involved).
func nodePod(t *testing.T, cp *harness.ControlPlane, ns, name, node string, mutate ...func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "example.invalid/app"}}},
	}
	for _, m := range mutate {
		m(p)
	}
	created, err := cp.Kube.CoreV1().Pods(ns).Create(cp.Ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	return created
}

// waitForRefusal polls a dry-run write until the admission policies (compiled asynchronously by
// the apiserver) refuse it with a message containing want.
func waitForRefusal(t *testing.T, what, want string, write func() error) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		err := write()
		return err != nil && strings.Contains(err.Error(), want), err
	}, "%s to be refused with %q", what, want)
}
