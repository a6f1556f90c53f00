package integration

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/locrelay"
	"github.com/ecloud-io/ecloud/test/harness"
)

// scaleRelays are the location relays of the slice design's phase: in the test process (CPU
// label location-relay), each with its own apiserver connection and watch, listening on the
// root side of the namespace host's link so that the real netd reaches them too.
type scaleRelays struct {
	urls      []string
	tokenFile string
}

// startRelays starts n relays that review tokens through the apiserver, writes a token of the
// ServiceAccount kube-system/ecloud-netd for their audience and waits until every relay holds
// every slice.
func (e *scaleEnv) startRelays(n int, source string) *scaleRelays {
	tb := e.tb
	r := &scaleRelays{tokenFile: filepath.Join(e.dir, "relay-token")}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "ecloud-netd"}}
	if _, err := e.kube.CoreV1().ServiceAccounts("kube-system").Create(e.cp.Ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		tb.Fatalf("service account %s: %v", sa.Name, err)
	}
	tok, err := e.kube.CoreV1().ServiceAccounts("kube-system").CreateToken(e.cp.Ctx, sa.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{locrelay.DefaultAudience}, ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("token of %s for %s: %v", sa.Name, locrelay.DefaultAudience, err)
	}
	if err := os.WriteFile(r.tokenFile, []byte(tok.Status.Token), 0o600); err != nil {
		tb.Fatal(err)
	}
	var servers []*locrelay.Server
	for range n {
		cfg := rest.CopyConfig(e.cp.Config)
		cfg.Dial = (&net.Dialer{Timeout: 30 * time.Second}).DialContext // its own connection
		cfg.QPS, cfg.Burst = 20, 40
		ec, err := client.NewForConfig(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		rc := locrelay.Config{Auth: locrelay.NewReviewAuthorizer(kube, "")}
		s := locrelay.NewFromSlices(ec, rc)
		if source == locrelay.SourceClaims {
			if s, err = locrelay.New(ec, kube, rc); err != nil {
				tb.Fatal(err)
			}
		}
		ln, err := net.Listen("tcp", scaleRootIP+":0")
		if err != nil {
			tb.Fatalf("relay listen: %v", err)
		}
		srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		ctx, cancel := context.WithCancel(e.cp.Ctx)
		tb.Cleanup(func() { cancel(); _ = srv.Close() })
		go pprof.Do(ctx, pprof.Labels("role", "location-relay"), func(ctx context.Context) {
			srv.BaseContext = func(net.Listener) context.Context { return ctx }
			go s.Run(ctx)
			_ = srv.Serve(ln)
		})
		servers = append(servers, s)
		r.urls = append(r.urls, "http://"+ln.Addr().String())
	}
	start := time.Now()
	harness.Eventually(tb, 5*time.Minute, func() (bool, error) {
		for _, s := range servers {
			if !s.HasSynced() {
				return false, nil
			}
		}
		return true, nil
	}, "%d location relays listing the %s", n, source)
	e.logf("scale: %d location relays (source %s) hold every node's locations %.1fs after they started", n, source, time.Since(start).Seconds())
	return r
}
