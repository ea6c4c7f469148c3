package proxy

import (
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// servicePort is what the rules need to know about one port of a Service.
type servicePort struct {
	name      servicePortName
	clusterIP netip.Addr
	port      uint16
	nodePort  uint16
	// externalIPs are spec.externalIPs and status.loadBalancer.ingress IPs:
	// traffic to them is external traffic.
	externalIPs     []netip.Addr
	affinitySeconds int32 // 0: no session affinity
	externalLocal   bool  // externalTrafficPolicy: Local
	internalLocal   bool  // internalTrafficPolicy: Local
	endpoints       []endpoint
}

// endpoint is one backend address of a Service port.
type endpoint struct {
	addr  netip.AddrPort
	local bool // on this node
	// ready endpoints get traffic; serving-but-terminating ones only when a
	// Service has no ready endpoint at all (as upstream).
	ready, serving, terminating bool
}

// usesExternalChain tells whether traffic may arrive as external traffic
// (NodePort, LoadBalancer ingress or external IPs).
func (sp *servicePort) usesExternalChain() bool {
	return sp.nodePort != 0 || len(sp.externalIPs) > 0
}

// categorize splits endpoints as upstream's CategorizeEndpoints does:
// clusterEPs serve ClusterIP traffic, localEPs serve external traffic under
// externalTrafficPolicy Local. hasAny is false when the Service has no usable
// endpoint at all (traffic is rejected rather than dropped).
func (sp *servicePort) categorize() (clusterEPs, localEPs []endpoint, hasAny bool) {
	usable := func(local bool) []endpoint {
		var ready, terminating []endpoint
		for _, ep := range sp.endpoints {
			if local && !ep.local {
				continue
			}
			if ep.ready {
				ready = append(ready, ep)
			} else if ep.serving && ep.terminating {
				terminating = append(terminating, ep)
			}
		}
		if len(ready) > 0 {
			return ready
		}
		return terminating
	}
	all := usable(false)
	local := usable(true)
	if sp.internalLocal {
		clusterEPs = local
	} else {
		clusterEPs = all
	}
	return clusterEPs, local, len(all) > 0
}

// servicePorts converts a Service and its EndpointSlices. It returns nothing
// for Services the proxy does not handle (headless, ExternalName, IPv6-only).
func servicePorts(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, nodeName string) []*servicePort {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	clusterIP, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !clusterIP.Is4() {
		return nil // headless, or not (yet) an IPv4 Service
	}
	var externalIPs []netip.Addr
	for _, s := range svc.Spec.ExternalIPs {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
			externalIPs = append(externalIPs, a)
		}
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IPMode != nil && *ing.IPMode == corev1.LoadBalancerIPModeProxy {
				continue // the load balancer proxies; it is not ours
			}
			if a, err := netip.ParseAddr(ing.IP); err == nil && a.Is4() {
				externalIPs = append(externalIPs, a)
			}
		}
	}
	sort.Slice(externalIPs, func(i, j int) bool { return externalIPs[i].Less(externalIPs[j]) })
	externalIPs = compactAddrs(externalIPs)

	var affinity int32
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = corev1.DefaultClientIPServiceAffinitySeconds
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			affinity = *c.ClientIP.TimeoutSeconds
		}
	}
	externalLocal := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal &&
		(svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer || len(svc.Spec.ExternalIPs) > 0)
	internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal

	var out []*servicePort
	for _, p := range svc.Spec.Ports {
		sp := &servicePort{
			name: servicePortName{
				Namespace: svc.Namespace, Name: svc.Name,
				Protocol: strings.ToLower(string(p.Protocol)), Port: p.Name,
			},
			clusterIP:       clusterIP,
			port:            uint16(p.Port),
			externalIPs:     externalIPs,
			affinitySeconds: affinity,
			externalLocal:   externalLocal,
			internalLocal:   internalLocal,
		}
		if sp.name.Protocol == "" {
			sp.name.Protocol = "tcp"
		}
		if svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			sp.nodePort = uint16(p.NodePort)
		}
		sp.endpoints = portEndpoints(slices, p, nodeName)
		out = append(out, sp)
	}
	return out
}

// portEndpoints collects the IPv4 endpoints of one Service port from its
// slices, matching the port by name and protocol, de-duplicated by address.
func portEndpoints(slices []*discoveryv1.EndpointSlice, p corev1.ServicePort, nodeName string) []endpoint {
	seen := map[netip.AddrPort]bool{}
	var eps []endpoint
	for _, s := range slices {
		if s.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		var port int32
		found := false
		for _, sp := range s.Ports {
			name := ""
			if sp.Name != nil {
				name = *sp.Name
			}
			proto := corev1.ProtocolTCP
			if sp.Protocol != nil {
				proto = *sp.Protocol
			}
			if name == p.Name && proto == p.Protocol && sp.Port != nil {
				port, found = *sp.Port, true
				break
			}
		}
		if !found || port <= 0 || port > 65535 {
			continue
		}
		for _, e := range s.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			a, err := netip.ParseAddr(e.Addresses[0])
			if err != nil || !a.Is4() {
				continue
			}
			ap := netip.AddrPortFrom(a, uint16(port))
			if seen[ap] {
				continue
			}
			seen[ap] = true
			c := e.Conditions
			eps = append(eps, endpoint{
				addr:        ap,
				local:       e.NodeName != nil && *e.NodeName == nodeName,
				ready:       c.Ready == nil || *c.Ready,
				serving:     c.Serving == nil || *c.Serving,
				terminating: c.Terminating != nil && *c.Terminating,
			})
		}
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].addr.Compare(eps[j].addr) < 0 })
	return eps
}

func compactAddrs(a []netip.Addr) []netip.Addr {
	out := a[:0]
	for i, x := range a {
		if i == 0 || x != a[i-1] {
			out = append(out, x)
		}
	}
	return out
}
