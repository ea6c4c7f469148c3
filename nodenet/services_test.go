package nodenet

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"sigs.k8s.io/knftables"

	"github.com/tinykube/tinykube/proxy"
)

// TestServicesReachPodsOnOtherNodes runs tinykube's proxy beside nodenet on
// every node: a pod reaches a Service whose only endpoint is on another node
// with its own address kept, and an external client reaches it through the
// NodePort of a node without the endpoint, masqueraded by the proxy as
// upstream does for externalTrafficPolicy Cluster.
func TestServicesReachPodsOnOtherNodes(t *testing.T) {
	for _, backend := range []Backend{HostGW, VXLAN} {
		t.Run(string(backend), func(t *testing.T) {
			c := newLabCluster(t, backend, 1, 0, 1)
			a, far := c.nodes[0], c.nodes[2]
			client := c.lab.AddNS("client")
			c.lab.VethToBridge(client, "eth0", c.lan, "client", "br0")
			client.IP("addr", "add", "192.0.2.100/24", "dev", "eth0")

			endpoint := netip.AddrPortFrom(far.pods[0].ip, 8080)
			srv := newEchoServerAt(t, far.pods[0].ns, endpoint)
			c.createService(t, "web", "10.43.0.10", 30080, far.name, endpoint)
			for _, n := range c.nodes {
				c.startProxy(t, n)
			}

			if got := srv.connectVia(t, a.pods[0].ns, "10.43.0.10:80"); got != a.pods[0].ip {
				t.Errorf("through the ClusterIP, the pod on %s saw %s, want the client pod's own %s", far.name, got, a.pods[0].ip)
			}
			got := srv.connectVia(t, client, netip.AddrPortFrom(a.ip, 30080).String())
			if !c.isNodeAddress(a, got) {
				t.Errorf("through %s's NodePort, the pod on %s saw %s, want an address of %s (masqueraded)", a.name, far.name, got, a.name)
			}
		})
	}
}

// isNodeAddress tells whether ip is one of n's own addresses: its IP, its
// bridge's, or its VTEP's.
func (c *labCluster) isNodeAddress(n *labNode, ip netip.Addr) bool {
	return ip == n.ip || ip == n.podCIDR.Addr().Next() || ip == n.podCIDR.Addr()
}

// createService writes a NodePort Service with its ClusterIP and nodePort
// set (the fake clientset allocates nothing) and its EndpointSlice with one
// endpoint on node.
func (c *labCluster) createService(t testing.TB, name, clusterIP string, nodePort int32, node string, endpoint netip.AddrPort) {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeNodePort,
			ClusterIP:  clusterIP,
			ClusterIPs: []string{clusterIP},
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports: []corev1.ServicePort{{
				Name: "http", Protocol: corev1.ProtocolTCP, Port: 80,
				TargetPort: intstr.FromInt32(int32(endpoint.Port())), NodePort: nodePort,
			}},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
		},
	}
	if _, err := c.client.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ready, port := true, int32(endpoint.Port())
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", Name: name + "-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: name},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: &port}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{endpoint.Addr().String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &ready},
			NodeName:   &node,
		}},
	}
	if _, err := c.client.DiscoveryV1().EndpointSlices("default").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// startProxy runs tinykube's proxy in n's namespace until the test ends.
func (c *labCluster) startProxy(t testing.TB, n *labNode) {
	t.Helper()
	factory := informers.NewSharedInformerFactory(c.client, 0)
	p, err := proxy.New(proxy.Config{
		Client:      c.client,
		Informers:   factory,
		NodeName:    n.name,
		NodeIPs:     []netip.Addr{n.ip},
		ServiceCIDR: netip.MustParsePrefix("10.43.0.0/16"),
		ClusterCIDR: netip.MustParsePrefix(DefaultClusterCIDR),
		NFT:         nftTableIn(t, n.ns, knftables.InetFamily, proxy.TableName),
		Sysctl:      n.ns,
		Listen:      n.ns.Listen,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	factory.Start(ctx.Done())
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: proxy Run: %v", n.name, err)
		}
	})
	select {
	case <-p.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: the proxy did not sync within 30s: %+v", n.name, p.LastSync())
	}
}
