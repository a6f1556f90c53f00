package locations

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// TunnelIPAnnotation on a Node overrides its tunnel endpoint (default: its first InternalIP).
const TunnelIPAnnotation = "network.ecloud.io/tunnel-ip"

// NodeTunnelIP is a node's tunnel endpoint: the IPv4 address of its TunnelIPAnnotation, else its
// first IPv4 InternalIP.
func NodeTunnelIP(n *corev1.Node) (netip.Addr, bool) {
	if ip, ok := parseTunnelIP(n.Annotations[TunnelIPAnnotation]); ok {
		return ip, true
	}
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			if ip, ok := parseTunnelIP(a.Address); ok {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}

func parseTunnelIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	return a, err == nil && a.Is4()
}
