// Package harness runs a real control plane inside `go test`: embedded etcd, the real
// kube-apiserver (its own test server, the binary's code path), ecloud's CRDs, the in-tree
// controllers a test needs and, on request, the real kube-scheduler with out-of-tree plugins.
// Every integration test of every ecloud component uses it.
//
// Typical use:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
//
//	func TestX(t *testing.T) {
//		cp := harness.Start(t)
//		cp.CreateNodes(t, harness.TwoDatacenters(3))
//		...
//	}
package harness

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// sharedEtcdURL is the etcd that Main started for the whole test binary ("" without Main).
var sharedEtcdURL string

// Main starts one embedded etcd for the test binary, exports KUBE_INTEGRATION_ETCD_URL (so
// Kubernetes' own integration utilities use it instead of exec'ing an etcd binary), runs the
// tests and stops etcd. Call it from TestMain.
func Main(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ecloud-etcd-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: etcd dir: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	u, stop, err := StartEtcd(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 1
	}
	defer stop()
	sharedEtcdURL = u
	if err := os.Setenv("KUBE_INTEGRATION_ETCD_URL", u); err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 1
	}
	return m.Run()
}

// etcdURL returns the shared etcd, or starts one for this test if Main was not used.
func etcdURL(tb testing.TB) string {
	if sharedEtcdURL != "" {
		return sharedEtcdURL
	}
	u, stop, err := StartEtcd(tb.TempDir())
	if err != nil {
		tb.Fatalf("harness: %v", err)
	}
	tb.Cleanup(stop)
	return u
}

// StartEtcd starts etcd (go.etcd.io/etcd/server/v3/embed) in this process with its data in dir,
// on random loopback ports, and returns its client URL and a stop function.
func StartEtcd(dir string) (string, func(), error) {
	cu, err := freeLoopbackURL()
	if err != nil {
		return "", nil, fmt.Errorf("etcd client port: %w", err)
	}
	pu, err := freeLoopbackURL()
	if err != nil {
		return "", nil, fmt.Errorf("etcd peer port: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "etcd0"
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.LogLevel = "error"
	// etcd logs spurious "http: Server closed" errors on Close(); tests do not need its logs.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{cu}
	cfg.ListenPeerUrls = []url.URL{pu}
	cfg.AdvertisePeerUrls = []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.UnsafeNoFsync = true // tests need no durability
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("start embedded etcd in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return "", nil, fmt.Errorf("embedded etcd failed: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return "", nil, fmt.Errorf("embedded etcd not ready after 60s")
	}
	return cu.String(), e.Close, nil
}

func freeLoopbackURL() (url.URL, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return url.URL{}, err
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}, nil
}
