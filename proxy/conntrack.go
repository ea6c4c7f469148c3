package proxy

import (
	"net"
	"net/netip"
	"reflect"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/types"
)

// Conntrack deletes connection-tracking entries; *netlink.Handle is one.
type Conntrack interface {
	ConntrackDeleteFilters(table netlink.ConntrackTableType, family netlink.InetFamily, filters ...netlink.CustomConntrackFilter) (uint, error)
}

// udpFrontend is where the UDP traffic of one Service port arrives, and
// the endpoints it may be sent to.
//
// UDP has no connection to end: a conntrack entry lives on as long as the
// client keeps sending, and every packet that matches it is NATed as the
// first one was, bypassing the rules. So, as upstream's kube-proxy does,
// after each sync that changed a UDP Service the proxy deletes the
// entries of its frontends that lead to an endpoint that is gone, or that
// were made while the Service had no endpoint (their packets were not
// NATed at all).
type udpFrontend struct {
	addrs     []netip.Addr // ClusterIP, external and LoadBalancer IPs
	port      uint16
	nodePort  uint16
	endpoints map[netip.AddrPort]bool
}

// udpFrontends are the UDP ports of a Service, with the endpoints its
// rules may choose.
func udpFrontends(ports []*servicePort) []udpFrontend {
	var out []udpFrontend
	for _, sp := range ports {
		if sp.name.Protocol != "udp" {
			continue
		}
		fe := udpFrontend{
			addrs:     append([]netip.Addr{sp.clusterIP}, sp.externalIPs...),
			port:      sp.port,
			nodePort:  sp.nodePort,
			endpoints: map[netip.AddrPort]bool{},
		}
		clusterEPs, localEPs, _ := sp.categorize()
		for _, ep := range slices.Concat(clusterEPs, localEPs) {
			fe.endpoints[ep.addr] = true
		}
		out = append(out, fe)
	}
	return out
}

// udpChanges records the UDP frontends of the Services a sync computed
// and returns whether any changed, with the frontends that went away.
func (p *Proxier) udpChanges(computed map[types.NamespacedName][]udpFrontend, full bool) (changed bool, gone []udpFrontend) {
	if full {
		// A full sync computed every Service there is: the others are gone.
		for k := range p.udp {
			if _, ok := computed[k]; !ok {
				computed[k] = nil
			}
		}
	}
	for k, cur := range computed {
		old := p.udp[k]
		if reflect.DeepEqual(old, cur) {
			continue
		}
		changed = true
		for _, o := range old {
			if !slices.ContainsFunc(cur, func(c udpFrontend) bool { return c.port == o.port && slices.Equal(c.addrs, o.addrs) }) {
				gone = append(gone, udpFrontend{addrs: o.addrs, port: o.port, nodePort: o.nodePort})
			}
		}
		if len(cur) == 0 {
			delete(p.udp, k)
		} else {
			p.udp[k] = cur
		}
	}
	return changed, gone
}

// staleUDPFilter matches the conntrack entries of UDP frontends that lead
// nowhere the rules would send new traffic.
type staleUDPFilter struct {
	byAddr     map[netip.AddrPort]*udpFrontend
	byNodePort map[uint16]*udpFrontend
	nodeIPs    []netip.Addr
}

func newStaleUDPFilter(current map[types.NamespacedName][]udpFrontend, gone []udpFrontend, nodeIPs []netip.Addr) *staleUDPFilter {
	f := &staleUDPFilter{byAddr: map[netip.AddrPort]*udpFrontend{}, byNodePort: map[uint16]*udpFrontend{}, nodeIPs: nodeIPs}
	add := func(fe *udpFrontend) {
		for _, a := range fe.addrs {
			f.byAddr[netip.AddrPortFrom(a, fe.port)] = fe
		}
		if fe.nodePort != 0 {
			f.byNodePort[fe.nodePort] = fe
		}
	}
	for i := range gone {
		add(&gone[i])
	}
	// Current frontends win over gone ones at the same address.
	for _, fes := range current {
		for i := range fes {
			add(&fes[i])
		}
	}
	return f
}

// MatchConntrackFlow reports whether flow is a UDP flow to one of the
// frontends whose reply comes from anything but a current endpoint.
func (f *staleUDPFilter) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != unix.IPPROTO_UDP {
		return false
	}
	dst, ok := addrPort(flow.Forward.DstIP, flow.Forward.DstPort)
	if !ok {
		return false
	}
	fe := f.byAddr[dst]
	if fe == nil {
		if fe = f.byNodePort[dst.Port()]; fe == nil || !(dst.Addr().IsLoopback() || slices.Contains(f.nodeIPs, dst.Addr())) {
			return false
		}
	}
	from, ok := addrPort(flow.Reverse.SrcIP, flow.Reverse.SrcPort)
	return !ok || !fe.endpoints[from]
}

func addrPort(ip net.IP, port uint16) (netip.AddrPort, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), port), true
}

// cleanUDPConntrack deletes the stale entries of UDP frontends.
func (p *Proxier) cleanUDPConntrack(gone []udpFrontend) (uint, error) {
	filter := newStaleUDPFilter(p.udp, gone, p.cfg.NodeIPs)
	if len(filter.byAddr) == 0 && len(filter.byNodePort) == 0 {
		return 0, nil
	}
	return p.conntrack.ConntrackDeleteFilters(netlink.ConntrackTable, netlink.FAMILY_V4, filter)
}
