package harness

import (
	"context"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// PodIPFunc returns the IP a simulated kubelet reports for a pod ("" for none).
type PodIPFunc func(ctx context.Context, pod *v1.Pod) (string, error)

// SimulateKubelets stands in for the kubelets of kubelet-less Nodes in integration tests: a pod
// bound to a node is marked Running and Ready (with the IP from podIP, if given), and a bound pod
// that is terminating is deleted for good, as its kubelet would once the containers stopped. No
// container runs: end-to-end tests use real kubelets instead.
func (cp *ControlPlane) SimulateKubelets(tb testing.TB, podIP PodIPFunc) {
	tb.Helper()
	ctx, cancel := context.WithCancel(cp.Ctx)
	factory := informers.NewSharedInformerFactory(cp.Kube, 0)
	podInformer := factory.Core().V1().Pods()
	lister := podInformer.Lister()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}); err != nil {
		cancel()
		tb.Fatalf("harness: kubelet simulator handler: %v", err)
	}
	sync1 := func(key string) error {
		ns, name, err := cache.SplitMetaNamespaceKey(key)
		if err != nil {
			return nil
		}
		pod, err := lister.Pods(ns).Get(name)
		if apierrors.IsNotFound(err) {
			return nil
		} else if err != nil {
			return err
		}
		if pod.Spec.NodeName == "" {
			return nil
		}
		if pod.DeletionTimestamp != nil {
			err := cp.Kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
				GracePeriodSeconds: new(int64),
				Preconditions:      &metav1.Preconditions{UID: &pod.UID},
			})
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				return nil
			}
			return err
		}
		if pod.Status.Phase == v1.PodRunning {
			return nil
		}
		ip := ""
		if podIP != nil {
			if ip, err = podIP(ctx, pod); err != nil {
				return err
			}
		}
		p := pod.DeepCopy()
		now := metav1.Now()
		p.Status.Phase = v1.PodRunning
		p.Status.StartTime = &now
		p.Status.HostIP = "127.0.0.1"
		if ip != "" {
			p.Status.PodIP = ip
			p.Status.PodIPs = []v1.PodIP{{IP: ip}}
		}
		p.Status.Conditions = []v1.PodCondition{
			{Type: v1.PodScheduled, Status: v1.ConditionTrue, LastTransitionTime: now},
			{Type: v1.PodInitialized, Status: v1.ConditionTrue, LastTransitionTime: now},
			{Type: v1.ContainersReady, Status: v1.ConditionTrue, LastTransitionTime: now},
			{Type: v1.PodReady, Status: v1.ConditionTrue, LastTransitionTime: now},
		}
		p.Status.ContainerStatuses = nil
		for _, c := range p.Spec.Containers {
			p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, v1.ContainerStatus{
				Name: c.Name, Image: c.Image, Ready: true, Started: new(bool),
				State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: now}},
			})
		}
		_, err = cp.Kube.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			return nil // a newer version is on its way through the informer
		}
		return err
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				key, shutdown := queue.Get()
				if shutdown {
					return
				}
				if err := sync1(key); err != nil && ctx.Err() == nil {
					klog.FromContext(ctx).V(2).Info("kubelet simulator: retrying pod", "pod", key, "err", err)
					queue.AddRateLimited(key)
				} else {
					queue.Forget(key)
				}
				queue.Done(key)
			}
		}()
	}
	tb.Cleanup(func() {
		cancel()
		queue.ShutDown()
		factory.Shutdown()
		waitGroupTimeout(tb, &wg, 30*time.Second, "kubelet simulator")
	})
}
