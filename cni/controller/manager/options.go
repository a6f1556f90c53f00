package manager

import (
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Options configure the IP controller.
type Options struct {
	// Kubeconfig is the path of a kubeconfig; empty means in-cluster.
	Kubeconfig string
	// KubeAPIQPS and KubeAPIBurst bound the controller's requests to the apiserver (client-go's
	// own defaults, 5 and 10, would make GC and release of a few hundred claims take minutes).
	KubeAPIQPS   float32
	KubeAPIBurst int
	// BindAddress serves /healthz and /metrics (plain HTTP); empty disables the server.
	BindAddress string
	// LeaderElect runs the controllers only while holding the Lease LeaseNamespace/LeaseName.
	LeaderElect    bool
	LeaseNamespace string
	LeaseName      string
	// Identity is this replica's leader-election identity (default: hostname + random suffix).
	Identity      string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// Workers per queue-driven controller.
	Workers int
	// ReservationWindow protects Reserved claims younger than it from release and GC.
	ReservationWindow time.Duration
	// GCInterval and GCGrace drive the leak collector (a leak is freed after two sightings at least
	// GCGrace apart).
	GCInterval time.Duration
	GCGrace    time.Duration
	// LocationSlices turns the IPLocationSlice writer on: netds that watch the slices (no
	// location relays) and location relays with --source=slices follow them. With every netd
	// following relays that derive the locations from the IPClaims, it can be off.
	LocationSlices bool
	// LocationBatchDelay is how long a node's location changes are collected before its
	// IPLocationSlices are written.
	LocationBatchDelay time.Duration
	// LocationWorkers write IPLocationSlices, one node each at a time: a write waits on the
	// apiserver, so the slice writes of many nodes overlap.
	LocationWorkers int
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		KubeAPIQPS:         300,
		KubeAPIBurst:       600,
		BindAddress:        ":10270",
		LeaderElect:        true,
		LeaseNamespace:     "kube-system",
		LeaseName:          "ecloud-ip-controller",
		LeaseDuration:      15 * time.Second,
		RenewDeadline:      10 * time.Second,
		RetryPeriod:        2 * time.Second,
		Workers:            4,
		ReservationWindow:  5 * time.Minute,
		GCInterval:         time.Minute,
		GCGrace:            5 * time.Minute,
		LocationSlices:     true,
		LocationBatchDelay: 100 * time.Millisecond,
		LocationWorkers:    16,
	}
}

// AddFlags registers the options as flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig; empty for in-cluster configuration.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Requests per second to the apiserver (sustained).")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Requests to the apiserver allowed in a burst above --kube-api-qps.")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "Address serving /healthz and /metrics over HTTP; empty disables it.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Run the controllers only while holding the leader-election Lease.")
	fs.StringVar(&o.LeaseNamespace, "leader-elect-resource-namespace", o.LeaseNamespace, "Namespace of the leader-election Lease.")
	fs.StringVar(&o.LeaseName, "leader-elect-resource-name", o.LeaseName, "Name of the leader-election Lease.")
	fs.StringVar(&o.Identity, "leader-elect-identity", o.Identity, "Leader-election identity; default hostname plus a random suffix.")
	fs.DurationVar(&o.LeaseDuration, "leader-elect-lease-duration", o.LeaseDuration, "Leader-election lease duration.")
	fs.DurationVar(&o.RenewDeadline, "leader-elect-renew-deadline", o.RenewDeadline, "Leader-election renew deadline.")
	fs.DurationVar(&o.RetryPeriod, "leader-elect-retry-period", o.RetryPeriod, "Leader-election retry period.")
	fs.IntVar(&o.Workers, "workers", o.Workers, "Workers per controller queue.")
	fs.DurationVar(&o.ReservationWindow, "reservation-window", o.ReservationWindow, "A Reserved claim younger than this is never released or collected.")
	fs.DurationVar(&o.GCInterval, "gc-interval", o.GCInterval, "Time between scans for leaked ephemeral claims.")
	fs.BoolVar(&o.LocationSlices, "location-slices", o.LocationSlices, "Write the IPLocationSlices (what netds without location relays, and relays with --source=slices, follow). Off, a change of an IP's location costs no write beyond its IPClaim's; netds must then follow relays with --source=claims.")
	fs.IntVar(&o.LocationWorkers, "location-workers", o.LocationWorkers, "Workers writing IPLocationSlices (one node each at a time).")
	fs.DurationVar(&o.LocationBatchDelay, "location-batch-delay", o.LocationBatchDelay, "How long a node's IP location changes are collected before its IPLocationSlices are written (one write per node per batch).")
	fs.DurationVar(&o.GCGrace, "gc-grace", o.GCGrace, "Least time between the first sighting of a leaked claim and its release.")
}

// Validate checks the options; errors carry the flag's field path.
func (o *Options) Validate() field.ErrorList {
	var errs field.ErrorList
	pos := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, field.Invalid(field.NewPath(name), d.String(), "must be positive"))
		}
	}
	if o.Workers < 1 {
		errs = append(errs, field.Invalid(field.NewPath("workers"), o.Workers, "must be at least 1"))
	}
	if o.LocationWorkers < 1 {
		errs = append(errs, field.Invalid(field.NewPath("locationWorkers"), o.LocationWorkers, "must be at least 1"))
	}
	if o.KubeAPIQPS <= 0 {
		errs = append(errs, field.Invalid(field.NewPath("kubeAPIQPS"), o.KubeAPIQPS, "must be positive"))
	}
	if o.KubeAPIBurst < 1 {
		errs = append(errs, field.Invalid(field.NewPath("kubeAPIBurst"), o.KubeAPIBurst, "must be at least 1"))
	}
	pos("reservationWindow", o.ReservationWindow)
	pos("gcInterval", o.GCInterval)
	if o.LocationBatchDelay <= 0 || o.LocationBatchDelay > 10*time.Second {
		errs = append(errs, field.Invalid(field.NewPath("locationBatchDelay"), o.LocationBatchDelay.String(), "must be positive and at most 10s"))
	}
	if o.GCGrace < 0 {
		errs = append(errs, field.Invalid(field.NewPath("gcGrace"), o.GCGrace.String(), "must not be negative"))
	}
	if o.LeaderElect {
		le := field.NewPath("leaderElection")
		if o.LeaseNamespace == "" {
			errs = append(errs, field.Required(le.Child("resourceNamespace"), ""))
		}
		if o.LeaseName == "" {
			errs = append(errs, field.Required(le.Child("resourceName"), ""))
		}
		pos("leaderElection.leaseDuration", o.LeaseDuration)
		pos("leaderElection.renewDeadline", o.RenewDeadline)
		pos("leaderElection.retryPeriod", o.RetryPeriod)
		if o.RenewDeadline >= o.LeaseDuration {
			errs = append(errs, field.Invalid(le.Child("renewDeadline"), o.RenewDeadline.String(), "must be less than leaseDuration"))
		}
	}
	return errs
}
