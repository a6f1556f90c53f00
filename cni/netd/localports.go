package netd

// The daemon's own record of this node's pod ports, which flow-only syncs compute the local
// flows from without asking OVS: the pod ports the last full sync listed, plus the attachments
// this process made since (their OpenFlow numbers are requested by netd, so known up front),
// minus the ports deleted since.

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

// firstPodOFPort is where netd's own numbering of pod ports starts; OVS numbers the gateway
// and tunnel ports from 1 upwards.
const firstPodOFPort = 1000

// attaching marks a port as being added, so a concurrent reconcile does not mistake it for
// stale; the returned func unmarks it.
func (d *Daemon) attaching(port string) func() {
	d.attachMu.Lock()
	d.attachingPorts[port]++
	d.attachMu.Unlock()
	return func() {
		d.attachMu.Lock()
		defer d.attachMu.Unlock()
		if d.attachingPorts[port]--; d.attachingPorts[port] <= 0 {
			delete(d.attachingPorts, port)
		}
	}
}

func (d *Daemon) isAttaching(port string) bool {
	d.attachMu.Lock()
	defer d.attachMu.Unlock()
	return d.attachingPorts[port] > 0
}

// reserveOFPortLocked picks a free OpenFlow port number for a new pod port (callers hold
// attachMu).
func (d *Daemon) reserveOFPortLocked() int {
	taken := map[int]bool{}
	for n := range d.usedOFPorts {
		taken[n] = true
	}
	for _, p := range d.attached {
		taken[p.OFPortRequest] = true
	}
	for n := firstPodOFPort; ; n++ {
		if !taken[n] {
			return n
		}
	}
}

// prepare records port as its attachment's (with a netd-chosen OpenFlow number) and asks for a
// flow-only sync that installs its flows; it returns the recorded port and the sync's
// generation. An attachment already recorded with the same port keeps its number and sync.
func (d *Daemon) prepare(port ovs.Port) (ovs.Port, uint64) {
	a := nodeapi.Attachment{ContainerID: port.ExternalIDs[extContainer], IfName: port.ExternalIDs[extIfName]}
	d.attachMu.Lock()
	defer d.attachMu.Unlock()
	if have, ok := d.attached[a]; ok && samePort(have, port) && d.flowGen[a] > 0 {
		return have, d.flowGen[a]
	}
	delete(d.attached, a) // a retried ADD gives its number back first
	delete(d.earlyAdds, a)
	port.OFPortRequest = d.reserveOFPortLocked()
	d.attached[a] = port
	d.flowGen[a] = d.syncer.request(false) // the syncer never takes attachMu while holding its lock
	return port, d.flowGen[a]
}

// earlyAdd is a port add started at the lease.
type earlyAdd struct {
	port ovs.Port
	done chan struct{}
	err  error
}

// startPortAdd adds port to OVS in the background for the attach to pick up.
func (d *Daemon) startPortAdd(ctx context.Context, a nodeapi.Attachment, port ovs.Port) {
	e := &earlyAdd{port: port, done: make(chan struct{})}
	d.attachMu.Lock()
	d.earlyAdds[a] = e
	d.attachMu.Unlock()
	// Queued now, so a DEL that follows the lease is applied after it.
	done := d.attaching(port.Name)
	op := d.ports.queueAdd(port)
	go func() {
		defer done()
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		e.err = d.ports.wait(ctx, op)
		close(e.done)
	}()
}

// addPort adds port to OVS for attachment a, or waits for the same add started at the lease.
func (d *Daemon) addPort(ctx context.Context, a nodeapi.Attachment, port ovs.Port) error {
	d.attachMu.Lock()
	e := d.earlyAdds[a]
	d.attachMu.Unlock()
	if e != nil && samePort(e.port, port) && e.port.OFPortRequest == port.OFPortRequest {
		select {
		case <-e.done:
			if e.err == nil {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return d.ports.add(ctx, port)
}

func samePort(a, b ovs.Port) bool {
	return a.Name == b.Name && a.Tag == b.Tag && maps.Equal(a.ExternalIDs, b.ExternalIDs)
}

// pendingPorts are the recorded ports that are not among ports (OVS has not got them: the
// ADD stopped after the lease).
func (d *Daemon) pendingPorts(ports []ovs.Port) []ovs.Port {
	d.attachMu.Lock()
	defer d.attachMu.Unlock()
	var out []ovs.Port
	for _, p := range d.attached {
		if !slices.ContainsFunc(ports, func(q ovs.Port) bool { return q.Name == p.Name }) {
			out = append(out, p)
		}
	}
	return out
}

// beginListing starts a full sync's port listing: ports deleted from now on are left out of
// what it lists, as OVS may still have shown them.
func (d *Daemon) beginListing() {
	d.attachMu.Lock()
	defer d.attachMu.Unlock()
	d.deletedWhileListing = map[string]bool{}
}

// endListing records the listing's live pod ports and OpenFlow numbers in use (nil: the sync
// failed, keep the previous record).
func (d *Daemon) endListing(listed map[string]LocalIP, used map[int]bool) {
	d.attachMu.Lock()
	defer d.attachMu.Unlock()
	if listed != nil {
		for name := range d.deletedWhileListing {
			delete(listed, name)
		}
		d.listed, d.usedOFPorts = listed, used
	}
	d.deletedWhileListing = nil
}

// localIPs are the local pod IPs the flows deliver to: the listed ports and this process's
// attachments, by port name (what OVS reported wins over what netd requested).
func (d *Daemon) localIPs() []LocalIP {
	d.attachMu.Lock()
	defer d.attachMu.Unlock()
	byName := make(map[string]LocalIP, len(d.listed)+len(d.attached))
	for name, l := range d.listed {
		byName[name] = l
	}
	for _, p := range d.attached {
		if _, ok := byName[p.Name]; ok {
			continue
		}
		if l, ok := podLocal(p); ok {
			byName[p.Name] = l
		}
	}
	names := make([]string, 0, len(byName))
	for name := range byName {
		names = append(names, name)
	}
	slices.SortFunc(names, strings.Compare)
	out := make([]LocalIP, 0, len(names))
	for _, name := range names {
		out = append(out, byName[name])
	}
	return out
}

// forget drops an attachment and its port (when named) from the record.
func (d *Daemon) forget(a nodeapi.Attachment, port string) {
	d.attachMu.Lock()
	defer d.attachMu.Unlock()
	delete(d.attached, a)
	delete(d.flowGen, a)
	delete(d.earlyAdds, a)
	if port != "" {
		d.dropPortLocked(port)
	}
}

// dropPort drops a port that is gone from OVS from the record.
func (d *Daemon) dropPort(port string) {
	d.attachMu.Lock()
	defer d.attachMu.Unlock()
	d.dropPortLocked(port)
}

func (d *Daemon) dropPortLocked(port string) {
	delete(d.listed, port)
	for a, p := range d.attached {
		if p.Name == port {
			delete(d.attached, a)
			delete(d.flowGen, a)
			delete(d.earlyAdds, a)
		}
	}
	if d.deletedWhileListing != nil {
		d.deletedWhileListing[port] = true
	}
}

func (d *Daemon) knownAttachment(a nodeapi.Attachment) ([]ovs.Port, bool) {
	d.attachMu.Lock()
	defer d.attachMu.Unlock()
	p, ok := d.attached[a]
	if !ok {
		return nil, false
	}
	return []ovs.Port{p}, true
}
