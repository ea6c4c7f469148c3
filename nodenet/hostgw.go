package nodenet

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"
)

// hostGWRoutes routes each peer's podCIDR via its InternalIP. A peer whose
// address is not on a directly connected subnet is skipped with an error in
// the log: the kernel could not use it as a gateway, and host-gw cannot
// cross routers.
func (n *NodeNet) hostGWRoutes(ctx context.Context, peers []peer) []netlink.Route {
	logger := klog.FromContext(ctx).WithName("nodenet")
	var routes []netlink.Route
	for _, p := range peers {
		if reason := n.notConnected(p); reason != "" {
			if n.warn(p.name, reason) {
				logger.Error(nil, "host-gw needs all nodes on one L2 segment, but this node's address is not on a directly connected subnet: not routing to its pods; use the vxlan backend",
					"node", p.name, "nodeIP", p.ip, "podCIDR", p.podCIDR, "reason", reason)
			}
			continue
		}
		r := ourRoute(p.podCIDR)
		r.Gw = p.ip.AsSlice()
		routes = append(routes, r)
	}
	return routes
}

// notConnected says why p's address cannot be a gateway, or "" when it can:
// the kernel's route to it must go straight out of an interface.
func (n *NodeNet) notConnected(p peer) string {
	routes, err := n.nl.RouteGet(p.ip.AsSlice())
	switch {
	case err != nil:
		return fmt.Sprintf("no route to %s: %v", p.ip, err)
	case len(routes) == 0:
		return fmt.Sprintf("no route to %s", p.ip)
	case routes[0].Gw != nil:
		return fmt.Sprintf("%s is reached through the router %s", p.ip, routes[0].Gw)
	}
	return ""
}
