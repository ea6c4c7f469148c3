package nodenet

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// nodeBuilder builds test Nodes: makeNode("b").cidr("10.42.2.0/24").ip("192.0.2.2").obj().
type nodeBuilder struct{ n corev1.Node }

func makeNode(name string) *nodeBuilder {
	return &nodeBuilder{corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}}}}
}

func (b *nodeBuilder) cidr(c string) *nodeBuilder { b.n.Spec.PodCIDR = c; return b }
func (b *nodeBuilder) ip(ip string) *nodeBuilder {
	b.n.Status.Addresses = append(b.n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	return b
}
func (b *nodeBuilder) ann(k, v string) *nodeBuilder { b.n.Annotations[k] = v; return b }
func (b *nodeBuilder) vxlan(mac, publicIP string) *nodeBuilder {
	return b.ann(AnnotationBackendType, "vxlan").
		ann(AnnotationBackendData, `{"VNI":1,"VtepMAC":"`+mac+`"}`).
		ann(AnnotationPublicIP, publicIP)
}
func (b *nodeBuilder) obj() *corev1.Node { return &b.n }

func TestPeerOf(t *testing.T) {
	own := netip.MustParsePrefix("10.42.1.0/24")
	for _, tc := range []struct {
		name    string
		backend Backend
		node    *corev1.Node
		wantIP  string // the peer's address; "" when it is not a peer
		reason  string // part of the reason it is not
	}{
		{"host-gw: podCIDR and InternalIP", HostGW, makeNode("b").cidr("10.42.2.0/24").ip("192.0.2.2").obj(), "192.0.2.2", ""},
		{"host-gw: first IPv4 InternalIP", HostGW, makeNode("b").cidr("10.42.2.0/24").ip("2001:db8::2").ip("192.0.2.2").obj(), "192.0.2.2", ""},
		{"host-gw: podCIDRs preferred", HostGW, func() *corev1.Node {
			n := makeNode("b").cidr("bogus").ip("192.0.2.2").obj()
			n.Spec.PodCIDRs = []string{"10.42.2.0/24"}
			return n
		}(), "192.0.2.2", ""},
		{"no podCIDR yet", HostGW, makeNode("b").ip("192.0.2.2").obj(), "", "no podCIDR"},
		{"podCIDR overlapping ours", HostGW, makeNode("b").cidr("10.42.1.0/25").ip("192.0.2.2").obj(), "", "overlaps"},
		{"host-gw: no InternalIP", HostGW, makeNode("b").cidr("10.42.2.0/24").obj(), "", "InternalIP"},
		{"host-gw: this node's address", HostGW, makeNode("b").cidr("10.42.2.0/24").ip("192.0.2.1").obj(), "", "this node's"},
		{"vxlan: this node's address", VXLAN, makeNode("b").cidr("10.42.2.0/24").vxlan("02:00:00:00:00:02", "192.0.2.1").obj(), "", "this node's"},
		{"vxlan: annotations", VXLAN, makeNode("b").cidr("10.42.2.0/24").ip("192.0.2.2").vxlan("02:00:00:00:00:02", "198.51.100.2").obj(), "198.51.100.2", ""},
		{"vxlan: not published yet", VXLAN, makeNode("b").cidr("10.42.2.0/24").ip("192.0.2.2").obj(), "", "backend"},
		{"vxlan: peer on host-gw", VXLAN, makeNode("b").cidr("10.42.2.0/24").ann(AnnotationBackendType, "host-gw").obj(), "", `"host-gw"`},
		{"vxlan: bad MAC", VXLAN, makeNode("b").cidr("10.42.2.0/24").vxlan("nope", "192.0.2.2").obj(), "", AnnotationBackendData},
		{"vxlan: another VNI", VXLAN, makeNode("b").cidr("10.42.2.0/24").vxlan("02:00:00:00:00:02", "192.0.2.2").ann(AnnotationBackendData, `{"VNI":2,"VtepMAC":"02:00:00:00:00:02"}`).obj(), "", "VNI"},
		{"vxlan: no public IP", VXLAN, makeNode("b").cidr("10.42.2.0/24").vxlan("02:00:00:00:00:02", "").obj(), "", AnnotationPublicIP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &NodeNet{cfg: Config{NodeName: "a", NodeIP: netip.MustParseAddr("192.0.2.1"), Backend: tc.backend}}
			p, reason := n.peerOf(tc.node, own)
			if tc.wantIP == "" {
				if reason == "" || !strings.Contains(reason, tc.reason) {
					t.Errorf("reason %q, want one mentioning %q", reason, tc.reason)
				}
				return
			}
			if reason != "" {
				t.Fatalf("not a peer: %s", reason)
			}
			if p.ip.String() != tc.wantIP || p.podCIDR.String() != "10.42.2.0/24" {
				t.Errorf("peer %s via %s, want 10.42.2.0/24 via %s", p.podCIDR, p.ip, tc.wantIP)
			}
		})
	}
}

func TestOnlyNodeChangesNodeNetReadsWakeIt(t *testing.T) {
	base := makeNode("b").cidr("10.42.2.0/24").ip("192.0.2.2").vxlan("02:00:00:00:00:02", "192.0.2.2").obj()
	for _, tc := range []struct {
		name   string
		change func(*corev1.Node)
		wakes  bool
	}{
		{"heartbeat", func(n *corev1.Node) {
			n.ResourceVersion = "2"
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
		}, false},
		{"a label", func(n *corev1.Node) { n.Labels = map[string]string{"x": "y"} }, false},
		{"podCIDR", func(n *corev1.Node) { n.Spec.PodCIDR = "10.42.3.0/24" }, true},
		{"InternalIP", func(n *corev1.Node) { n.Status.Addresses[0].Address = "192.0.2.9" }, true},
		{"VTEP MAC", func(n *corev1.Node) {
			n.Annotations[AnnotationBackendData] = `{"VNI":1,"VtepMAC":"02:00:00:00:00:09"}`
		}, true},
		{"public IP", func(n *corev1.Node) { n.Annotations[AnnotationPublicIP] = "192.0.2.9" }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &NodeNet{changed: make(chan struct{}, 1)}
			cur := base.DeepCopy()
			tc.change(cur)
			n.nodeUpdated(base, cur)
			if woke := len(n.changed) == 1; woke != tc.wakes {
				t.Errorf("woke the runner: %v, want %v", woke, tc.wakes)
			}
		})
	}
}

func TestParseBackend(t *testing.T) {
	for name, want := range map[string]Backend{"": HostGW, "host-gw": HostGW, "vxlan": VXLAN} {
		if got, err := ParseBackend(name); err != nil || got != want {
			t.Errorf("ParseBackend(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := ParseBackend("wireguard"); err == nil || !strings.Contains(err.Error(), `"host-gw" or "vxlan"`) {
		t.Errorf("ParseBackend(wireguard): %v, want an error naming the backends", err)
	}
}
