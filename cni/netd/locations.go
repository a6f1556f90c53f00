package netd

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"k8s.io/client-go/kubernetes"

	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/locations"
)

// newLocationFollower follows the IPs' locations where cfg says: location relays, or the
// IPLocationSlices through the apiserver.
func newLocationFollower(cfg Config, kube kubernetes.Interface, ec *client.Clientset, opts locations.Options) (*locations.Follower, error) {
	src := cfg.Locations
	if !src.Relayed() {
		return locations.New(ec, opts), nil
	}
	rc := locations.RelayConfig{TokenFile: src.TokenFile, Spread: cfg.NodeName}
	scheme := "http"
	if src.CAFile != "" {
		pem, err := os.ReadFile(src.CAFile)
		if err != nil {
			return nil, fmt.Errorf("location relay CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("location relay CA %s: no PEM certificate", src.CAFile)
		}
		rc.Client = locations.RelayClient(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	if src.RelayService != "" {
		ns, name, _ := strings.Cut(src.RelayService, "/")
		rc.Endpoints = locations.ServiceRelays(kube, ns, name, scheme, RelayPortName)
	} else {
		rc.Endpoints = locations.StaticRelays(src.Relays)
	}
	return locations.NewFromRelay(rc, opts), nil
}
