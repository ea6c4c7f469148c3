package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/knftables"

	"github.com/tinykube/tinykube/apiserver/apiservertest"
	"github.com/tinykube/tinykube/internal/netlab"
	"github.com/tinykube/tinykube/proxy"
)

// Lab addresses: the node and an external client share 10.200.0.0/24, pods
// live on a bridge in the node namespace, 10.42.0.0/24.
var (
	labNodeIP   = netip.MustParseAddr("10.200.0.1")
	labClientIP = netip.MustParseAddr("10.200.0.2")
	labServices = netip.MustParsePrefix("10.43.0.0/16")
	labPods     = netip.MustParsePrefix("10.42.0.0/16")
)

const labNode = "lab-node"

// lab is one node namespace running the proxier, a client namespace and
// pod namespaces running HTTP servers that answer with their name.
type lab struct {
	t      testing.TB
	net    *netlab.Lab
	node   *netlab.NS
	client *netlab.NS
	pods   map[string]netip.Addr // pod name -> IP
	podNS  map[string]*netlab.NS
	api    *apiservertest.Server
	proxy  *proxy.Proxier
}

func newLab(t testing.TB, pods ...string) *lab {
	t.Helper()
	nl := netlab.New(t)
	l := &lab{t: t, net: nl, pods: map[string]netip.Addr{}, podNS: map[string]*netlab.NS{}}
	l.node = nl.AddNS("node")
	l.client = nl.AddNS("client")
	if err := l.node.Set("net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}

	nl.Veth(l.node, "eth0", l.client, "eth0")
	l.node.IP("addr", "add", labNodeIP.String()+"/24", "dev", "eth0")
	l.client.IP("addr", "add", labClientIP.String()+"/24", "dev", "eth0")
	// The client plays another node: it routes the service CIDR to us.
	l.client.IP("route", "add", labServices.String(), "via", labNodeIP.String())
	// A node needs a route covering the service CIDR for its own ClusterIP
	// traffic to reach nat-output; real nodes have a default route.
	// The node's uplink leads to a namespace that forwards nothing: what
	// the node routes there goes no further.
	uplink := nl.AddNS("uplink")
	nl.Veth(l.node, "uplink", uplink, "eth0")
	l.node.IP("addr", "add", "10.201.0.1/24", "dev", "uplink")
	uplink.IP("addr", "add", "10.201.0.2/24", "dev", "eth0")
	l.node.IP("route", "add", "default", "via", "10.201.0.2")

	l.node.IP("link", "add", "cni0", "type", "bridge")
	l.node.IP("addr", "add", "10.42.0.1/24", "dev", "cni0")
	l.node.IP("link", "set", "cni0", "up")
	for i, name := range pods {
		ip := netip.AddrFrom4([4]byte{10, 42, 0, byte(10 + i)})
		l.pods[name] = ip
		pod := nl.AddNS(name)
		l.podNS[name] = pod
		host := fmt.Sprintf("veth%d", i)
		nl.Veth(l.node, host, pod, "eth0")
		l.node.IP("link", "set", host, "master", "cni0")
		// as the CNI bridge plugin's hairpinMode: a pod may reach itself
		// through a Service
		l.node.IP("link", "set", host, "type", "bridge_slave", "hairpin", "on")
		pod.IP("addr", "add", ip.String()+"/24", "dev", "eth0")
		pod.IP("route", "add", "default", "via", "10.42.0.1")
		ln, err := pod.Listen("tcp", ":8080")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/bytes" {
				// a bulk download for throughput benchmarks
				n, _ := strconv.Atoi(r.URL.Query().Get("n"))
				w.Header().Set("Content-Length", strconv.Itoa(n))
				buf := make([]byte, 64<<10)
				for n > 0 {
					k := min(n, len(buf))
					if _, err := w.Write(buf[:k]); err != nil {
						return
					}
					n -= k
				}
				return
			}
			fmt.Fprintf(w, "%s %s", name, r.RemoteAddr)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}

	l.api = apiservertest.Start(t, apiservertest.Options{})
	t.Setenv("PATH", l.node.NFTWrapper()+":"+os.Getenv("PATH"))
	nft, err := knftables.New(knftables.InetFamily, proxy.TableName)
	if err != nil {
		t.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(l.api.Client, 0)
	nodeNS, err := netns.GetFromPath("/var/run/netns/" + l.node.Name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nodeNS.Close() })
	conntrack, err := netlink.NewHandleAt(nodeNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conntrack.Close)
	p, err := proxy.New(proxy.Config{
		Conntrack:   conntrack,
		Client:      l.api.Client,
		Informers:   factory,
		NodeName:    labNode,
		NodeIPs:     []netip.Addr{labNodeIP},
		ServiceCIDR: labServices,
		ClusterCIDR: labPods,
		NFT:         nft,
		Sysctl:      l.node,
		Listen:      l.node.Listen,
	})
	if err != nil {
		t.Fatal(err)
	}
	l.proxy = p
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	factory.Start(ctx.Done())
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
		if err := <-done; err != nil {
			t.Errorf("proxy Run: %v", err)
		}
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("proxy ended before its first sync: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatalf("proxy did not sync: %+v", p.LastSync())
	}
	return l
}

