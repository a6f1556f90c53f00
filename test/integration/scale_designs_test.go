package integration

import (
	"context"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/locations"
	"github.com/ecloud-io/ecloud/cni/locrelay"
	"github.com/ecloud-io/ecloud/test/harness"
)

// todayDesignName names the per-claim design in the figures.
const todayDesignName = "per-claim"

// todayDesign is the per-claim design: every netd watches every IPClaim and keeps one tunnel
// port per other node (full mesh). Its simulated nodes run the claim informer netd runs.
func todayDesign(cfg scaleConfig) *scaleDesign {
	return &scaleDesign{
		name: todayDesignName, netd: cfg.todayNetd, mesh: cfg.todayMesh, simNodes: cfg.todaySimNodes,
		follow: func(ctx context.Context, rc *rest.Config, _ string, seen func(ip, node string)) (func() int, func() bool, error) {
			cs, err := client.NewForConfig(rc)
			if err != nil {
				return nil, nil, err
			}
			inf := client.NewIPClaimInformer(cs, 0, nil)
			located := func(obj any) {
				if c, ok := obj.(*v1alpha1.IPClaim); ok {
					node := c.Status.Node
					if c.Status.Phase != v1alpha1.PhaseBound {
						node = ""
					}
					seen(c.Spec.IP, node)
				}
			}
			if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc:    located,
				UpdateFunc: func(_, obj any) { located(obj) },
				DeleteFunc: func(obj any) {
					if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
						obj = t.Obj
					}
					if c, ok := obj.(*v1alpha1.IPClaim); ok {
						seen(c.Spec.IP, "")
					}
				},
			}); err != nil {
				return nil, nil, err
			}
			go inf.RunWithContext(ctx)
			return func() int { return len(inf.GetStore().ListKeys()) }, inf.HasSynced, nil
		},
	}
}

// locationDesign is the location design: location relays (cni/locrelay) follow the locations once
// and stream them to every netd, and each netd keeps one flow-based tunnel port per
// encapsulation. With the relays' source "claims" (design "relays") each relay derives one slice
// per node from the IPClaims and the ip-controller writes no IPLocationSlices; with "slices", or
// no relays (every netd watches the slices itself), the ip-controller writes IPLocationSlices
// (one or a few per node) that the relays or netds follow (design "slices"). Its simulated nodes
// run the follower netd runs.
func locationDesign(cfg scaleConfig) *scaleDesign {
	var relays *scaleRelays
	fromClaims := cfg.relays > 0 && cfg.relaySource == locrelay.SourceClaims
	d := &scaleDesign{name: "slices", netd: cfg.netd, mesh: cfg.nodes, simNodes: cfg.simNodes}
	if fromClaims {
		d.name = "relays"
	}
	d.before = func(e *scaleEnv) {
		if fromClaims {
			if e.ipControllerPID == 0 {
				e.startIPController("--location-slices=false")
			}
			relays = e.startRelays(cfg.relays, cfg.relaySource)
			return
		}
		if e.ipControllerPID == 0 {
			e.startIPController()
		}
		e.waitSlices()
		if cfg.relays > 0 {
			relays = e.startRelays(cfg.relays, cfg.relaySource)
		}
	}
	d.netdArgs = func() []string {
		if relays == nil {
			return nil
		}
		return []string{"--location-relays=" + strings.Join(relays.urls, ","), "--location-relay-token-file=" + relays.tokenFile}
	}
	d.locationWatchers = func() int {
		if relays == nil {
			return cfg.simNodes + 1
		}
		return len(relays.urls)
	}
	d.follow = func(ctx context.Context, rc *rest.Config, node string, seen func(ip, node string)) (func() int, func() bool, error) {
		cs, err := client.NewForConfig(rc)
		if err != nil {
			return nil, nil, err
		}
		var f *locations.Follower
		opts := locations.Options{OnChange: func(ch locations.Change) {
			for _, ip := range ch.IPs {
				node := ""
				if l, ok := f.Lookup(ip); ok {
					node = l.Node
				}
				seen(ip.String(), node)
			}
		}}
		if relays == nil {
			f = locations.New(cs, opts)
		} else {
			// Its own connection to a relay, as a node has.
			f = locations.NewFromRelay(locations.RelayConfig{
				Endpoints: locations.StaticRelays(relays.urls), TokenFile: relays.tokenFile, Spread: node,
				Client: locations.RelayClient(nil),
			}, opts)
		}
		go f.Run(ctx)
		// Every follower holds every slice: the objects a node holds.
		return f.SliceCount, f.HasSynced, nil
	}
	return d
}

// waitSlices waits until the ip-controller's slices locate every claim the benchmark wrote and
// prints how long it took, how many slices there are and the ip-controller's RSS.
func (e *scaleEnv) waitSlices() {
	start := time.Now()
	e.mu.Lock()
	want := len(e.claims)
	e.mu.Unlock()
	var slices, located int
	harness.EventuallyEvery(e.tb, time.Second, 10*time.Minute, func() (bool, error) {
		slices, located = 0, 0
		cont := ""
		for {
			l, err := e.ecloud.IPLocationSlices().List(e.cp.Ctx, metav1.ListOptions{Limit: 1000, Continue: cont})
			if err != nil {
				return false, err
			}
			for i := range l.Items {
				slices++
				located += l.Items[i].Spec.Len()
			}
			if cont = l.Continue; cont == "" {
				break
			}
		}
		return located >= want, nil
	}, "IPLocationSlices locating %d claims", want)
	e.logf("scale slices: the ip-controller located %d IPs in %d IPLocationSlices within %.1fs of the phase start; ip-controller RSS %.0f MiB",
		located, slices, time.Since(start).Seconds(), rssMiB(e.ipControllerPID))
}
