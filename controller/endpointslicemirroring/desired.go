package endpointslicemirroring

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	netutils "k8s.io/utils/net"
)

// group is the mirrored endpoints of one address type and port list.
type group struct {
	addressType discoveryv1.AddressType
	ports       []discoveryv1.EndpointPort
	endpoints   []discoveryv1.Endpoint
	// ips are the endpoints' parsed addresses, for sorting.
	ips []netip.Addr
}

func (g *group) key() string { return groupKey(g.addressType, g.ports) }

func groupKey(t discoveryv1.AddressType, ports []discoveryv1.EndpointPort) string {
	var b strings.Builder
	b.WriteString(string(t))
	for _, p := range ports {
		fmt.Fprintf(&b, "|%s/%v/%d/%s", ptrValue(p.Name), ptrValue(p.Protocol), ptrValue(p.Port), ptrValue(p.AppProtocol))
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

// mirrorable parses an Endpoints address, leniently as upstream (leading
// zeros are accepted and dropped). Upstream's API validation refuses
// unspecified, loopback, link-local and link-local multicast addresses in
// Endpoints; tinykube's API server lets them through, so they are skipped
// here like unparseable ones.
func mirrorable(ip string) (netip.Addr, bool) {
	parsed := netutils.ParseIPSloppy(ip)
	if parsed == nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(parsed)
	if !ok {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
		return netip.Addr{}, false
	}
	return a, true
}

// desired is what one Endpoints object mirrors to.
type desired struct {
	groups []*group
	// invalid counts addresses skipped for their IP, truncated those left
	// out past the per-subset limit.
	invalid, truncated int
}

// mirror computes the slices' content from ep: per subset, at most
// maxPerSubset addresses (ready ones first), grouped by address family
// and ports. An address both ready and not ready counts as ready.
func mirror(ep *corev1.Endpoints, maxPerSubset int) desired {
	var d desired
	groups := map[string]*group{}
	seen := map[string]map[string]bool{} // group key -> IPs
	for _, sub := range ep.Subsets {
		ports := portsOf(sub.Ports)
		keys := map[discoveryv1.AddressType]string{
			discoveryv1.AddressTypeIPv4: groupKey(discoveryv1.AddressTypeIPv4, ports),
			discoveryv1.AddressTypeIPv6: groupKey(discoveryv1.AddressTypeIPv6, ports),
		}
		added := 0
		add := func(addr corev1.EndpointAddress, ready bool) {
			ip, ok := mirrorable(addr.IP)
			if !ok {
				d.invalid++
				return
			}
			if added >= maxPerSubset {
				d.truncated++
				return
			}
			t := discoveryv1.AddressTypeIPv4
			if ip.Is6() {
				t = discoveryv1.AddressTypeIPv6
			}
			k := keys[t]
			g := groups[k]
			if g == nil {
				g = &group{addressType: t, ports: ports}
				groups[k], seen[k] = g, map[string]bool{}
			}
			ipStr := ip.String()
			if seen[k][ipStr] {
				return
			}
			seen[k][ipStr] = true
			added++
			r := ready
			e := discoveryv1.Endpoint{
				Addresses:  []string{ipStr},
				Conditions: discoveryv1.EndpointConditions{Ready: &r},
				TargetRef:  addr.TargetRef.DeepCopy(),
			}
			if addr.NodeName != nil {
				n := *addr.NodeName
				e.NodeName = &n
			}
			if addr.Hostname != "" {
				h := addr.Hostname
				e.Hostname = &h
			}
			g.endpoints = append(g.endpoints, e)
			g.ips = append(g.ips, ip)
		}
		for _, a := range sub.Addresses {
			add(a, true)
		}
		for _, a := range sub.NotReadyAddresses {
			add(a, false)
		}
	}
	for _, g := range groups {
		order := make([]int, len(g.endpoints))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return g.ips[a].Compare(g.ips[b]) })
		sorted := make([]discoveryv1.Endpoint, len(order))
		for i, j := range order {
			sorted[i] = g.endpoints[j]
		}
		g.endpoints, g.ips = sorted, nil
		d.groups = append(d.groups, g)
	}
	slices.SortFunc(d.groups, func(a, b *group) int { return cmp.Compare(a.key(), b.key()) })
	return d
}

// portsOf converts a subset's ports, sorted so the same set of ports
// always lands in the same slice.
func portsOf(in []corev1.EndpointPort) []discoveryv1.EndpointPort {
	out := make([]discoveryv1.EndpointPort, 0, len(in))
	for _, p := range in {
		name, port, proto := p.Name, p.Port, cmp.Or(p.Protocol, corev1.ProtocolTCP)
		var app *string
		if p.AppProtocol != nil {
			a := *p.AppProtocol
			app = &a
		}
		out = append(out, discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto, AppProtocol: app})
	}
	slices.SortFunc(out, func(a, b discoveryv1.EndpointPort) int {
		return cmp.Or(cmp.Compare(*a.Name, *b.Name), cmp.Compare(*a.Port, *b.Port), cmp.Compare(*a.Protocol, *b.Protocol))
	})
	return out
}