// service creates a Service selecting nothing (the test writes its
// EndpointSlice) and returns it as allocated by the API server.
func (l *lab) service(name string, typ corev1.ServiceType, nodePort int32, mutate ...func(*corev1.Service)) *corev1.Service {
	l.t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{
			Type:  typ,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: nodePort}},
		},
	}
	for _, m := range mutate {
		m(svc)
	}
	out, err := l.api.Client.CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

// endpoints writes the Service's EndpointSlice: the named pods, ready
// unless listed in notReady.
func (l *lab) endpoints(service string, pods []string, notReady ...string) {
	l.t.Helper()
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", Name: service + "-abc",
			Labels: map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}},
	}
	for _, p := range pods {
		ready := true
		for _, n := range notReady {
			ready = ready && n != p
		}
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{l.pods[p].String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &ready, Terminating: ptr(false)},
			NodeName:   ptr(labNode),
		})
	}
	writeSlice(l.t, l.api.Client, slice)
}

func writeSlice(t testing.TB, c kubernetes.Interface, slice *discoveryv1.EndpointSlice) {
	t.Helper()
	ctx := context.Background()
	slices := c.DiscoveryV1().EndpointSlices(slice.Namespace)
	old, err := slices.Get(ctx, slice.Name, metav1.GetOptions{})
	if err == nil {
		slice.ResourceVersion = old.ResourceVersion
		_, err = slices.Update(ctx, slice, metav1.UpdateOptions{})
	} else {
		_, err = slices.Create(ctx, slice, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// get does one HTTP GET from ns on a fresh connection and returns the name
// of the pod that answered.
func get(ns *netlab.NS, addr netip.AddrPort) (string, error) {
	c := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DialContext:       ns.DialContext,
			DisableKeepAlives: true,
		},
	}
	resp, err := c.Get("http://" + addr.String() + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	pod, _, _ := strings.Cut(string(b), " ")
	return pod, nil
}

// answers sends n requests and counts the answers by pod.
func answers(t *testing.T, ns *netlab.NS, addr netip.AddrPort, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		pod, err := get(ns, addr)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", addr, ns.Name, err)
		}
		got[pod]++
	}
	return got
}

// eventually waits up to d for cond.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, d, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("%s: not within %v", what, d)
	}
}

