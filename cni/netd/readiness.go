package netd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
)

// ConditionDatapathReady is the Node condition netd keeps: True once the node's datapath is
// reconciled and netd serves CNI requests, False with a reason while it cannot.
const ConditionDatapathReady corev1.NodeConditionType = "EcloudDatapathReady"

// Reasons of ConditionDatapathReady and of netd's Events on its Node.
const (
	ReasonDatapathReady       = "DatapathReady"
	ReasonKernelModuleMissing = "KernelModuleMissing"
	ReasonBadDatapathLabel    = "InvalidDatapathLabel"
)

// openvswitchModule is the kernel module of the system datapath.
const openvswitchModule = "openvswitch"

// moduleCheckPeriod is how often a node without the module is checked again.
const moduleCheckPeriod = 5 * time.Second

// blockedError is what CNI requests get while the node cannot have a datapath (nil: none).
func (d *Daemon) blockedError() *nodeapi.Error { return d.blocked.Load() }

// resolveDatapath is the datapath of this node: its DatapathLabel, else --datapath. A label
// with another value is reported (Warning Event) and ignored.
func (d *Daemon) resolveDatapath(ctx context.Context) ovs.DatapathType {
	obj, ok, _ := d.nodes.GetByKey(d.cfg.NodeName)
	if !ok {
		return d.cfg.Datapath
	}
	node := obj.(*corev1.Node)
	v, ok := node.Labels[DatapathLabel]
	if !ok {
		return d.cfg.Datapath
	}
	dp := ovs.DatapathType(v)
	if err := dp.Validate(); err != nil {
		msg := fmt.Sprintf("label %s=%q: %v; using --datapath=%s", DatapathLabel, v, err, d.cfg.Datapath)
		klog.FromContext(ctx).Error(err, "Ignoring the node's datapath label", "label", DatapathLabel, "value", v, "datapath", d.cfg.Datapath)
		d.recorder.Event(d.nodeRef(), corev1.EventTypeWarning, ReasonBadDatapathLabel, msg)
		return d.cfg.Datapath
	}
	return dp
}

// moduleLoaded reports whether the kernel has module name loaded (or built in).
func moduleLoaded(moduleDir, name string) (bool, error) {
	_, err := os.Stat(filepath.Join(moduleDir, name))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("kernel module %s: %w", name, err)
}

// waitForKernelDatapath returns once the openvswitch module is loaded. Until then the node is
// blocked: CNI ADDs fail at once with CodeNotAvailable naming the module, /readyz says why,
// the Node condition is False and a Warning Event on the Node says what to do.
func (d *Daemon) waitForKernelDatapath(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	reported := false
	for {
		ok, err := moduleLoaded(d.cfg.ModuleDir, openvswitchModule)
		if ok {
			if reported {
				logger.Info("Kernel module loaded: building the datapath", "module", openvswitchModule)
			}
			d.blocked.Store(nil)
			return nil
		}
		if !reported {
			msg := fmt.Sprintf("the %s kernel module is not loaded on node %s: the system datapath (--datapath=system) needs it "+
				"(modprobe %s on the node, or label the node %s=netdev for the userspace datapath)",
				openvswitchModule, d.cfg.NodeName, openvswitchModule, DatapathLabel)
			if err != nil {
				msg += ": " + err.Error()
			}
			d.blocked.Store(&nodeapi.Error{Code: nodeapi.CodeNotAvailable, Msg: "ecloud netd cannot attach pods: " + msg})
			logger.Error(nil, "Node not ready for pods", "reason", ReasonKernelModuleMissing, "module", openvswitchModule, "message", msg)
			d.recorder.Event(d.nodeRef(), corev1.EventTypeWarning, ReasonKernelModuleMissing, msg)
			if err := d.setNodeCondition(ctx, corev1.ConditionFalse, ReasonKernelModuleMissing, msg); err != nil {
				logger.Error(err, "Setting the node condition failed", "condition", ConditionDatapathReady)
			}
			reported = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(moduleCheckPeriod):
		}
	}
}

// NotReadyReason says why the daemon does not serve ADDs ("" when it does).
func (d *Daemon) NotReadyReason() string {
	if e := d.blockedError(); e != nil {
		return e.Msg
	}
	if !d.Ready() {
		return "datapath not reconciled yet"
	}
	return ""
}

// setNodeCondition writes ConditionDatapathReady into the node's status.
func (d *Daemon) setNodeCondition(ctx context.Context, status corev1.ConditionStatus, reason, msg string) error {
	now := metav1.Now()
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": []corev1.NodeCondition{{
		Type: ConditionDatapathReady, Status: status, Reason: reason, Message: msg,
		LastHeartbeatTime: now, LastTransitionTime: now,
	}}}})
	if err != nil {
		return err
	}
	if _, err := d.kube.CoreV1().Nodes().PatchStatus(ctx, d.cfg.NodeName, patch); err != nil {
		return fmt.Errorf("node %s condition %s=%s: %w", d.cfg.NodeName, ConditionDatapathReady, status, err)
	}
	return nil
}

// nodeRef is this node as the object of Events (the kubelet's convention: UID = name).
func (d *Daemon) nodeRef() *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Node", Name: d.cfg.NodeName, UID: types.UID(d.cfg.NodeName)}
}

// newRecorder records Events through the apiserver as component ecloud-netd on node.
func newRecorder(kube kubernetes.Interface, node string) (record.EventRecorder, func()) {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: Name, Host: node}), b.Shutdown
}
