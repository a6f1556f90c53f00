package report

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
	"github.com/ecloud-io/ecloud/cni/ipam"
)

// Plugins a refusal can come from.
const (
	PluginDualDatacenter = "DualDatacenter"
	PluginIPPool         = "IPPool"
	PluginCNI            = "CNI"
)

// WhyReport is the answer of `kubectl ecloud why <pod>`.
type WhyReport struct {
	Pod   string `json:"pod"`
	Phase string `json:"phase"`
	Node  string `json:"node,omitempty"`
	// State is Unschedulable, ContainerCreating, or the pod's phase when nothing holds it.
	State string `json:"state"`
	// Message is the scheduler's (or kubelet's) message the refusals were read from.
	Message string `json:"message,omitempty"`
	// Refusals are the reasons, in plain words with the fix.
	Refusals []Refusal `json:"refusals"`
}

// Refusal is one reason a pod does not start.
type Refusal struct {
	// Plugin is DualDatacenter, IPPool, CNI, or "" for the scheduler's other plugins.
	Plugin string `json:"plugin,omitempty"`
	// Nodes is how many nodes were refused for this reason (0: all, before filtering).
	Nodes int `json:"nodes,omitempty"`
	// Pool names the IP pool(s) involved.
	Pool string `json:"pool,omitempty"`
	// Raw is the message as the component wrote it; Plain and Fix say it in plain words.
	Raw   string `json:"raw"`
	Plain string `json:"plain"`
	Fix   string `json:"fix,omitempty"`
}

// Event reasons read by BuildWhy: the scheduler's and the kubelet's.
const (
	eventFailedScheduling = "FailedScheduling"
	eventFailedSandbox    = "FailedCreatePodSandBox"
)