func TestLabNodePortReachesBothPods(t *testing.T) {
	l := newLab(t, "pod1", "pod2")
	svc := l.service("nginx-service", corev1.ServiceTypeNodePort, 30007)
	l.endpoints("nginx-service", []string{"pod1", "pod2"})
	nodePort := netip.AddrPortFrom(labNodeIP, 30007)
	eventually(t, 10*time.Second, "NodePort answers", func() bool {
		_, err := get(l.client, nodePort)
		return err == nil
	})

	t.Run("from an external client to NODE_IP:nodePort", func(t *testing.T) {
		got := answers(t, l.client, nodePort, 40)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("answers by pod = %v, want both pods", got)
		}
	})
	t.Run("from the node to 127.0.0.1:nodePort", func(t *testing.T) {
		got := answers(t, l.node, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 30007), 20)
		if got["pod1"]+got["pod2"] != 20 {
			t.Errorf("answers by pod = %v", got)
		}
	})
	t.Run("from the node to its own NODE_IP:nodePort", func(t *testing.T) {
		got := answers(t, l.node, nodePort, 20)
		if got["pod1"]+got["pod2"] != 20 {
			t.Errorf("answers by pod = %v", got)
		}
	})
	clusterIP := netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIP), 80)
	t.Run("ClusterIP from another node", func(t *testing.T) {
		got := answers(t, l.client, clusterIP, 40)
		if got["pod1"] == 0 || got["pod2"] == 0 {
			t.Errorf("answers by pod = %v, want both pods", got)
		}
	})
	t.Run("ClusterIP from the node", func(t *testing.T) {
		got := answers(t, l.node, clusterIP, 20)
		if got["pod1"]+got["pod2"] != 20 {
			t.Errorf("answers by pod = %v", got)
		}
	})
	t.Run("the node's loopback stays closed to other hosts", func(t *testing.T) {
		// route_localnet is on for localhost NodePorts. A neighbour that
		// routes 127.0.0.0/8 to the node must still not reach a service
		// listening on the node's 127.0.0.1 (UDP: one packet tells).
		pc, err := l.node.ListenPacket("udp", "127.0.0.1:9999")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		l.client.IP("route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")
		l.client.IP("route", "del", "local", "127.0.0.1", "dev", "lo", "table", "local")
		l.client.IP("route", "add", "127.0.0.0/8", "via", labNodeIP.String())
		if err := l.client.Set("net/ipv4/conf/eth0/route_localnet", "1"); err != nil {
			t.Fatal(err)
		}
		c, err := l.client.DialContext(context.Background(), "udp", "127.0.0.1:9999")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for range 3 {
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
		}
		_ = pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 16)
		if n, from, err := pc.ReadFrom(buf); err == nil {
			t.Fatalf("the node's 127.0.0.1:9999 got %q from %v", buf[:n], from)
		}
	})

	t.Run("a pod failing readiness stops getting traffic within 2s", func(t *testing.T) {
		l.endpoints("nginx-service", []string{"pod1", "pod2"}, "pod2")
		start := time.Now()
		eventually(t, 2*time.Second, "only pod1 answers", func() bool {
			got := answers(t, l.client, nodePort, 10)
			return got["pod1"] == 10
		})
		t.Logf("readiness change took effect in %v", time.Since(start))
		if got := answers(t, l.client, nodePort, 30); got["pod2"] != 0 {
			t.Errorf("pod2 still answers after failing readiness: %v", got)
		}
	})
	t.Run("scale to 0 refuses at once, and back", func(t *testing.T) {
		l.endpoints("nginx-service", nil)
		eventually(t, 2*time.Second, "connection refused", func() bool {
			_, err := get(l.client, nodePort)
			return errors.Is(err, syscall.ECONNREFUSED)
		})
		l.endpoints("nginx-service", []string{"pod1", "pod2"})
		eventually(t, 2*time.Second, "answers again", func() bool {
			_, err := get(l.client, nodePort)
			return err == nil
		})
	})
}

