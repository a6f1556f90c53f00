package netd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/client"
	"github.com/ecloud-io/ecloud/cni/ipam"
	"github.com/ecloud-io/ecloud/cni/locations"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

// locationTable is where other nodes' IPs live: the follower's table (a fake in tests).
type locationTable interface {
	Lookup(ip netip.Addr) (locations.Location, bool)
	Range(fn func(ip netip.Addr, l locations.Location) bool)
	Nodes() []locations.NodeEndpoint
	Len() int
}

// Deps are the daemon's collaborators.
type Deps struct {
	Kube   kubernetes.Interface
	Ecloud *client.Clientset
	// Switch drives OVS (default: ovs.NewExec(cfg.OVS)).
	Switch ovs.Switch
	// Allocator hands out IPs (default: IPAMAllocator, cni/ipam on the daemon's informers).
	Allocator Allocator
	// Recorder records Events on the Node (default: through Kube, as ecloud-netd).
	Recorder record.EventRecorder
	// ObservePhase, if set, is called with the duration of every timed phase of a CNI request
	// (op add/attach/del; containerID set) and of a datapath sync (op sync), besides the
	// ecloud_netd_phase_duration_seconds metric: benchmarks take percentiles from it.
	ObservePhase func(op, phase, containerID string, d time.Duration)
}

// Daemon is one node's netd.
type Daemon struct {
	cfg              Config
	kube             kubernetes.Interface
	recorder         record.EventRecorder
	stopRecorder     func()
	sw               ovs.Switch
	alloc            Allocator
	observePhaseHook func(op, phase, containerID string, d time.Duration)

	nl      *netlink.Handle
	gwIndex int
	gwMAC   net.HardwareAddr

	informers []cache.SharedIndexInformer
	nodes     cache.Store // this node only
	pools     cache.Store
	claims    cache.Indexer // this node's claims only
	// follower follows the IPLocationSlices; locs is its table, where the other nodes' IPs live.
	follower *locations.Follower
	locs     locationTable

	syncer *syncer
	ports  *portBatcher
	ready  atomic.Bool
	// synced: the informers have synced (DEL and GC can run even while the node is blocked).
	synced atomic.Bool
	// blocked is the error CNI requests get while the node cannot have a datapath.
	blocked atomic.Pointer[nodeapi.Error]

	// Owned by the syncer goroutine: what the last sync programmed (the flows other than
	// remote IPs', the remote IPs' hops, the local IPs; nil: unknown, the next sync replaces
	// every flow), when flows were last replaced as a whole, and what the last full sync saw
	// of OVS.
	restFlows    map[string]ovs.Flow
	peerFlows    map[string]ovs.Flow
	remote       *remoteFlows
	localFlows   map[netip.Addr]bool
	lastFullSync time.Time
	view         *datapathView

	// dirty are the IPs whose location changed since the last flow sync took them (dirtyAll:
	// too many, every IP is to be looked at), nodesChanged whether the set of nodes changed.
	dirtyMu      sync.Mutex
	dirty        map[netip.Addr]struct{}
	dirtyAll     bool
	nodesChanged bool

	attachMu       sync.Mutex
	attachingPorts map[string]int
	attached       map[nodeapi.Attachment]ovs.Port  // this process's attachments, from the lease until DEL
	flowGen        map[nodeapi.Attachment]uint64    // the sync that installs an attachment's flows
	earlyAdds      map[nodeapi.Attachment]*earlyAdd // port adds started at the lease
	listed         map[string]LocalIP               // pod ports by name, per the last full sync
	usedOFPorts    map[int]bool                     // OpenFlow numbers in use or requested, per the last full sync
	// deletedWhileListing are ports deleted while a full sync lists them (nil otherwise).
	deletedWhileListing map[string]bool
}

