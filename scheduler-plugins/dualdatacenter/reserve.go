package dualdatacenter

import (
	"context"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"

	"github.com/ecloud-io/ecloud/scheduler-plugins/dcrule"
)

// inflightTTL bounds how long a reservation counts without showing up in the snapshot (a safety
// net: the framework calls Unreserve on every failure after Reserve).
const inflightTTL = 10 * time.Minute

type inflightEntry struct {
	group, revision, datacenter, node string
	since                             time.Time
}

// inflight counts pods reserved in a datacenter that the next snapshot may not hold yet. An entry
// stops counting once its pod is seen in the snapshot (assumed or bound), on PostBind, on
// Unreserve, or after inflightTTL. Without the PostBind removal, a pod bound and deleted before the
// group's next cycle would count as a phantom in its datacenter until the TTL.
type inflight struct {
	mu      sync.Mutex
	entries map[types.UID]inflightEntry
}

func newInflight() *inflight { return &inflight{entries: map[types.UID]inflightEntry{}} }

func (f *inflight) add(uid types.UID, e inflightEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries[uid] = e
	inflightGauge.Set(float64(len(f.entries)))
}

func (f *inflight) remove(uid types.UID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.entries, uid)
	inflightGauge.Set(float64(len(f.entries)))
}

// addUnseen adds the group's reservations whose pods the snapshot does not hold (inSnapshot says)
// to counts, and forgets those it holds and expired ones.
func (f *inflight) addUnseen(group string, inSnapshot func(node string, uid types.UID) bool, counts *dcrule.Counts) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	for uid, e := range f.entries {
		switch {
		case now.Sub(e.since) > inflightTTL:
			delete(f.entries, uid)
		case e.group != group:
		case inSnapshot(e.node, uid):
			delete(f.entries, uid)
		default:
			counts.Add(e.revision, e.datacenter, 1)
		}
	}
	inflightGauge.Set(float64(len(f.entries)))
}

// Reserve records the pod as in flight to its node's datacenter.
func (p *DualDatacenter) Reserve(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodeName string) *fwk.Status {
	s, ok := readState(state)
	if !ok {
		return nil
	}
	ni, err := p.nodeInfos().Get(nodeName)
	if err != nil {
		return fwk.AsStatus(err)
	}
	dc := s.health.Datacenter(ni.Node())
	p.inflight.add(pod.UID, inflightEntry{group: s.group.Key(), revision: s.revision, datacenter: dc, node: nodeName, since: time.Now()})
	klog.FromContext(ctx).V(4).Info("DualDatacenter reserved", "pod", klog.KObj(pod), "group", s.group.String(), "datacenter", dc)
	return nil
}

// Unreserve forgets the reservation; it is idempotent and safe without a Reserve.
func (p *DualDatacenter) Unreserve(_ context.Context, _ fwk.CycleState, pod *v1.Pod, _ string) {
	p.inflight.remove(pod.UID)
}

// PostBind forgets the reservation (the bound pod is in the scheduler's cache from now on, and
// stops counting when it is deleted, however soon) and emits a Warning Event on a pod that
// Degrade placed against the full rule.
func (p *DualDatacenter) PostBind(ctx context.Context, state fwk.CycleState, pod *v1.Pod, nodeName string) {
	p.inflight.remove(pod.UID)
	s, ok := readState(state)
	if !ok {
		return
	}
	ni, err := p.nodeInfos().Get(nodeName)
	if err != nil {
		return
	}
	dc := s.health.Datacenter(ni.Node())
	msg := s.degraded[dc]
	if msg == "" {
		return
	}
	degradedTotal.Inc()
	klog.FromContext(ctx).Info("DualDatacenter degraded placement", "pod", klog.KObj(pod), "node", nodeName, "reason", msg)
	p.handle.EventRecorder().Eventf(pod, nil, v1.EventTypeWarning, ReasonDegraded, "Scheduling", msg)
}

// ReasonDegraded is the reason of the Warning Event emitted on a degraded placement.
const ReasonDegraded = "DualDatacenterDegraded"

// inSnapshot reports whether the scheduler's snapshot holds the pod on the node (assumed or bound).
func (p *DualDatacenter) inSnapshot(node string, uid types.UID) bool {
	ni, err := p.nodeInfos().Get(node)
	if err != nil {
		return false
	}
	for _, pi := range ni.GetPods() {
		if pi.GetPod().UID == uid {
			return true
		}
	}
	return false
}