func TestLabServiceWithoutEndpointsRefusesAtOnce(t *testing.T) {
	l := newLab(t, "pod1")
	svc := l.service("empty", corev1.ServiceTypeNodePort, 30008)
	eventually(t, 10*time.Second, "rules for the Service", func() bool {
		return l.proxy.LastSync().Err == nil && l.proxy.LastSync().Services > 0
	})
	for _, target := range []netip.AddrPort{
		netip.AddrPortFrom(labNodeIP, 30008),
		netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIP), 80),
	} {
		eventually(t, 5*time.Second, "connection refused to "+target.String(), func() bool {
			start := time.Now()
			c, err := l.client.DialContext(ctxTimeout(t, 2*time.Second), "tcp", target.String())
			if err == nil {
				c.Close()
				return false
			}
			return errors.Is(err, syscall.ECONNREFUSED) && time.Since(start) < time.Second
		})
	}
	t.Run("unallocated service address is dropped, not forwarded", func(t *testing.T) {
		// Neither refused nor forwarded to the uplink: the client times out.
		_, err := l.client.DialContext(ctxTimeout(t, 300*time.Millisecond), "tcp", "10.43.250.250:80")
		if err == nil || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
			t.Errorf("dial to an unallocated ClusterIP = %v, want a timeout (dropped)", err)
		}
	})
}

func TestLabExternalTrafficPolicyLocal(t *testing.T) {
	l := newLab(t, "pod1")
	svc := l.service("local", corev1.ServiceTypeLoadBalancer, 30009, func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	})
	if svc.Spec.HealthCheckNodePort == 0 {
		t.Fatalf("API server allocated no healthCheckNodePort: %+v", svc.Spec)
	}
	l.endpoints("local", []string{"pod1"})
	nodePort := netip.AddrPortFrom(labNodeIP, 30009)
	eventually(t, 10*time.Second, "NodePort answers", func() bool {
		_, err := get(l.client, nodePort)
		return err == nil
	})
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: l.client.DialContext, DisableKeepAlives: true}}
	t.Run("the pod sees the client's own address", func(t *testing.T) {
		resp, err := c.Get("http://" + nodePort.String())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), labClientIP.String()+":") {
			t.Errorf("pod saw %q, want the client address %s", b, labClientIP)
		}
	})
	hc := fmt.Sprintf("http://%s:%d/", labNodeIP, svc.Spec.HealthCheckNodePort)
	t.Run("healthCheckNodePort says 200 with a local endpoint", func(t *testing.T) {
		eventually(t, 5*time.Second, "health check 200", func() bool {
			resp, err := c.Get(hc)
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode == 200 && strings.Contains(string(b), `"localEndpoints":1`)
		})
	})
	t.Run("without local endpoint: 503 and NodePort traffic dropped", func(t *testing.T) {
		l.endpoints("local", []string{"pod1"}, "pod1")
		eventually(t, 5*time.Second, "health check 503", func() bool {
			resp, err := c.Get(hc)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusServiceUnavailable
		})
	})
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func ptr[T any](v T) *T { return &v }

func TestLabSessionAffinity(t *testing.T) {
	l := newLab(t, "pod1", "pod2")
	svc := l.service("sticky", corev1.ServiceTypeClusterIP, 0, func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	})
	l.endpoints("sticky", []string{"pod1", "pod2"})
	clusterIP := netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIP), 80)
	eventually(t, 10*time.Second, "ClusterIP answers", func() bool {
		_, err := get(l.client, clusterIP)
		return err == nil
	})
	// Without affinity 30 fresh connections would reach both pods but
	// once in 2^29.
	got := answers(t, l.client, clusterIP, 30)
	if len(got) != 1 {
		t.Errorf("answers by pod = %v, want every connection on one pod", got)
	}
	// The node is another client: it may land elsewhere, but sticks too.
	if got := answers(t, l.node, clusterIP, 30); len(got) != 1 {
		t.Errorf("answers to the node by pod = %v, want one pod", got)
	}
}

func TestLabPodReachesItselfThroughItsService(t *testing.T) {
	l := newLab(t, "pod1")
	svc := l.service("self", corev1.ServiceTypeClusterIP, 0)
	l.endpoints("self", []string{"pod1"})
	clusterIP := netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIP), 80)
	// hairpin: DNATed back to its own address, the pod would answer itself
	// directly unless the node masquerades the connection
	eventually(t, 10*time.Second, "pod1 reaches its own Service", func() bool {
		pod, err := get(l.podNS["pod1"], clusterIP)
		return err == nil && pod == "pod1"
	})
}

