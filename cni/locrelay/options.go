package locrelay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/client"
	// The API client reports its metrics (rest_client_*).
	_ "k8s.io/component-base/metrics/prometheus/restclient"
)

// Options are the relay command's settings.
type Options struct {
	// Kubeconfig is the apiserver's kubeconfig; empty means in-cluster.
	Kubeconfig string
	// Source is where the locations come from: SourceClaims or SourceSlices.
	Source string
	// BindAddress serves the stream, /readyz, /healthz and /metrics.
	BindAddress string
	// TLSCertFile and TLSKeyFile, when both set, make the relay serve HTTPS.
	TLSCertFile, TLSKeyFile string
	// Audience is the audience followers' tokens must carry.
	Audience string
	// Buffer and Heartbeat: see Config.
	Buffer    int
	Heartbeat time.Duration
	// KubeAPIQPS and KubeAPIBurst limit the relay's requests (the watch and the reviews).
	KubeAPIQPS   float32
	KubeAPIBurst int
}

// Location sources (--source).
const (
	// SourceClaims derives one slice per node from the IPClaims, IPPools and Nodes.
	SourceClaims = "claims"
	// SourceSlices relays the ip-controller's IPLocationSlices.
	SourceSlices = "slices"
)

// NewOptions are the defaults.
func NewOptions() *Options {
	return &Options{Source: SourceClaims, BindAddress: ":9465", Audience: DefaultAudience, Buffer: 20000, Heartbeat: 5 * time.Second,
		KubeAPIQPS: 20, KubeAPIBurst: 40}
}

// AddFlags binds the options to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file (default: in-cluster)")
	fs.StringVar(&o.Source, "source", o.Source, "where the locations come from: claims (one slice per node derived from the IPClaims, IPPools and Nodes: a change costs the apiserver no write) or slices (the ip-controller's IPLocationSlices)")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "address serving the location stream (/v1/location-slices), /readyz, /healthz and /metrics")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", o.TLSCertFile, "serve HTTPS with this certificate (with --tls-key-file); default plain HTTP")
	fs.StringVar(&o.TLSKeyFile, "tls-key-file", o.TLSKeyFile, "the key of --tls-cert-file")
	fs.StringVar(&o.Audience, "audience", o.Audience, "audience the followers' ServiceAccount tokens must be issued for (the apiserver refuses such tokens)")
	fs.IntVar(&o.Buffer, "follower-buffer", o.Buffer, "frames a follower may lag behind before its stream is dropped (it resubscribes)")
	fs.DurationVar(&o.Heartbeat, "heartbeat", o.Heartbeat, "how often an idle stream gets a heartbeat")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "requests per second to the apiserver (sustained)")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "requests to the apiserver allowed in a burst above --kube-api-qps")
}

// Validate lists what is wrong with the options, by flag.
func (o *Options) Validate() field.ErrorList {
	var errs field.ErrorList
	if o.Source != SourceClaims && o.Source != SourceSlices {
		errs = append(errs, field.NotSupported(field.NewPath("source"), o.Source, []string{SourceClaims, SourceSlices}))
	}
	if o.BindAddress == "" {
		errs = append(errs, field.Required(field.NewPath("bind-address"), "the relay serves its followers there"))
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		errs = append(errs, field.Invalid(field.NewPath("tls-cert-file"), o.TLSCertFile, "set both --tls-cert-file and --tls-key-file, or neither"))
	}
	if o.Audience == "" {
		errs = append(errs, field.Required(field.NewPath("audience"), "tokens for the apiserver's own audience must not be accepted here"))
	}
	if o.Buffer < 1 {
		errs = append(errs, field.Invalid(field.NewPath("follower-buffer"), o.Buffer, "must be at least 1"))
	}
	if o.Heartbeat < time.Second {
		errs = append(errs, field.Invalid(field.NewPath("heartbeat"), o.Heartbeat.String(), "must be at least 1s"))
	}
	return errs
}

// Run relays the locations of the apiserver at cfg until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o *Options) error {
	if errs := o.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid options: %w", errs.ToAggregate())
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = Name
	cfg.QPS, cfg.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	ec, err := client.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("ecloud client: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	rc := Config{Buffer: o.Buffer, Heartbeat: o.Heartbeat, Auth: NewReviewAuthorizer(kube, o.Audience)}
	var s *Server
	if o.Source == SourceSlices {
		s = NewFromSlices(ec, rc)
	} else if s, err = New(ec, kube, rc); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", s.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.Handle("/metrics", legacyregistry.Handler())
	l, err := net.Listen("tcp", o.BindAddress)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.BindAddress, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	logger := klog.FromContext(ctx)
	logger.Info("Serving the location stream", "source", o.Source, "address", l.Addr().String(), "tls", o.TLSCertFile != "", "audience", o.Audience)
	go s.Run(ctx)
	errc := make(chan error, 1)
	go func() {
		if o.TLSCertFile != "" {
			errc <- srv.ServeTLS(l, o.TLSCertFile, o.TLSKeyFile)
		} else {
			errc <- srv.Serve(l)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", o.BindAddress, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
