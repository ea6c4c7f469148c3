package proxy

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// fakeConntrack holds flows and deletes those the filters match.
type fakeConntrack struct {
	flows []*netlink.ConntrackFlow
	calls int
}

func (f *fakeConntrack) ConntrackDeleteFilters(_ netlink.ConntrackTableType, _ netlink.InetFamily, filters ...netlink.CustomConntrackFilter) (uint, error) {
	f.calls++
	var kept []*netlink.ConntrackFlow
	var n uint
	for _, fl := range f.flows {
		matched := false
		for _, filter := range filters {
			matched = matched || filter.MatchConntrackFlow(fl)
		}
		if matched {
			n++
		} else {
			kept = append(kept, fl)
		}
	}
	f.flows = kept
	return n, nil
}

// udpFlow is a flow from client to dst, answered by replier.
func udpFlow(client, dst, replier string) *netlink.ConntrackFlow {
	c, d, r := netip.MustParseAddrPort(client), netip.MustParseAddrPort(dst), netip.MustParseAddrPort(replier)
	fl := &netlink.ConntrackFlow{FamilyType: unix.AF_INET}
	fl.Forward.Protocol, fl.Reverse.Protocol = unix.IPPROTO_UDP, unix.IPPROTO_UDP
	fl.Forward.SrcIP, fl.Forward.SrcPort = net.IP(c.Addr().AsSlice()), c.Port()
	fl.Forward.DstIP, fl.Forward.DstPort = net.IP(d.Addr().AsSlice()), d.Port()
	fl.Reverse.SrcIP, fl.Reverse.SrcPort = net.IP(r.Addr().AsSlice()), r.Port()
	fl.Reverse.DstIP, fl.Reverse.DstPort = net.IP(c.Addr().AsSlice()), c.Port()
	return fl
}

func flowStrings(fs []*netlink.ConntrackFlow) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Forward.DstIP.String()+" <- "+f.Reverse.SrcIP.String())
	}
	return out
}

func TestStaleUDPConntrackEntriesAreDeleted(t *testing.T) {
	dnsSvc := makeService("ns", "dns").clusterIP("10.43.0.10").typ("NodePort").udpPort("dns", 53, 5353).obj()
	dnsSvc.Spec.Ports[0].NodePort = 30053
	web := makeService("ns", "web").clusterIP("10.43.0.20").port("http", 80, 8080, 0).obj()
	dnsSlice := func(ips ...string) *discoveryv1.EndpointSlice {
		b := makeSlice("ns", "dns", "dns-1").udpPort("dns", 5353)
		for _, ip := range ips {
			b = b.endpoint(ip, testNode)
		}
		return b.obj()
	}
	cfg := testConfig()
	ct := &fakeConntrack{}
	cfg.Conntrack = ct
	tp := newTestProxier(t, cfg, dnsSvc, dnsSlice("10.42.0.1", "10.42.0.2"),
		web, makeSlice("ns", "web", "web-1").port("http", 8080).endpoint("10.42.0.3", testNode).obj())
	tp.mustSync(t)
	ct.flows = []*netlink.ConntrackFlow{
		udpFlow("10.42.9.9:1000", "10.43.0.10:53", "10.42.0.1:5353"),               // to an endpoint that stays
		udpFlow("10.42.9.9:1001", "10.43.0.10:53", "10.42.0.2:5353"),               // to the endpoint about to go
		udpFlow("10.42.9.9:1002", "10.43.0.10:53", "10.43.0.10:53"),                // made while nothing was NATed
		udpFlow("192.0.2.50:1003", testNodeIP.String()+":30053", "10.42.0.2:5353"), // NodePort to the one about to go
		udpFlow("10.42.9.9:1004", "10.43.0.20:80", "10.43.0.20:80"),                // a TCP Service's address: not ours
		udpFlow("10.42.9.9:1005", "192.0.2.1:53", "192.0.2.1:53"),                  // anything else
	}
	// Endpoint 10.42.0.2 goes away.
	if err := tp.slices.Update(dnsSlice("10.42.0.1")); err != nil {
		t.Fatal(err)
	}
	tp.markDirty(types.NamespacedName{Namespace: "ns", Name: "dns"})
	st := tp.mustSync(t)
	if st.ConntrackDeleted != 3 {
		t.Errorf("deleted %d entries, want 3", st.ConntrackDeleted)
	}
	want := []string{"10.43.0.10 <- 10.42.0.1", "10.43.0.20 <- 10.43.0.20", "192.0.2.1 <- 192.0.2.1"}
	if got := flowStrings(ct.flows); !slices.Equal(got, want) {
		t.Errorf("flows left %v, want %v", got, want)
	}

	// A sync that changes no UDP Service leaves conntrack alone.
	calls := ct.calls
	tp.markDirty(types.NamespacedName{Namespace: "ns", Name: "web"})
	tp.mustSync(t)
	if ct.calls != calls {
		t.Errorf("conntrack scanned after a sync without UDP changes")
	}

	// The Service deleted: its flows go.
	if err := tp.cfg.Informers.Core().V1().Services().Informer().GetStore().Delete(dnsSvc); err != nil {
		t.Fatal(err)
	}
	tp.markDirty(types.NamespacedName{Namespace: "ns", Name: "dns"})
	tp.mustSync(t)
	if got := flowStrings(ct.flows); !slices.Equal(got, want[1:]) {
		t.Errorf("flows left after the Service went %v, want %v", got, want[1:])
	}
}
