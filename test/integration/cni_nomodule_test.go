package integration

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ecloud-io/ecloud/cni/netd"
	"github.com/ecloud-io/ecloud/cni/nodeapi"
	"github.com/ecloud-io/ecloud/cni/ovs"
	"github.com/ecloud-io/ecloud/test/harness"
)

// TestCNISystemDatapathWithoutModule: netd with --datapath=system on a kernel without the
// openvswitch module stays not ready and says why: CNI ADD fails at once with code 50 naming
// the module, STATUS reports it, the Node condition is False with reason KernelModuleMissing, a
// Warning Event on the Node says what to do, DEL still succeeds, and no bridge is made.
func TestCNISystemDatapathWithoutModule(t *testing.T) {
	if _, err := os.Stat("/sys/module/openvswitch"); err == nil {
		t.Skip("this kernel has the openvswitch module loaded: the case needs a kernel without it")
	}
	e := newCNIEnv(t, 1, "", func(e *cniEnv) { e.datapath = ovs.System })
	h := e.hosts[0]
	if h.daemon.Ready() {
		t.Fatal("netd is ready on the system datapath without the openvswitch module")
	}
	if r := h.daemon.NotReadyReason(); !strings.Contains(r, "openvswitch kernel module") || !strings.Contains(r, netd.DatapathLabel) {
		t.Errorf("not-ready reason %q does not name the module and the label to use instead", r)
	}
	e.createPool("enomod", "10.63.0.0/24", "10.63.0.1", 0, true)

	p := e.newPod(h, "nomod", nil)
	r := h.invoke("ADD", p.env(true), h.netConf(nil))
	if r.Err == nil {
		t.Fatalf("ADD succeeded on a node without the openvswitch module: %s", r.Stdout)
	}
	if r.Code != nodeapi.CodeNotAvailable || !strings.Contains(r.Msg, "openvswitch kernel module is not loaded") {
		t.Errorf("ADD error code %d msg %q, want code %d naming the openvswitch module", r.Code, r.Msg, nodeapi.CodeNotAvailable)
	}
	if veths := h.hostVeths(); len(veths) != 0 {
		t.Errorf("the refused ADD left host veths: %v", veths)
	}
	st := h.invoke("STATUS", nil, h.netConf(nil))
	if st.Code != nodeapi.CodeNotAvailable || !strings.Contains(string(st.Stdout), "openvswitch") {
		t.Errorf("STATUS: code %d, %s", st.Code, st.Stdout)
	}
	// The runtime's DEL after the failed ADD must not fail (the pod could never be removed).
	p.del(t, true)
	claims, err := e.cp.Ecloud.IPClaims().List(e.cp.Ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(claims.Items) != 0 {
		t.Errorf("claims after the refused ADD: %d", len(claims.Items))
	}
	if err := exec.Command("ovs-vsctl", "--db="+h.OVS.DB(), "br-exists", "br-int").Run(); err == nil {
		t.Error("netd created br-int although the datapath cannot exist")
	}

	var cond *corev1.NodeCondition
	harness.Eventually(t, 10*time.Second, func() (bool, error) {
		n, err := e.cp.Kube.CoreV1().Nodes().Get(e.cp.Ctx, h.Node, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for i := range n.Status.Conditions {
			if n.Status.Conditions[i].Type == netd.ConditionDatapathReady {
				cond = &n.Status.Conditions[i]
			}
		}
		return cond != nil, nil
	}, "node condition %s", netd.ConditionDatapathReady)
	if cond.Status != corev1.ConditionFalse || cond.Reason != netd.ReasonKernelModuleMissing || !strings.Contains(cond.Message, "openvswitch") {
		t.Errorf("node condition %+v", cond)
	}
	harness.Eventually(t, 10*time.Second, func() (bool, error) {
		evs, err := e.cp.Kube.CoreV1().Events("").List(e.cp.Ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, ev := range evs.Items {
			if ev.InvolvedObject.Kind == "Node" && ev.InvolvedObject.Name == h.Node && ev.Type == corev1.EventTypeWarning &&
				ev.Reason == netd.ReasonKernelModuleMissing && strings.Contains(ev.Message, "modprobe openvswitch") {
				return true, nil
			}
		}
		return false, nil
	}, "a Warning Event %s on node %s", netd.ReasonKernelModuleMissing, h.Node)
}
