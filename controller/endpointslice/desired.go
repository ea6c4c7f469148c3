package endpointslice

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// MaxEndpointsPerSlice is upstream's default --max-endpoints-per-slice.
const MaxEndpointsPerSlice = 100

// maxEndpointsAddresses is where upstream truncates a legacy Endpoints.
const maxEndpointsAddresses = 1000

// group is the endpoints of one address type whose pods resolve the
// Service's ports to the same numbers.
type group struct {
	addressType discoveryv1.AddressType
	ports       []discoveryv1.EndpointPort
	endpoints   []discoveryv1.Endpoint
	// ready and notReady are the legacy Endpoints view of the group.
	ready, notReady []corev1.EndpointAddress
}

func (g *group) key() string { return groupKey(g.addressType, g.ports) }

func groupKey(t discoveryv1.AddressType, ports []discoveryv1.EndpointPort) string {
	var b strings.Builder
	b.WriteString(string(t))
	for _, p := range ports {
		fmt.Fprintf(&b, "|%s/%v/%d", ptrValue(p.Name), ptrValue(p.Protocol), ptrValue(p.Port))
	}
	return b.String()
}

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// addressTypes are the address families a Service's endpoints have.
func addressTypes(svc *corev1.Service) []discoveryv1.AddressType {
	var out []discoveryv1.AddressType
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			out = append(out, discoveryv1.AddressTypeIPv4)
		case corev1.IPv6Protocol:
			out = append(out, discoveryv1.AddressTypeIPv6)
		}
	}
	if len(out) == 0 {
		if a, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil && a.Is6() {
			return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv6}
		}
		out = []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4}
	}
	return out
}

// podIP is the pod's address of the given type.
func podIP(pod *corev1.Pod, t discoveryv1.AddressType) string {
	ips := pod.Status.PodIPs
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = []corev1.PodIP{{IP: pod.Status.PodIP}}
	}
	for _, ip := range ips {
		a, err := netip.ParseAddr(ip.IP)
		if err != nil {
			continue
		}
		if a.Is4() == (t == discoveryv1.AddressTypeIPv4) {
			return a.String()
		}
	}
	return ""
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// findPort resolves a Service port's targetPort against a pod, as
// upstream's podutil.FindPort.
func findPort(pod *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	switch sp.TargetPort.Type {
	case intstr.String:
		name := sp.TargetPort.StrVal
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == name && cmp.Or(p.Protocol, corev1.ProtocolTCP) == cmp.Or(sp.Protocol, corev1.ProtocolTCP) {
					return p.ContainerPort, true
				}
			}
		}
		return 0, false
	default:
		if sp.TargetPort.IntVal == 0 {
			return sp.Port, true
		}
		return sp.TargetPort.IntVal, true
	}
}

// includePod says whether a pod has endpoints at all: it needs an address
// and must not have finished; terminating pods are kept only where asked.
func includePod(pod *corev1.Pod, includeTerminating bool) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) == 0 {
		return false
	}
	return includeTerminating || pod.DeletionTimestamp == nil
}

// desiredGroups computes the endpoints of svc from its pods. Nodes give
// each endpoint its zone. For the legacy Endpoints, terminating pods are
// left out unless the Service publishes not-ready addresses, as upstream.
func desiredGroups(svc *corev1.Service, pods []*corev1.Pod, zoneOf func(node string) string) (slices_, legacy []*group) {
	return build(svc, pods, zoneOf, true), build(svc, pods, zoneOf, false)
}

func build(svc *corev1.Service, pods []*corev1.Pod, zoneOf func(string) string, forSlices bool) []*group {
	groups := map[string]*group{}
	publish := svc.Spec.PublishNotReadyAddresses
	for _, pod := range pods {
		if !includePod(pod, forSlices || publish) {
			continue
		}
		var ports []discoveryv1.EndpointPort
		for _, sp := range svc.Spec.Ports {
			n, ok := findPort(pod, sp)
			if !ok {
				continue
			}
			name, proto := sp.Name, cmp.Or(sp.Protocol, corev1.ProtocolTCP)
			ports = append(ports, discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &n, AppProtocol: sp.AppProtocol})
		}
		if len(svc.Spec.Ports) > 0 && len(ports) == 0 {
			continue
		}
		terminating := pod.DeletionTimestamp != nil
		serving := publish || podReady(pod)
		ready := publish || (serving && !terminating)
		types := addressTypes(svc)
		if !forSlices {
			// The legacy Endpoints carry the primary family only.
			types = types[:1]
		}
		for _, t := range types {
			ip := podIP(pod, t)
			if ip == "" {
				continue
			}
			k := groupKey(t, ports)
			g := groups[k]
			if g == nil {
				g = &group{addressType: t, ports: ports}
				groups[k] = g
			}
			ref := &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
			ep := discoveryv1.Endpoint{
				Addresses:  []string{ip},
				Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
				TargetRef:  ref,
			}
			addr := corev1.EndpointAddress{IP: ip, TargetRef: ref}
			if pod.Spec.NodeName != "" {
				node := pod.Spec.NodeName
				ep.NodeName, addr.NodeName = &node, &node
				if z := zoneOf(node); z != "" {
					ep.Zone = &z
				}
			}
			if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name {
				h := pod.Spec.Hostname
				ep.Hostname, addr.Hostname = &h, h
			}
			g.endpoints = append(g.endpoints, ep)
			if ready {
				g.ready = append(g.ready, addr)
			} else {
				g.notReady = append(g.notReady, addr)
			}
		}
	}
	out := make([]*group, 0, len(groups))
	for _, g := range groups {
		slices.SortFunc(g.endpoints, func(a, b discoveryv1.Endpoint) int { return cmp.Compare(a.TargetRef.Name, b.TargetRef.Name) })
		byIP := func(a, b corev1.EndpointAddress) int { return cmp.Compare(a.IP, b.IP) }
		slices.SortFunc(g.ready, byIP)
		slices.SortFunc(g.notReady, byIP)
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b *group) int { return cmp.Compare(a.key(), b.key()) })
	return out
}

// subsets is the legacy Endpoints view of groups, truncated at upstream's
// 1000 addresses; truncated reports whether it was.
func subsets(groups []*group) (out []corev1.EndpointSubset, truncated bool) {
	budget := maxEndpointsAddresses
	for _, g := range groups {
		var s corev1.EndpointSubset
		for _, a := range g.ready {
			if budget == 0 {
				truncated = true
				break
			}
			s.Addresses = append(s.Addresses, a)
			budget--
		}
		for _, a := range g.notReady {
			if budget == 0 {
				truncated = true
				break
			}
			s.NotReadyAddresses = append(s.NotReadyAddresses, a)
			budget--
		}
		if len(s.Addresses)+len(s.NotReadyAddresses) == 0 {
			continue
		}
		for _, p := range g.ports {
			s.Ports = append(s.Ports, corev1.EndpointPort{Name: *p.Name, Port: *p.Port, Protocol: *p.Protocol, AppProtocol: p.AppProtocol})
		}
		out = append(out, s)
	}
	return out, truncated
}