// TestLabExternalIP checks an external IP of an externalTrafficPolicy
// Cluster Service: both pods answer, and they see the node's address (the
// traffic is masqueraded so that replies come back through the node).
func TestLabExternalIP(t *testing.T) {
	l := newLab(t, "pod1", "pod2")
	externalIP := netip.MustParseAddr("10.203.0.7")
	l.service("ext", corev1.ServiceTypeClusterIP, 0, func(s *corev1.Service) {
		s.Spec.ExternalIPs = []string{externalIP.String()}
	})
	l.endpoints("ext", []string{"pod1", "pod2"})
	// The client's network routes the external IP to the node.
	l.client.IP("route", "add", externalIP.String()+"/32", "via", labNodeIP.String())
	addr := netip.AddrPortFrom(externalIP, 80)
	eventually(t, 10*time.Second, "external IP answers", func() bool {
		_, err := get(l.client, addr)
		return err == nil
	})
	got := answers(t, l.client, addr, 40)
	if got["pod1"] == 0 || got["pod2"] == 0 {
		t.Errorf("answers by pod = %v, want both pods", got)
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: l.client.DialContext, DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), labClientIP.String()+":") {
		t.Errorf("pod saw %q: the client's address, want the traffic masqueraded", b)
	}
}

// TestLabUDPFlowFollowsEndpointChanges: a UDP client that keeps its socket
// (as DNS resolvers and game clients do) first hits a Service without
// endpoints, then keeps sending once an endpoint appears, and again after
// that endpoint is replaced: each time its packets reach a live endpoint,
// because the proxy deletes the conntrack entries that pinned them.
func TestLabUDPFlowFollowsEndpointChanges(t *testing.T) {
	l := newLab(t, "pod1", "pod2")
	for name, ns := range l.podNS {
		pc, err := ns.ListenPacket("udp", ":5353")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo([]byte(name+" "+string(buf[:n])), from)
			}
		}()
	}
	svc := l.service("echo", corev1.ServiceTypeNodePort, 30053, func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(5353), NodePort: 30053}}
	})
	udpSlice := func(pods ...string) {
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "echo-abc",
				Labels: map[string]string{discoveryv1.LabelServiceName: "echo"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr("dns"), Protocol: ptr(corev1.ProtocolUDP), Port: ptr(int32(5353))}},
		}
		for _, p := range pods {
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{
				Addresses: []string{l.pods[p].String()}, NodeName: ptr(labNode),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(true), Terminating: ptr(false)},
			})
		}
		writeSlice(t, l.api.Client, slice)
	}
	for _, target := range []string{
		net.JoinHostPort(labNodeIP.String(), "30053"),
		net.JoinHostPort(svc.Spec.ClusterIP, "53"),
	} {
		t.Run(target, func(t *testing.T) {
			udpSlice()
			conn, err := l.client.DialContext(ctxTimeout(t, 5*time.Second), "udp", target)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// ask sends one datagram on the same socket and returns the
			// answer, if one comes.
			ask := func() string {
				_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
				if _, err := conn.Write([]byte("hi")); err != nil {
					return ""
				}
				buf := make([]byte, 100)
				n, err := conn.Read(buf)
				if err != nil {
					return ""
				}
				return string(buf[:n])
			}
			// No endpoints: nothing answers (once the previous subtest's
			// endpoint is gone from the rules and from conntrack).
			eventually(t, 10*time.Second, "no answer without endpoints", func() bool { return ask() == "" })
			udpSlice("pod1")
			eventually(t, 10*time.Second, "pod1 answering the same socket", func() bool { return ask() == "pod1 hi" })
			udpSlice("pod2")
			eventually(t, 10*time.Second, "pod2 answering the same socket after pod1 left", func() bool { return ask() == "pod2 hi" })
		})
	}
}
