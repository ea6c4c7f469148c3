package nodenet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/tinykube/tinykube/internal/netlab"
)

func TestPodsReachPodsOnOtherNodesWithTheirOwnAddress(t *testing.T) {
	for _, backend := range []Backend{HostGW, VXLAN} {
		t.Run(string(backend), func(t *testing.T) {
			c := newLabCluster(t, backend, 1, 1, 1)
			a, b, far := c.nodes[0], c.nodes[1], c.nodes[2]

			srv := newEchoServer(t, far.pods[0].ns, far.pods[0].ip)
			if got := srv.connect(t, a.pods[0].ns); got != a.pods[0].ip {
				t.Errorf("pod on %s saw a connection from %s, want the pod address %s", far.name, got, a.pods[0].ip)
			}
			back := newEchoServer(t, a.pods[0].ns, a.pods[0].ip)
			if got := back.connect(t, far.pods[0].ns); got != far.pods[0].ip {
				t.Errorf("pod on %s saw a connection from %s, want the pod address %s", a.name, got, far.pods[0].ip)
			}

			if backend == VXLAN {
				if tx, rx := a.vxlanStats(t).TxPackets, far.vxlanStats(t).RxPackets; tx == 0 || rx == 0 {
					t.Errorf("%s sent %d packets on %s, %s received %d: the pods' traffic did not cross the tunnel", a.name, tx, VXLANDevice, far.name, rx)
				}
			}

			route := func(n *labNode) string { return n.podCIDR.String() + " via " + gatewayOf(backend, n) }
			want := []string{route(b), route(far)}
			if got := a.ourRoutes(t); !slices.Equal(got, want) {
				t.Errorf("routes on %s = %q, want %q", a.name, got, want)
			}

			// Leaving the cluster CIDR (here, to a node's own address), pod
			// traffic is masqueraded to the node's address.
			toNode := newEchoServer(t, far.ns, far.ip)
			if got := toNode.connect(t, a.pods[0].ns); got != a.ip {
				t.Errorf("%s saw a pod's connection from %s, want it masqueraded to %s", far.name, got, a.ip)
			}

			a.ns.IP("route", "del", far.podCIDR.String())
			eventually(t, "the route deleted by hand restored",
				func() bool { return slices.Equal(a.ourRoutes(t), want) },
				func() string { return strings.Join(a.ourRoutes(t), ", ") })

			// The kernel drops the routes through an interface that goes
			// down: host-gw's are back once the node's interface is up;
			// vxlan sets its device up again at once.
			if backend == HostGW {
				a.ns.IP("link", "set", "eth0", "down")
				eventually(t, "no routes while eth0 is down",
					func() bool { return len(a.ourRoutes(t)) == 0 },
					func() string { return strings.Join(a.ourRoutes(t), ", ") })
				a.ns.IP("link", "set", "eth0", "up")
			} else {
				a.ns.IP("link", "set", VXLANDevice, "down")
			}
			eventually(t, "the routes back after the link flapped",
				func() bool { return slices.Equal(a.ourRoutes(t), want) },
				func() string { return strings.Join(a.ourRoutes(t), ", ") + "\nlog:\n" + a.logs.String() })
			if got := srv.connect(t, a.pods[0].ns); got != a.pods[0].ip {
				t.Errorf("after the link flapped, pod on %s saw a connection from %s, want %s", far.name, got, a.pods[0].ip)
			}

			if err := c.client.CoreV1().Nodes().Delete(context.Background(), far.name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, n := range []*labNode{a, b} {
				eventually(t, "the deleted node's route gone on "+n.name,
					func() bool { return !slices.Contains(n.ourRoutes(t), route(far)) },
					func() string { return strings.Join(n.ourRoutes(t), ", ") })
			}
			if backend == HostGW {
				// A node's new address moves the route.
				node, err := c.client.CoreV1().Nodes().Get(context.Background(), b.name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				node.Status.Addresses[0].Address = "192.0.2.99"
				if _, err := c.client.CoreV1().Nodes().UpdateStatus(context.Background(), node, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				want := []string{b.podCIDR.String() + " via 192.0.2.99"}
				eventually(t, "the route following the node's new address",
					func() bool { return slices.Equal(a.ourRoutes(t), want) },
					func() string { return strings.Join(a.ourRoutes(t), ", ") })
			}
			if backend == VXLAN {
				eventually(t, "the deleted node's neighbour and forwarding entries gone",
					func() bool {
						return !slices.ContainsFunc(a.vxlanNeighbours(t), func(s string) bool {
							return strings.Contains(s, far.podCIDR.Addr().String()) || strings.Contains(s, far.ip.String())
						})
					},
					func() string { return strings.Join(a.vxlanNeighbours(t), ", ") })
			}
		})
	}
}

func TestVXLANCrossesARouterBetweenNodes(t *testing.T) {
	c := newRoutedLabCluster(t, VXLAN)
	a, far := c.nodes[0], c.nodes[1]
	srv := newEchoServer(t, far.pods[0].ns, far.pods[0].ip)
	if got := srv.connect(t, a.pods[0].ns); got != a.pods[0].ip {
		t.Errorf("pod on %s saw a connection from %s, want the pod address %s", far.name, got, a.pods[0].ip)
	}
}

func TestWaitsForItsNodeAndItsPodCIDR(t *testing.T) {
	c := &labCluster{lab: netlab.New(t), backend: VXLAN, client: fake.NewClientset()}
	c.build(t, 0)
	a := c.nodes[0]
	c.start(t, a)
	eventually(t, "a log line saying what it waits for",
		func() bool { return strings.Contains(a.logs.String(), "to be registered") },
		a.logs.String)

	ctx := context.Background()
	node := labNodeObject(a.name, netip.Prefix{}, a.ip)
	node.Spec = corev1.NodeSpec{}
	node, err := c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "a log line saying it waits for a podCIDR",
		func() bool { return strings.Contains(a.logs.String(), "to get a podCIDR") },
		a.logs.String)
	select {
	case <-a.net.Ready():
		t.Fatal("Ready before the node had a podCIDR")
	default:
	}

	node.Spec.PodCIDR = a.podCIDR.String()
	if _, err := c.client.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	a.waitReady(t)
	if _, err := a.nl.LinkByName(VXLANDevice); err != nil {
		t.Errorf("%s after the podCIDR came: %v", VXLANDevice, err)
	}
}

func TestVXLANDeviceAndAnnotations(t *testing.T) {
	c := newLabCluster(t, VXLAN, 0, 0)
	a := c.nodes[0]
	link, err := a.nl.LinkByName(VXLANDevice)
	if err != nil {
		t.Fatal(err)
	}
	dev, ok := link.(*netlink.Vxlan)
	if !ok {
		t.Fatalf("%s is a %s, want vxlan", VXLANDevice, link.Type())
	}
	if dev.VxlanId != 1 || dev.Port != 8472 || dev.Learning || dev.MTU != 1450 || !dev.SrcAddr.Equal(a.ip.AsSlice()) {
		t.Errorf("%s: VNI %d port %d learning %v MTU %d local %s, want VNI 1 port 8472 learning false MTU 1450 local %s",
			VXLANDevice, dev.VxlanId, dev.Port, dev.Learning, dev.MTU, dev.SrcAddr, a.ip)
	}
	addrs, err := a.nl.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if want := a.podCIDR.Addr().String() + "/32"; len(addrs) != 1 || addrs[0].IPNet.String() != want {
		t.Errorf("%s addresses %v, want only %s", VXLANDevice, addrs, want)
	}

	node, err := c.client.CoreV1().Nodes().Get(context.Background(), a.name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var data BackendData
	if err := json.Unmarshal([]byte(node.Annotations[AnnotationBackendData]), &data); err != nil {
		t.Fatalf("annotation %s: %v", AnnotationBackendData, err)
	}
	if data.VNI != 1 || data.VtepMAC != dev.HardwareAddr.String() {
		t.Errorf("backend data %+v, want VNI 1 and the device's MAC %s", data, dev.HardwareAddr)
	}
	if got := node.Annotations[AnnotationPublicIP]; got != a.ip.String() {
		t.Errorf("annotation %s = %q, want %s", AnnotationPublicIP, got, a.ip)
	}
	if got := node.Annotations[AnnotationBackendType]; got != "vxlan" {
		t.Errorf("annotation %s = %q, want vxlan", AnnotationBackendType, got)
	}
}

func TestHostGWLogsANodeNotOnAConnectedSubnet(t *testing.T) {
	c := newLabCluster(t, HostGW, 0)
	a := c.nodes[0]
	a.ns.IP("route", "add", "default", "via", "192.0.2.254")
	ctx := context.Background()
	for _, n := range []struct {
		name, podCIDR, ip string
	}{
		{"near", "10.42.8.0/24", "192.0.2.9"},
		{"far", "10.42.9.0/24", "198.51.100.7"},
	} {
		obj := labNodeObject(n.name, netip.MustParsePrefix(n.podCIDR), netip.MustParseAddr(n.ip))
		if _, err := c.client.CoreV1().Nodes().Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"10.42.8.0/24 via 192.0.2.9"}
	eventually(t, "a route to the near node only",
		func() bool {
			return slices.Equal(a.ourRoutes(t), want) && strings.Contains(a.logs.String(), `node="far"`)
		},
		func() string { return strings.Join(a.ourRoutes(t), ", ") + "\nlog:\n" + a.logs.String() })
	for _, line := range strings.Split(a.logs.String(), "\n") {
		if strings.Contains(line, `node="far"`) && !strings.Contains(line, "vxlan") {
			t.Errorf("the log line about the unreachable node does not suggest the vxlan backend: %s", line)
		}
	}
}

func TestCleanupRemovesRoutesDeviceAndTable(t *testing.T) {
	c := newLabCluster(t, VXLAN, 0, 0)
	a := c.nodes[0]
	eventually(t, "a route to the other node",
		func() bool { return len(a.ourRoutes(t)) == 1 },
		func() string { return strings.Join(a.ourRoutes(t), ", ") })
	a.stop()
	if err := a.net.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := a.ourRoutes(t); len(got) != 0 {
		t.Errorf("routes left after Cleanup: %q", got)
	}
	if _, err := a.nl.LinkByName(VXLANDevice); err == nil {
		t.Errorf("%s left after Cleanup", VXLANDevice)
	}
	if out := a.ns.Exec("nft", "list", "tables"); strings.Contains(out, TableName) {
		t.Errorf("table %s left after Cleanup:\n%s", TableName, out)
	}
}

// vxlanNeighbours lists the neighbour and forwarding entries of n's VXLAN
// device as "IP MAC".
func (n *labNode) vxlanNeighbours(t testing.TB) []string {
	t.Helper()
	link, err := n.nl.LinkByName(VXLANDevice)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, family := range []int{netlink.FAMILY_V4, unix.AF_BRIDGE} {
		neighs, err := n.nl.NeighList(link.Attrs().Index, family)
		if err != nil {
			t.Fatal(err)
		}
		for _, nb := range neighs {
			out = append(out, nb.String())
		}
	}
	return out
}

// vxlanStats returns the counters of n's VXLAN device.
func (n *labNode) vxlanStats(t testing.TB) *netlink.LinkStatistics {
	t.Helper()
	link, err := n.nl.LinkByName(VXLANDevice)
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().Statistics
}

func TestResyncRestoresTheTableDeletedByHand(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Now())
	c := &labCluster{lab: netlab.New(t), backend: HostGW, clock: clk, resync: time.Minute}
	c.build(t, 0, 0)
	c.run(t)
	a := c.nodes[0]
	hasTable := func() bool { return strings.Contains(a.ns.Exec("nft", "list", "tables"), TableName) }
	if !hasTable() {
		t.Fatalf("no table %s after the first sync", TableName)
	}
	a.ns.Exec("nft", "delete", "table", "ip", TableName)
	// No event tells of a deleted table: only the resync restores it.
	eventually(t, "the table restored by a resync",
		func() bool { clk.Step(time.Minute); return hasTable() },
		func() string { return a.ns.Exec("nft", "list", "tables") })
}

func TestStartReplacesWhatAnEarlierRunLeft(t *testing.T) {
	for _, backend := range []Backend{HostGW, VXLAN} {
		t.Run(string(backend), func(t *testing.T) {
			c := &labCluster{lab: netlab.New(t), backend: backend}
			c.build(t, 0, 0)
			a := c.nodes[0]
			// A route of a node deleted while nodenet was down, and a VXLAN
			// device of another VNI (or, with host-gw, of a vxlan past).
			a.ns.IP("route", "add", "10.42.99.0/24", "via", "192.0.2.99", "proto", fmt.Sprint(RouteProtocol))
			a.ns.IP("link", "add", VXLANDevice, "type", "vxlan", "id", "2", "dstport", "4789", "dev", "eth0")
			c.run(t)

			want := []string{c.nodes[1].podCIDR.String() + " via " + gatewayOf(backend, c.nodes[1])}
			if got := a.ourRoutes(t); !slices.Equal(got, want) {
				t.Errorf("routes %q, want %q", got, want)
			}
			link, err := a.nl.LinkByName(VXLANDevice)
			if backend == HostGW {
				if err == nil {
					t.Errorf("host-gw left the VXLAN device %s", VXLANDevice)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if dev := link.(*netlink.Vxlan); dev.VxlanId != 1 || dev.Port != 8472 {
				t.Errorf("%s: VNI %d port %d, want it recreated with VNI 1 port 8472", VXLANDevice, dev.VxlanId, dev.Port)
			}
		})
	}
}

// gatewayOf is what other nodes route n's pods via with backend.
func gatewayOf(backend Backend, n *labNode) string {
	if backend == VXLAN {
		return n.podCIDR.Addr().String() // its VTEP
	}
	return n.ip.String()
}

func TestRoutesDoNotWaitForTheAPIServerToTakeAnnotations(t *testing.T) {
	c := &labCluster{lab: netlab.New(t), backend: HostGW, client: fake.NewClientset()}
	c.build(t, 0, 0)
	c.client.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("the API server is away")
	})
	c.createNodes(t)
	a := c.nodes[0]
	c.start(t, a)
	want := []string{c.nodes[1].podCIDR.String() + " via " + c.nodes[1].ip.String()}
	eventually(t, "the route although the annotations could not be written",
		func() bool { return slices.Equal(a.ourRoutes(t), want) },
		func() string { return strings.Join(a.ourRoutes(t), ", ") + "\nlog:\n" + a.logs.String() })
	eventually(t, "the failed patch logged", func() bool { return strings.Contains(a.logs.String(), "the API server is away") }, a.logs.String)
}
