package agent

import (
	"context"

	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
)

// Component is the event source of the agent.
const Component = "ecloud-node-agent"

// NewRecorder returns an event recorder writing to the API server; stop it with the returned func.
func NewRecorder(ctx context.Context, kube kubernetes.Interface, node string) (record.EventRecorder, func()) {
	bc := record.NewBroadcaster(record.WithContext(ctx))
	bc.StartStructuredLogging(4)
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	return bc.NewRecorder(scheme.Scheme, v1.EventSource{Component: Component, Host: node}), bc.Shutdown
}
