package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/locations"
	"github.com/ecloud-io/ecloud/cni/locrelay"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestLocationRelay runs a location relay of the IPLocationSlices (--source=slices) as its own
// ServiceAccount with the shipped RBAC against
// the real apiserver (RBAC authorization): netd's token for the relay's audience follows the
// slices through it (create, a move, a delete), while a token for the apiserver's audience, a
// user who may not watch the slices and no token at all are refused with the reason; the
// apiserver itself refuses the relay-audience token.
func TestLocationRelay(t *testing.T) {
	cp := harness.Start(t, harness.WithAPIServerFlags("--authorization-mode=RBAC"))
	ctx := cp.Ctx
	installAccess(t, cp)
	relayID := serviceAccountIdentity(t, cp, "ecloud-location-relay", "")
	s := locrelay.NewFromSlices(relayID.ecloud, locrelay.Config{Auth: locrelay.NewReviewAuthorizer(relayID.kube, "")})
	rctx, stop := context.WithCancel(ctx)
	go s.Run(rctx)
	srv := httptest.NewServer(s.Handler())
	// The follower's stream ends first: Close waits for open requests.
	defer func() { stop(); srv.CloseClientConnections(); srv.Close() }()
	harness.Eventually(t, 30*time.Second, func() (bool, error) { return s.HasSynced(), nil }, "the relay listing the slices as ecloud-location-relay")

	put := func(name, node, tunnel string, ips ...string) {
		t.Helper()
		wt := metav1.NewMicroTime(time.Now())
		want := &v1alpha1.IPLocationSlice{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.IPLocationSliceSpec{Node: node, TunnelIP: tunnel, WriteTime: &wt,
				Networks: []v1alpha1.LocatedNetwork{{Pool: "pool-a", VLAN: 100, IPs: ips}}}}
		cur, err := cp.Ecloud.IPLocationSlices().Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, err = cp.Ecloud.IPLocationSlices().Create(ctx, want, metav1.CreateOptions{})
		case err == nil:
			cur.Spec = want.Spec
			_, err = cp.Ecloud.IPLocationSlices().Update(ctx, cur, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatalf("write slice %s: %v", name, err)
		}
	}
	put("dc-a-node-0-1", "dc-a-node-0", "192.0.2.10", "10.40.0.1", "10.40.0.2")
	put("dc-b-node-0-1", "dc-b-node-0", "192.0.2.20", "10.40.0.3")

	netdToken := relayToken(t, cp, "ecloud-netd", []string{locrelay.DefaultAudience})
	f := locations.NewFromRelay(locations.RelayConfig{
		Endpoints: locations.StaticRelays([]string{srv.URL}), TokenFile: netdToken, MaxBackoff: time.Second,
	}, locations.Options{})
	go f.Run(rctx)
	nodeOf := func(ip string) string {
		l, _ := f.Lookup(netip.MustParseAddr(ip))
		return l.Node
	}
	harness.Eventually(t, 30*time.Second, func() (bool, error) { return f.HasSynced() && f.Len() == 3, nil }, "netd's follower synced through the relay")
	// A sticky IP moves to dc-b-node-0, then dc-a-node-0's slice is deleted.
	put("dc-b-node-0-1", "dc-b-node-0", "192.0.2.20", "10.40.0.1", "10.40.0.3")
	put("dc-a-node-0-1", "dc-a-node-0", "192.0.2.10", "10.40.0.2")
	if err := cp.Ecloud.IPLocationSlices().Delete(ctx, "dc-a-node-0-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		return nodeOf("10.40.0.1") == "dc-b-node-0" && nodeOf("10.40.0.2") == "" && f.Len() == 2, nil
	}, "the move and the deletion through the relay")

	get := func(token string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+locations.RelayPath, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(body)
	}
	read := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	appSA := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "some-app"}}
	if _, err := cp.Kube.CoreV1().ServiceAccounts("kube-system").Create(ctx, appSA, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		code        int
		reason      string
	}{
		{"no token", "", http.StatusUnauthorized, "no bearer token"},
		{"netd's token for the apiserver", read(relayToken(t, cp, "ecloud-netd", nil)), http.StatusUnauthorized, "is invalid for the target audiences"},
		{"a user who may not watch the slices", read(relayToken(t, cp, "some-app", []string{locrelay.DefaultAudience})), http.StatusForbidden,
			"system:serviceaccount:kube-system:some-app may not watch iplocationslices.network.ecloud.io"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			code, body := get(tc.token)
			if code != tc.code || !strings.Contains(body, tc.reason) {
				t.Fatalf("status %d %q, want %d naming %q", code, body, tc.code, tc.reason)
			}
		})
	}
	t.Run("the apiserver refuses the relay's audience", func(t *testing.T) {
		cfg := rest.AnonymousClientConfig(cp.Config)
		cfg.BearerToken = read(netdToken)
		ec, err := client.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ec.IPLocationSlices().List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
			t.Fatalf("listing slices with a token for %s: %v, want Unauthorized", locrelay.DefaultAudience, err)
		}
	})
}

