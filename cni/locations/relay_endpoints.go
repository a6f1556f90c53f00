package locations

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ServiceRelays lists the ready endpoints of the Service namespace/name from its EndpointSlices,
// as base URLs (scheme://address:port of the port called portName), sorted. The relays run on
// the host network, so this needs neither cluster DNS nor a service proxy.
func ServiceRelays(kube kubernetes.Interface, namespace, name, scheme, portName string) func(context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		list, err := kube.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + name,
		})
		if err != nil {
			return nil, fmt.Errorf("endpoints of the location relay service %s/%s: %w", namespace, name, err)
		}
		var out []string
		for _, es := range list.Items {
			port := int32(0)
			for _, p := range es.Ports {
				if p.Port != nil && (p.Name != nil && *p.Name == portName || len(es.Ports) == 1) {
					port = *p.Port
				}
			}
			if port == 0 {
				continue
			}
			for _, ep := range es.Endpoints {
				if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
					continue
				}
				for _, a := range ep.Addresses {
					u := scheme + "://" + net.JoinHostPort(a, strconv.Itoa(int(port)))
					if !slices.Contains(out, u) {
						out = append(out, u)
					}
				}
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("the location relay service %s/%s has no ready endpoint with a port %q", namespace, name, portName)
		}
		slices.Sort(out)
		return out, nil
	}
}

// StaticRelays is a fixed list of relay URLs.
func StaticRelays(urls []string) func(context.Context) ([]string, error) {
	return func(context.Context) ([]string, error) { return urls, nil }
}
