package manager

import (
	"strings"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Options)
		field  string // "" means valid
	}{
		{"defaults", func(*Options) {}, ""},
		{"no leader election needs no lease", func(o *Options) { o.LeaderElect, o.LeaseName = false, "" }, ""},
		{"zero workers", func(o *Options) { o.Workers = 0 }, "workers"},
		{"zero GC interval", func(o *Options) { o.GCInterval = 0 }, "gcInterval"},
		{"negative grace", func(o *Options) { o.GCGrace = -time.Second }, "gcGrace"},
		{"no lease name", func(o *Options) { o.LeaseName = "" }, "leaderElection.resourceName"},
		{"renew deadline past lease", func(o *Options) { o.RenewDeadline = o.LeaseDuration }, "leaderElection.renewDeadline"},
		{"zero QPS", func(o *Options) { o.KubeAPIQPS = 0 }, "kubeAPIQPS"},
		{"zero burst", func(o *Options) { o.KubeAPIBurst = 0 }, "kubeAPIBurst"},
		{"no location workers", func(o *Options) { o.LocationWorkers = 0 }, "locationWorkers"},
		{"zero location batch delay", func(o *Options) { o.LocationBatchDelay = 0 }, "locationBatchDelay"},
		{"location batch delay of a minute", func(o *Options) { o.LocationBatchDelay = time.Minute }, "locationBatchDelay"},
		{"zero reservation window", func(o *Options) { o.ReservationWindow = 0 }, "reservationWindow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := NewOptions()
			tc.mutate(o)
			errs := o.Validate()
			if tc.field == "" {
				if len(errs) != 0 {
					t.Fatalf("want valid, got %v", errs)
				}
				return
			}
			if len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), tc.field) {
				t.Fatalf("want an error on %s, got %v", tc.field, errs)
			}
		})
	}
}