// TestLocationRelayFromClaims runs a location relay that derives the locations from the IPClaims
// (--source=claims, the default) as its own ServiceAccount with the shipped RBAC: netd's follower
// sees a bound claim on its node's tunnel endpoint with its pool's VLAN, a move, a claim bound
// later, a deletion and a deleted node, and never a Reserved claim or an IP of a node without a
// tunnel endpoint. No IPLocationSlice is written.
func TestLocationRelayFromClaims(t *testing.T) {
	cp := harness.Start(t, harness.WithAPIServerFlags("--authorization-mode=RBAC"))
	ctx := cp.Ctx
	installAccess(t, cp)
	relayID := serviceAccountIdentity(t, cp, "ecloud-location-relay", "")
	s, err := locrelay.New(relayID.ecloud, relayID.kube, locrelay.Config{Auth: locrelay.NewReviewAuthorizer(relayID.kube, "")})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	go s.Run(rctx)
	srv := httptest.NewServer(s.Handler())
	defer func() { stop(); srv.CloseClientConnections(); srv.Close() }()

	pool := &v1alpha1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "relayed"}, Spec: v1alpha1.IPPoolSpec{CIDR: "10.91.0.0/24", Gateway: "10.91.0.1", VLAN: 200}}
	if _, err := cp.Ecloud.IPPools().Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tunnel := map[string]string{"relay-1": "192.0.2.31", "relay-2": "192.0.2.32", "relay-3": ""}
	for name, ip := range tunnel {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if ip != "" {
			n.Annotations = map[string]string{locations.TunnelIPAnnotation: ip}
		}
		if _, err := cp.Kube.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(ip string, phase v1alpha1.ClaimPhase, node string) {
		t.Helper()
		c := &v1alpha1.IPClaim{ObjectMeta: metav1.ObjectMeta{Name: ip},
			Spec: v1alpha1.IPClaimSpec{Pool: pool.Name, IP: ip, Owner: v1alpha1.ClaimOwner{Namespace: "relayed", PodName: "p-" + ip},
				Mode: v1alpha1.ModeSticky, ReleasePolicy: v1alpha1.ReleaseNever},
			Status: v1alpha1.IPClaimStatus{Phase: phase, Node: node}}
		if _, err := cp.Ecloud.IPClaims().Create(ctx, c, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	claim("10.91.0.10", v1alpha1.PhaseBound, "relay-1")
	claim("10.91.0.11", v1alpha1.PhaseReserved, "relay-1")
	claim("10.91.0.12", v1alpha1.PhaseBound, "relay-3")
	harness.Eventually(t, 30*time.Second, func() (bool, error) { return s.HasSynced(), nil }, "the relay listing the claims as ecloud-location-relay")

	f := locations.NewFromRelay(locations.RelayConfig{
		Endpoints: locations.StaticRelays([]string{srv.URL}), TokenFile: relayToken(t, cp, "ecloud-netd", []string{locrelay.DefaultAudience}), MaxBackoff: time.Second,
	}, locations.Options{})
	go f.Run(rctx)
	located := func(ip, node string) func() (bool, error) {
		return func() (bool, error) {
			l, ok := f.Lookup(netip.MustParseAddr(ip))
			if node == "" {
				return f.HasSynced() && !ok, nil
			}
			return ok && l.Node == node && l.TunnelIP.String() == tunnel[node] && l.VLAN == 200, nil
		}
	}
	harness.Eventually(t, 30*time.Second, func() (bool, error) {
		ok, _ := located("10.91.0.10", "relay-1")()
		return f.HasSynced() && ok && f.Len() == 1 && len(f.Nodes()) == 2, nil
	}, "netd's follower synced through the relay: one located IP (not the Reserved one, not the one on relay-3 without a tunnel endpoint), two node endpoints")

	patch := func(ip, status string) {
		t.Helper()
		if _, err := cp.Ecloud.IPClaims().Patch(ctx, ip, types.MergePatchType, []byte(`{"status":`+status+`}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	patch("10.91.0.10", `{"node":"relay-2"}`)
	harness.Eventually(t, 10*time.Second, located("10.91.0.10", "relay-2"), "the sticky IP moved to relay-2")
	patch("10.91.0.11", `{"phase":"Bound"}`)
	harness.Eventually(t, 10*time.Second, located("10.91.0.11", "relay-1"), "the Reserved claim bound on relay-1")
	if err := cp.Ecloud.IPClaims().Delete(ctx, "10.91.0.10", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, located("10.91.0.10", ""), "the deleted claim's IP gone")
	if err := cp.Kube.CoreV1().Nodes().Delete(ctx, "relay-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, func() (bool, error) {
		ok, _ := located("10.91.0.11", "")()
		return ok && len(f.Nodes()) == 1, nil
	}, "the deleted node's IPs and endpoint gone")
	if l, err := cp.Ecloud.IPLocationSlices().List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) != 0 {
		t.Errorf("IPLocationSlices: %d, %v; the claim source writes none", len(l.Items), err)
	}
}

// relayToken writes a token of ServiceAccount kube-system/sa for audiences (nil: the apiserver's)
// into a file and returns its path.
func relayToken(t *testing.T, cp *harness.ControlPlane, sa string, audiences []string) string {
	t.Helper()
	tok, err := cp.Kube.CoreV1().ServiceAccounts("kube-system").CreateToken(cp.Ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("token of %s for %v: %v", sa, audiences, err)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("%s-token", sa))
	if err := os.WriteFile(path, []byte(tok.Status.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