// New builds a daemon; Run starts it.
func New(cfg Config, deps Deps) (*Daemon, error) {
	cfg.Default()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid netd configuration: %w", errs.ToAggregate())
	}
	d := &Daemon{cfg: cfg, kube: deps.Kube, recorder: deps.Recorder, stopRecorder: func() {}, sw: deps.Switch, alloc: deps.Allocator, observePhaseHook: deps.ObservePhase,
		attachingPorts: map[string]int{}, attached: map[nodeapi.Attachment]ovs.Port{}, flowGen: map[nodeapi.Attachment]uint64{}, earlyAdds: map[nodeapi.Attachment]*earlyAdd{}}
	if d.sw == nil {
		d.sw = ovs.NewExec(cfg.OVS)
	}
	if d.recorder == nil {
		d.recorder, d.stopRecorder = newRecorder(deps.Kube, cfg.NodeName)
	}
	var err error
	if cfg.HostNetNS == "" {
		d.nl, err = netlink.NewHandle()
	} else {
		var ns netns.NsHandle
		if ns, err = netns.GetFromPath(cfg.HostNetNS); err == nil {
			d.nl, err = netlink.NewHandleAt(ns)
			ns.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("netlink in host netns %q: %w", cfg.HostNetNS, err)
	}
	// netd watches its own Node and its own node's claims; where other nodes' IPs live comes from
	// the IPLocationSlices (one or a few objects per node), so what it watches grows with the
	// number of nodes, not of pods.
	nodeInf := cache.NewSharedIndexInformer(
		cache.NewListWatchFromClient(deps.Kube.CoreV1().RESTClient(), "nodes", "", fields.OneTermEqualSelector("metadata.name", cfg.NodeName)),
		&corev1.Node{}, cfg.ResyncPeriod, cache.Indexers{})
	poolInf := client.NewIPPoolInformer(deps.Ecloud, cfg.ResyncPeriod)
	// cni/ipam adds its indexes. Claims of other nodes are not seen: a free IP another node took
	// costs the allocator one AlreadyExists from the apiserver (which decides uniqueness), and a
	// sticky pod's claim on no node is looked up on the apiserver.
	claimInf := client.NewFilteredIPClaimInformer(deps.Ecloud, cfg.ResyncPeriod, nil,
		fields.OneTermEqualSelector("status.node", cfg.NodeName).String())
	// This node's pods, for their annotations (as the kubelet watches them).
	podInf := cache.NewSharedIndexInformer(
		cache.NewListWatchFromClient(deps.Kube.CoreV1().RESTClient(), "pods", "", fields.OneTermEqualSelector("spec.nodeName", cfg.NodeName)),
		&corev1.Pod{}, cfg.ResyncPeriod, cache.Indexers{})
	// Namespaces, for pool access by namespace labels and namespace default pools.
	nsInf := cache.NewSharedIndexInformer(
		cache.NewListWatchFromClient(deps.Kube.CoreV1().RESTClient(), "namespaces", "", fields.Everything()),
		&corev1.Namespace{}, cfg.ResyncPeriod, cache.Indexers{})
	d.informers = []cache.SharedIndexInformer{nodeInf, poolInf, claimInf, podInf, nsInf}
	d.nodes, d.pools, d.claims = nodeInf.GetStore(), poolInf.GetStore(), claimInf.GetIndexer()
	if d.alloc == nil {
		alloc, err := ipam.New(ipam.Config{
			Claims:         deps.Ecloud.IPClaims(),
			Pools:          poolInf,
			ClaimsInformer: claimInf,
			Namespaces:     corelisters.NewNamespaceLister(nsInf.GetIndexer()),
		})
		if err != nil {
			return nil, fmt.Errorf("ipam: %w", err)
		}
		d.alloc = NewIPAMAllocator(alloc, NewClaimAllocator(deps.Kube, deps.Ecloud, d.claims, d.pools, podInf.GetStore()), d.nodes)
	}
	d.syncer = newSyncer(d.syncDatapath)
	if d.follower, err = newLocationFollower(cfg, deps.Kube, deps.Ecloud, locations.Options{OnChange: d.locationChanged}); err != nil {
		return nil, err
	}
	d.locs = d.follower
	d.ports = newPortBatcher(func(ctx context.Context, add []ovs.Port, del []string) error {
		return d.sw.UpdatePorts(ctx, cfg.Bridge, add, del)
	})
	kick := func(full bool) cache.ResourceEventHandler {
		return cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { d.syncer.request(full) },
			UpdateFunc: func(old, cur any) {
				if datapathInputChanged(old, cur) {
					d.syncer.request(full)
				}
			},
			DeleteFunc: func(any) { d.syncer.request(full) },
		}
	}
	// This node (its datapath label) and pools (routes) change more than flows: a full sync.
	// Claims bound here change no flow (local flows come from the ports); other nodes' IPs and
	// nodes joining or leaving change flows only (locationChanged).
	for inf, h := range map[cache.SharedIndexInformer]cache.ResourceEventHandler{nodeInf: kick(true), poolInf: kick(true)} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return nil, fmt.Errorf("informer handler: %w", err)
		}
	}
	return d, nil
}