// BuildWhy explains why a pod is not running from its status and its Events (newest last).
func BuildWhy(pod *corev1.Pod, events []corev1.Event) *WhyReport {
	r := &WhyReport{Pod: pod.Namespace + "/" + pod.Name, Phase: string(pod.Status.Phase), Node: pod.Spec.NodeName, State: string(pod.Status.Phase), Refusals: []Refusal{}}
	sort.SliceStable(events, func(i, j int) bool { return eventTime(&events[i]).Before(eventTime(&events[j])) })
	latest := func(reasons ...string) *corev1.Event {
		for i := len(events) - 1; i >= 0; i-- {
			for _, reason := range reasons {
				if events[i].Reason == reason {
					return &events[i]
				}
			}
		}
		return nil
	}
	switch {
	case pod.DeletionTimestamp != nil:
		r.State = "Terminating"
	case pod.Spec.NodeName == "" && pod.Status.Phase == corev1.PodPending:
		r.State = "Unschedulable"
		if e := latest(eventFailedScheduling); e != nil {
			r.Message = e.Message
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && r.Message == "" {
				r.Message = c.Message
			}
		}
		if r.Message == "" {
			r.State = "Pending"
			r.Refusals = append(r.Refusals, Refusal{Plain: fmt.Sprintf("not scheduled yet and no refusal recorded: is the scheduler %q running?", pod.Spec.SchedulerName),
				Fix: "check the scheduler's pods and logs in kube-system"})
			return r
		}
		r.Refusals = ParseSchedulerMessage(r.Message)
		// ipam refusals are also Events whose reason is the ipam Reason; add those the
		// scheduler's message does not carry (the CNI's, a bind-time refusal).
		for i := range events {
			if isIPAMReason(events[i].Reason) && !strings.Contains(r.Message, events[i].Message) {
				r.Refusals = append(r.Refusals, ipamRefusal(events[i].Message, 0))
			}
		}
	case pod.Status.Phase == corev1.PodPending && waitingFor(pod, "ContainerCreating"):
		r.State = "ContainerCreating"
		e := latest(eventFailedSandbox)
		if e == nil {
			r.Refusals = append(r.Refusals, Refusal{Plain: "the sandbox is being created; no failure recorded yet"})
			return r
		}
		r.Message = e.Message
		r.Refusals = append(r.Refusals, ParseSandboxMessage(e.Message, pod.Spec.NodeName))
	default:
		if w := waitingReason(pod); w != "" {
			r.State = w
		}
	}
	return r
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func waitingFor(pod *corev1.Pod, reason string) bool {
	if len(pod.Status.ContainerStatuses) == 0 {
		return reason == "ContainerCreating"
	}
	return waitingReason(pod) == reason
}

func waitingReason(pod *corev1.Pod) string {
	for _, s := range pod.Status.ContainerStatuses {
		if s.State.Waiting != nil {
			return s.State.Waiting.Reason
		}
	}
	return ""
}

func isIPAMReason(reason string) bool {
	switch ipam.Reason(reason) {
	case ipam.ReasonPoolExhausted, ipam.ReasonNamespaceNotAllowed, ipam.ReasonIPHeld, ipam.ReasonUnknownPool, ipam.ReasonIPOutsidePool,
		ipam.ReasonMalformedAnnotation, ipam.ReasonPoolUnusable, ipam.ReasonNoPool, ipam.ReasonNodeNotReached:
		return true
	}
	return false
}

var (
	schedulerPrefix = regexp.MustCompile(`^\d+/\d+ nodes are available:\s*`)
	// reasonStart finds where a counted reason ("3 node(s) ...") begins.
	reasonStart = regexp.MustCompile(`(?:^|, )(\d+) `)
)

// ParseSchedulerMessage splits a FailedScheduling message ("0/6 nodes are available: <prefilter
// message>. 3 node(s) ..., 3 node(s) .... preemption: ...") into its reasons and explains each.
func ParseSchedulerMessage(msg string) []Refusal {
	body := msg
	if i := strings.Index(body, " preemption:"); i >= 0 {
		body = body[:i]
	}
	body = strings.TrimSpace(schedulerPrefix.ReplaceAllString(strings.TrimSpace(body), ""))
	body = strings.TrimSuffix(body, ".")
	out := []Refusal{}
	starts := reasonStart.FindAllStringSubmatchIndex(body, -1)
	if len(starts) == 0 || starts[0][0] > 0 {
		// A PreFilter refusal (before any node was looked at) comes first, without a count.
		end := len(body)
		if len(starts) > 0 {
			end = starts[0][0]
		}
		if pre := strings.TrimSuffix(strings.TrimSpace(body[:end]), "."); pre != "" {
			out = append(out, Explain(pre, 0))
		}
	}
	for i, s := range starts {
		end := len(body)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		n, _ := strconv.Atoi(body[s[2]:s[3]])
		out = append(out, Explain(strings.TrimSuffix(strings.TrimSpace(body[s[3]+1:end]), "."), n))
	}
	return out
}

var (
	ddLeave   = regexp.MustCompile(`^node\(s\) in (\S+) would leave (?:revision (\S+) of )?(.+?) with 0 pods in (\S+?)(; .*)?$`)
	ddSkew    = regexp.MustCompile(`^node\(s\) in (\S+) would skew (?:revision (\S+) of )?(.+?) beyond maxSkew (\d+) \((.*?)\)(; .*)?$`)
	ddOutside = regexp.MustCompile(`^node\(s\) outside the datacenters \[(.*)\] \(label (\S+)\)$`)
	ddOut     = regexp.MustCompile(`^node\(s\) in (\S+), which is out$`)
	ddOutage  = regexp.MustCompile(`^; datacenter\(s\) \[(.*)\] out, outagePolicy (\S+)$`)
	ipSticky  = regexp.MustCompile(`^node\(s\) not reached by IP pool (\S+) of the pod's sticky IP (\S+)$`)
	ipReach   = regexp.MustCompile(`^node\(s\) not reached by IP pool\(s\) (\S+)$`)
	ipEmpty   = regexp.MustCompile(`^IP pool\(s\) (\S+) exhausted: no free IP$`)
	// ipamPool finds the pool named in an ipam refusal.
	ipamPool = regexp.MustCompile(`(?:IP pool|in pool|pool) "?([a-z0-9][a-z0-9.-]*(?:, [a-z0-9][a-z0-9.-]*)*)"?`)
	ipamText = regexp.MustCompile(`(?i)\bip pool|pool exhausted|no ip pool|annotation ` + regexp.QuoteMeta("ecloud.io/ip-"))
)

// Explain says one scheduler reason (refusing n nodes) in plain words with the fix.
func Explain(raw string, n int) Refusal {
	r := Refusal{Raw: raw, Nodes: n}
	outage := func(suffix string) string {
		if m := ddOutage.FindStringSubmatch(suffix); m != nil {
			return fmt.Sprintf("; datacenter(s) %s have no usable node and the outage policy is %s, so the rule is kept although it blocks", m[1], m[2])
		}
		return ""
	}
	of := func(rev, group string) string {
		if rev != "" {
			return "revision " + rev + " of " + group
		}
		return group
	}
	var m []string
	switch {
	case match(ddLeave, raw, &m):
		r.Plugin = PluginDualDatacenter
		r.Plain = fmt.Sprintf("%s has no pod in %s yet, so the two-datacenter rule sends the next one to %s, not to %s%s",
			of(m[2], m[3]), m[4], m[4], m[1], outage(m[5]))
		r.Fix = fmt.Sprintf("let a node in %s take the pod: the other reasons say why %s's nodes refuse it (resources, taints, cordons)", m[4], m[4])
	case match(ddSkew, raw, &m):
		r.Plugin = PluginDualDatacenter
		r.Plain = fmt.Sprintf("one more pod of %s in %s would put it more than %s ahead of the other datacenter (%s)%s", of(m[2], m[3]), m[1], m[4], m[5], outage(m[6]))
		r.Fix = "make room in the datacenter that is behind (the other reasons say why its nodes refuse the pod), or lower the replicas"
	case match(ddOutside, raw, &m):
		r.Plugin = PluginDualDatacenter
		r.Plain = fmt.Sprintf("these nodes are in none of the datacenters %s (node label %s)", m[1], m[2])
		r.Fix = fmt.Sprintf("label the nodes %s=<datacenter> if they belong to one", m[2])
	case match(ddOut, raw, &m):
		r.Plugin = PluginDualDatacenter
		r.Plain = fmt.Sprintf("datacenter %s is out (no Ready, schedulable node) and the outage policy holds the pod instead of placing it in one datacenter only", m[1])
		r.Fix = fmt.Sprintf("bring a node of %s back (Ready, uncordoned), or set outagePolicy: Degrade in the DualDatacenter args", m[1])
	case match(ipSticky, raw, &m):
		r.Plugin, r.Pool = PluginIPPool, m[1]
		r.Plain = fmt.Sprintf("the pod keeps its sticky IP %s of pool %s, and pool %s does not reach these nodes", m[2], m[1], m[1])
		r.Fix = fmt.Sprintf("let a node that pool %s reaches take the pod, or free the IP (kubectl ecloud ip %s says how)", m[1], m[2])
	case match(ipReach, raw, &m):
		r.Plugin, r.Pool = PluginIPPool, m[1]
		r.Plain = fmt.Sprintf("IP pool(s) %s, which the pod draws from, do not reach these nodes (the pool's spec.nodeSelector)", m[1])
		r.Fix = fmt.Sprintf("name a pool that reaches them in %s, or widen the spec.nodeSelector of %s", v1alpha1.AnnotationIPPools, m[1])
	case match(ipEmpty, raw, &m):
		r.Plugin, r.Pool = PluginIPPool, m[1]
		r.Plain = fmt.Sprintf("IP pool(s) %s have no free IP", m[1])
		r.Fix = fmt.Sprintf("add addresses to %s (spec.cidr/includeRanges), free leaked ones (kubectl ecloud pools), or name another pool in %s", m[1], v1alpha1.AnnotationIPPools)
	case ipamText.MatchString(raw):
		return ipamRefusal(raw, n)
	default:
		r.Plain = raw
	}
	return r
}

// ipamRefusal is a cni/ipam refusal: its message already says what is wrong and the fix
// ("<what>: <fix>").
func ipamRefusal(raw string, n int) Refusal {
	r := Refusal{Plugin: PluginIPPool, Raw: raw, Nodes: n, Plain: raw}
	if m := ipamPool.FindStringSubmatch(raw); m != nil {
		r.Pool = m[1]
	}
	return r
}

func match(re *regexp.Regexp, s string, m *[]string) bool {
	*m = re.FindStringSubmatch(s)
	return *m != nil
}

// cniFailure finds the CNI plugin's message in a FailedCreatePodSandBox event: containerd writes
// `... failed to setup network for sandbox "<id>": plugin type="ecloud-cni" name="<net>" failed
// (add): <message>`.
var cniFailure = regexp.MustCompile(`plugin type="([^"]+)"(?: name="[^"]*")? failed \((add|delete|check)\): (.*)$`)

// ParseSandboxMessage explains a kubelet FailedCreatePodSandBox message.
func ParseSandboxMessage(msg, node string) Refusal {
	m := cniFailure.FindStringSubmatch(msg)
	if m == nil {
		return Refusal{Raw: msg, Plain: msg, Fix: fmt.Sprintf("read the kubelet and container runtime logs on node %s", node)}
	}
	r := Refusal{Plugin: PluginCNI, Raw: m[3], Plain: fmt.Sprintf("the CNI plugin %s failed to %s the pod's network: %s", m[1], m[2], m[3])}
	switch {
	case ipamText.MatchString(m[3]):
		r.Pool = ipamRefusal(m[3], 0).Pool
		r.Fix = "the IP pool refused the pod: the message above says the fix"
	case strings.Contains(m[3], "netd"):
		r.Fix = fmt.Sprintf("look at netd on node %s: kubectl -n kube-system get pods -l app.kubernetes.io/name=ecloud-netd --field-selector spec.nodeName=%s, then its logs", node, node)
	default:
		r.Fix = fmt.Sprintf("look at the logs of netd on node %s (kubectl -n kube-system logs -l app.kubernetes.io/name=ecloud-netd)", node)
	}
	return r
}

// Table implements Renderer.
func (r *WhyReport) Table(w io.Writer, wide bool) error {
	fmt.Fprintf(w, "Pod %s is %s", r.Pod, r.State)
	if r.Node != "" {
		fmt.Fprintf(w, " on node %s", r.Node)
	}
	fmt.Fprintln(w, ".")
	if len(r.Refusals) == 0 {
		_, err := fmt.Fprintln(w, "Nothing holds it back.")
		return err
	}
	for _, f := range r.Refusals {
		who := f.Plugin
		if who == "" {
			who = "scheduler"
		}
		nodes := ""
		if f.Nodes > 0 {
			nodes = fmt.Sprintf(" (%d node(s))", f.Nodes)
		}
		fmt.Fprintf(w, "- %s%s: %s\n", who, nodes, f.Plain)
		if f.Fix != "" {
			fmt.Fprintf(w, "  Fix: %s\n", f.Fix)
		}
		if wide && f.Raw != f.Plain {
			fmt.Fprintf(w, "  Message: %s\n", f.Raw)
		}
	}
	if wide && r.Message != "" {
		fmt.Fprintf(w, "Full message: %s\n", r.Message)
	}
	return nil
}
