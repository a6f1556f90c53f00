package dcrule

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	appslisters "k8s.io/client-go/listers/apps/v1"

	"github.com/ecloud-io/ecloud/cni/api/v1alpha1"
)

// Kind is what a group is made of.
type Kind string

// Group kinds, as they appear in messages ("deployment shop/web").
const (
	KindDeployment  Kind = "deployment"
	KindStatefulSet Kind = "statefulset"
	KindReplicaSet  Kind = "replicaset"
	KindLabel       Kind = "group" // pods sharing an ecloud.io/group label value
)

const (
	kindReplicaSet  = "ReplicaSet"
	kindStatefulSet = "StatefulSet"
	kindDeployment  = "Deployment"
)

// Group is a set of pods that must be spread over the datacenters: a workload, or the pods of
// one namespace sharing an ecloud.io/group label.
type Group struct {
	Kind      Kind
	Namespace string
	Name      string
	// Replicas is the desired replica count of the pod's controller, or -1 when unknown.
	Replicas int32
	// owners are the controller UIDs whose pods belong to the group (workload kinds).
	owners sets.Set[types.UID]
}

// String names the group in messages, e.g. "deployment shop/web".
func (g *Group) String() string { return fmt.Sprintf("%s %s/%s", g.Kind, g.Namespace, g.Name) }

// Key identifies the group.
func (g *Group) Key() string { return string(g.Kind) + "/" + g.Namespace + "/" + g.Name }

// Owners is the number of controllers whose pods make up the group (0 for a label group).
func (g *Group) Owners() int { return g.owners.Len() }

// Revision says whether pod belongs to the group and, if so, which revision of it: the
// ReplicaSet of a Deployment, the controller-revision-hash of a StatefulSet, the
// pod-template-hash (or controller-revision-hash) of a labelled pod.
func (g *Group) Revision(pod *v1.Pod) (string, bool) {
	if pod.Namespace != g.Namespace {
		return "", false
	}
	value, labelled := pod.Labels[v1alpha1.LabelGroup]
	if g.Kind == KindLabel {
		if !labelled || value != g.Name {
			return "", false
		}
		if h := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]; h != "" {
			return h, true
		}
		return pod.Labels[appsv1.ControllerRevisionHashLabelKey], true
	}
	ref := metav1.GetControllerOf(pod)
	if labelled || ref == nil || !g.owners.Has(ref.UID) {
		return "", false
	}
	switch g.Kind {
	case KindDeployment:
		return ref.Name, true
	case KindStatefulSet:
		return pod.Labels[appsv1.ControllerRevisionHashLabelKey], true
	default:
		return "", true
	}
}

// MayHaveGroup is a cheap, lister-free test: false means the pod is certainly in no group.
func MayHaveGroup(pod *v1.Pod) bool {
	if pod.Labels[v1alpha1.LabelGroup] != "" {
		return true
	}
	ref := metav1.GetControllerOf(pod)
	return ref != nil && (ref.Kind == kindReplicaSet || ref.Kind == kindStatefulSet)
}

// Exempt reports whether the pod asked out of the rule (ecloud.io/dual-dc: exempt) and may be:
// only single-replica workloads (or bare, labelled pods) can be exempt.
func Exempt(pod *v1.Pod, g *Group) bool {
	return pod.Annotations[v1alpha1.AnnotationDualDC] == v1alpha1.DualDCExempt && g.Replicas <= 1
}

// Resolver finds pods' groups from ReplicaSet and StatefulSet listers.
type Resolver struct {
	ReplicaSets  appslisters.ReplicaSetLister
	StatefulSets appslisters.StatefulSetLister
}

// GroupOf returns the pod's group, or nil when the pod is in none (a bare pod, a DaemonSet or Job
// pod). It fails when the pod's controller is not in the listers' caches yet.
func (r *Resolver) GroupOf(pod *v1.Pod) (*Group, error) {
	if name := pod.Labels[v1alpha1.LabelGroup]; name != "" {
		return &Group{Kind: KindLabel, Namespace: pod.Namespace, Name: name, Replicas: -1}, nil
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return nil, nil
	}
	switch ref.Kind {
	case kindStatefulSet:
		sts, err := r.StatefulSets.StatefulSets(pod.Namespace).Get(ref.Name)
		if err != nil {
			return nil, fmt.Errorf("looking up statefulset %s/%s of pod %s: %w", pod.Namespace, ref.Name, pod.Name, err)
		}
		return &Group{Kind: KindStatefulSet, Namespace: pod.Namespace, Name: sts.Name, Replicas: replicas(sts.Spec.Replicas),
			owners: sets.New(sts.UID)}, nil
	case kindReplicaSet:
		rs, err := r.ReplicaSets.ReplicaSets(pod.Namespace).Get(ref.Name)
		if err != nil {
			return nil, fmt.Errorf("looking up replicaset %s/%s of pod %s: %w", pod.Namespace, ref.Name, pod.Name, err)
		}
		return r.replicaSetGroup(rs)
	}
	return nil, nil
}

// replicaSetGroup is the group of a ReplicaSet's pods: its Deployment's (every ReplicaSet of it
// is a revision) or its own.
func (r *Resolver) replicaSetGroup(rs *appsv1.ReplicaSet) (*Group, error) {
	dref := metav1.GetControllerOf(rs)
	if dref == nil || dref.Kind != kindDeployment {
		return &Group{Kind: KindReplicaSet, Namespace: rs.Namespace, Name: rs.Name, Replicas: replicas(rs.Spec.Replicas), owners: sets.New(rs.UID)}, nil
	}
	all, err := r.ReplicaSets.ReplicaSets(rs.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("listing replicasets of deployment %s/%s: %w", rs.Namespace, dref.Name, err)
	}
	g := &Group{Kind: KindDeployment, Namespace: rs.Namespace, Name: dref.Name, Replicas: replicas(rs.Spec.Replicas), owners: sets.New[types.UID]()}
	for _, other := range all {
		if o := metav1.GetControllerOf(other); o != nil && o.UID == dref.UID {
			g.owners.Insert(other.UID)
		}
	}
	g.owners.Insert(rs.UID)
	return g, nil
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}