// datapathInputChanged reports whether an update of this node or of an IPPool changes what a
// full reconcile reads: a Node's labels or spec, an IPPool's spec (its generation), labels or
// deletion. An informer's resync (the resync period has its own reconcile), the kubelet's status
// updates and the ip-controller's pool usage counts change nothing there; a pool's status is
// written at every allocation, and each write would otherwise reconcile every node.
func datapathInputChanged(old, cur any) bool {
	switch o := old.(type) {
	case *corev1.Node:
		c, ok := cur.(*corev1.Node)
		return !ok || !maps.Equal(o.Labels, c.Labels) || !equality.Semantic.DeepEqual(o.Spec, c.Spec)
	case *v1alpha1.IPPool:
		c, ok := cur.(*v1alpha1.IPPool)
		return !ok || o.Generation != c.Generation || !maps.Equal(o.Labels, c.Labels) || !o.DeletionTimestamp.Equal(c.DeletionTimestamp)
	}
	return true
}

// Ready reports whether the daemon serves ADDs.
func (d *Daemon) Ready() bool { return d.ready.Load() }

// Run starts informers, reconciles the datapath, installs the plugin, serves the CNI socket
// and keeps the datapath in sync until ctx ends. On return the socket is removed; the
// datapath stays (pods keep working while netd restarts).
func (d *Daemon) Run(ctx context.Context) error {
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "node", d.cfg.NodeName, "bridge", d.cfg.Bridge)
	ctx = klog.NewContext(ctx, logger)
	defer d.nl.Close()
	defer d.stopRecorder()
	for _, inf := range d.informers {
		go inf.Run(ctx.Done())
	}
	go d.follower.Run(ctx)
	ln, err := d.listen()
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: d.handler(), BaseContext: func(net.Listener) context.Context { return ctx }, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	defer func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		_ = os.Remove(d.cfg.Socket)
	}()

	for _, synced := range append(informersSynced(d.informers), d.follower.HasSynced) {
		if !cache.WaitForCacheSync(ctx.Done(), synced) {
			return fmt.Errorf("netd on %s: informers did not sync: %w", d.cfg.NodeName, ctx.Err())
		}
	}
	d.synced.Store(true)
	d.cfg.Datapath = d.resolveDatapath(ctx)
	logger = logger.WithValues("datapath", d.cfg.Datapath)
	ctx = klog.NewContext(ctx, logger)
	if d.cfg.Datapath == ovs.System {
		if err := d.waitForKernelDatapath(ctx); err != nil {
			d.ready.Store(false)
			return nil // ctx ended
		}
	}
	if err := d.ensureBridge(ctx); err != nil {
		return err
	}
	go d.syncer.run(ctx)
	go d.ports.run(ctx)
	go d.watchPodLinks(ctx)
	if err := d.syncer.sync(ctx, true); err != nil {
		return fmt.Errorf("initial datapath reconcile: %w", err)
	}
	if err := d.install(); err != nil {
		return err
	}
	d.ready.Store(true)
	logger.Info("netd ready", "socket", d.cfg.Socket, "tunnelType", d.cfg.TunnelType)
	if err := d.setNodeCondition(ctx, corev1.ConditionTrue, ReasonDatapathReady,
		fmt.Sprintf("br-int on the %s datapath, %s tunnels", d.cfg.Datapath, d.cfg.TunnelType)); err != nil {
		logger.Error(err, "Setting the node condition failed", "condition", ConditionDatapathReady)
	}
	tick := time.NewTicker(d.cfg.ResyncPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			d.ready.Store(false)
			return nil
		case err := <-serveErr:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("serve %s: %w", d.cfg.Socket, err)
		case <-tick.C:
			if err := d.syncer.sync(ctx, true); err != nil && ctx.Err() == nil {
				logger.Error(err, "Periodic datapath reconcile failed")
			}
		}
	}
}

// listen opens the root-only CNI socket.
func (d *Daemon) listen() (net.Listener, error) {
	dir := filepath.Dir(d.cfg.Socket)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("socket dir %s: %w", dir, err)
	}
	if err := os.Remove(d.cfg.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", d.cfg.Socket, err)
	}
	ln, err := net.Listen("unix", d.cfg.Socket)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", d.cfg.Socket, err)
	}
	if err := os.Chmod(d.cfg.Socket, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", d.cfg.Socket, err)
	}
	return ln, nil
}

func informersSynced(infs []cache.SharedIndexInformer) []cache.InformerSynced {
	out := make([]cache.InformerSynced, 0, len(infs))
	for _, inf := range infs {
		out = append(out, inf.HasSynced)
	}
	return out
}

// locationChanged marks the IPs whose location changed and asks for a flow sync when IPs or
// the set of nodes changed. This node's slices count too: an IP that moved here loses its
// remote flow.
func (d *Daemon) locationChanged(c locations.Change) {
	if !c.Written.IsZero() {
		locationDelay.Observe(c.Seen.Sub(c.Written).Seconds())
	}
	if len(c.IPs) > 0 || c.Nodes {
		d.markChanged(c.IPs, c.Nodes)
		d.syncer.request(false)
	}
}
