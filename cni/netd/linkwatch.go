package netd

// A pod's veth can vanish without a CNI DEL reaching netd: the runtime gives up on a sandbox
// whose ADD failed (netd restarting) and removes its network namespace, and the veth goes with
// it. The kernel datapath then reports the port's ofport as -1, but the userspace datapath keeps
// the number of the device that vanished, and the port's flows would keep delivering to
// nothing. netd watches the host's links: when the veth of a port it holds as live goes away, a
// full sync removes the port (it checks every pod port against the host's links).

import (
	"context"
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// linkWatchRetry is the pause before subscribing again after the link subscription failed.
const linkWatchRetry = time.Second

// watchPodLinks asks for a full sync whenever the veth of a live pod port is deleted, until
// ctx ends. A subscription that fails (e.g. its socket overflowed) may have missed deletions:
// it is renewed and a full sync runs.
func (d *Daemon) watchPodLinks(ctx context.Context) {
	logger := klog.FromContext(ctx)
	for ctx.Err() == nil {
		updates := make(chan netlink.LinkUpdate, 256)
		done := make(chan struct{})
		opts := netlink.LinkSubscribeOptions{ErrorCallback: func(err error) {
			logger.V(2).Info("Link subscription ended", "err", err)
		}}
		err := d.subscribeLinks(updates, done, opts)
		if err != nil {
			logger.Error(err, "Watching host links failed")
			close(done)
			pause(ctx, linkWatchRetry)
			continue
		}
		d.followLinkUpdates(ctx, updates)
		close(done)
		if ctx.Err() == nil {
			d.syncer.request(true)
			pause(ctx, linkWatchRetry)
		}
	}
}

// subscribeLinks subscribes to the link updates of the host's network namespace.
func (d *Daemon) subscribeLinks(updates chan netlink.LinkUpdate, done chan struct{}, opts netlink.LinkSubscribeOptions) error {
	if d.cfg.HostNetNS == "" {
		return netlink.LinkSubscribeWithOptions(updates, done, opts)
	}
	ns, err := netns.GetFromPath(d.cfg.HostNetNS)
	if err != nil {
		return fmt.Errorf("host netns %s: %w", d.cfg.HostNetNS, err)
	}
	defer ns.Close() // the subscription's socket is open in it once subscribed
	opts.Namespace = &ns
	return netlink.LinkSubscribeWithOptions(updates, done, opts)
}

// followLinkUpdates handles link updates until the channel closes or ctx ends.
func (d *Daemon) followLinkUpdates(ctx context.Context, updates <-chan netlink.LinkUpdate) {
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-updates:
			if !ok {
				return
			}
			if u.Header.Type != unix.RTM_DELLINK || u.Link == nil {
				continue
			}
			if name := u.Attrs().Name; d.isLivePort(name) {
				klog.FromContext(ctx).Info("The veth of a live pod port vanished without a CNI DEL: reconciling the bridge", "port", name)
				d.syncer.request(true)
			}
		}
	}
}

// isLivePort reports whether port is a pod port netd holds as attached and not being added.
func (d *Daemon) isLivePort(port string) bool {
	d.attachMu.Lock()
	defer d.attachMu.Unlock()
	if d.attachingPorts[port] > 0 {
		return false
	}
	if _, ok := d.listed[port]; ok {
		return true
	}
	for _, p := range d.attached {
		if p.Name == port {
			return true
		}
	}
	return false
}

// pause waits for wait or until ctx ends.
func pause(ctx context.Context, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
