package nodenet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	"k8s.io/utils/clock"
	"sigs.k8s.io/knftables"

	"github.com/tinykube/tinykube/internal/netlab"
)

// The lab: a "lan" namespace with the bridge br0; node namespaces with eth0
// on br0 (192.0.2.N/24, TEST-NET-1) and the pods' bridge tinykube0
// (10.42.N.1/24, as the kubelet's CNI config makes it); pod namespaces with
// eth0 on tinykube0 (10.42.N.2, .3, ...) and a default route via 10.42.N.1.

// labNode is one node of the lab, running its own NodeNet.
type labNode struct {
	name    string
	ns      *netlab.NS
	ip      netip.Addr
	podCIDR netip.Prefix
	pods    []labPod
	nl      *netlink.Handle
	nft     knftables.Interface
	net     *NodeNet
	logs    *logBuffer
	stop    func() // stops its NodeNet; for good at the end of the test
}

type labPod struct {
	ns *netlab.NS
	ip netip.Addr
}

type labCluster struct {
	lab     *netlab.Lab
	lan     *netlab.NS // the L2 segment of build, with bridge br0
	backend Backend
	client  *fake.Clientset
	nodes   []*labNode
	// clock and resync configure every NodeNet. Zero: the real clock and
	// an hour, so that every repair a test sees is event-driven.
	clock  clock.WithTicker
	resync time.Duration
}

// labSegment is a network the lab's nodes plug into: a bridge in the hub
// namespace, and the router of the segment's subnet, if any.
type labSegment struct {
	hub    *netlab.NS
	bridge string
	subnet netip.Prefix
	router netip.Addr
}

// newLabCluster builds len(podsPerNode) nodes on one L2 segment, node i
// with podsPerNode[i] pods, and runs NodeNet with backend on each; it
// returns once every node routes to every other.
func newLabCluster(t testing.TB, backend Backend, podsPerNode ...int) *labCluster {
	t.Helper()
	c := &labCluster{lab: netlab.New(t), backend: backend}
	c.build(t, podsPerNode...)
	c.run(t)
	return c
}

// build adds nodes on one L2 segment, node i with podsPerNode[i] pods.
func (c *labCluster) build(t testing.TB, podsPerNode ...int) {
	t.Helper()
	c.lan = c.lab.AddNS("lan")
	c.lan.AddBridge("br0")
	for _, pods := range podsPerNode {
		c.addNode(t, labSegment{hub: c.lan, bridge: "br0", subnet: netip.MustParsePrefix("192.0.2.0/24")}, pods)
	}
}

// newRoutedLabCluster builds two nodes with a pod each on two subnets
// (192.0.2.0/24 and 198.51.100.0/24) that only a router namespace joins, so
// that the nodes share no L2 segment; it runs NodeNet with backend on both.
func newRoutedLabCluster(t testing.TB, backend Backend) *labCluster {
	t.Helper()
	c := &labCluster{lab: netlab.New(t), backend: backend}
	router := c.lab.AddNS("router")
	if err := router.Set("net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	for i, subnet := range []string{"192.0.2.0/24", "198.51.100.0/24"} {
		seg := labSegment{hub: router, bridge: fmt.Sprintf("br%d", i+1), subnet: netip.MustParsePrefix(subnet)}
		seg.router = lastAddr(seg.subnet)
		router.AddBridge(seg.bridge)
		router.IP("addr", "add", netip.PrefixFrom(seg.router, seg.subnet.Bits()).String(), "dev", seg.bridge)
		c.addNode(t, seg, 1)
	}
	c.run(t)
	return c
}

// lastAddr is the last host address of a /24.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	a[3] = 254
	return netip.AddrFrom4(a)
}

// addNode adds node N (the next number) on seg, with address N in seg's
// subnet, podCIDR 10.42.N.0/24 and pods pod namespaces.
func (c *labCluster) addNode(t testing.TB, seg labSegment, pods int) {
	t.Helper()
	num := len(c.nodes) + 1
	ip := seg.subnet.Addr().As4()
	ip[3] = byte(num)
	n := &labNode{
		name:    fmt.Sprintf("node-%d", num),
		ns:      c.lab.AddNS(fmt.Sprintf("n%d", num)),
		ip:      netip.AddrFrom4(ip),
		podCIDR: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 42, byte(num), 0}), 24),
		logs:    &logBuffer{},
	}
	c.lab.VethToBridge(n.ns, "eth0", seg.hub, fmt.Sprintf("n%d", num), seg.bridge)
	n.ns.IP("addr", "add", netip.PrefixFrom(n.ip, seg.subnet.Bits()).String(), "dev", "eth0")
	if seg.router.IsValid() {
		n.ns.IP("route", "add", "default", "via", seg.router.String())
	}
	n.ns.AddBridge("tinykube0")
	gw := n.podCIDR.Addr().Next()
	n.ns.IP("addr", "add", netip.PrefixFrom(gw, 24).String(), "dev", "tinykube0")
	podIP := gw
	for j := range pods {
		podIP = podIP.Next()
		pod := labPod{ns: c.lab.AddNS(fmt.Sprintf("n%dp%d", num, j+1)), ip: podIP}
		c.lab.VethToBridge(pod.ns, "eth0", n.ns, fmt.Sprintf("pod%d", j+1), "tinykube0")
		if c.backend == VXLAN {
			// As the kubelet's CNI config must: room for the VXLAN headers.
			pod.ns.IP("link", "set", "eth0", "mtu", fmt.Sprint(VXLANMTU))
			n.ns.IP("link", "set", fmt.Sprintf("pod%d", j+1), "mtu", fmt.Sprint(VXLANMTU))
		}
		pod.ns.IP("addr", "add", netip.PrefixFrom(podIP, 24).String(), "dev", "eth0")
		pod.ns.IP("route", "add", "default", "via", gw.String())
		n.pods = append(n.pods, pod)
	}
	n.nl = netlinkIn(t, n.ns)
	n.nft = nftIn(t, n.ns)
	c.nodes = append(c.nodes, n)
}

// run creates the Nodes, starts a NodeNet on each node and waits until
// every node routes to every other.
func (c *labCluster) run(t testing.TB) {
	t.Helper()
	c.createNodes(t)
	for _, n := range c.nodes {
		c.start(t, n)
	}
	for _, n := range c.nodes {
		n.waitReady(t)
	}
	// With vxlan, a node routes to another once it has seen that node's
	// VTEP published, after both synced once.
	for _, n := range c.nodes {
		eventually(t, "routes to every other node on "+n.name,
			func() bool { return len(n.ourRoutes(t)) == len(c.nodes)-1 },
			func() string { return strings.Join(n.ourRoutes(t), ", ") + "\nlog:\n" + n.logs.String() })
	}
}

// createNodes creates the lab's Nodes, in a new fake clientset unless the
// test made one.
func (c *labCluster) createNodes(t testing.TB) {
	t.Helper()
	if c.client == nil {
		c.client = fake.NewClientset()
	}
	for _, n := range c.nodes {
		if _, err := c.client.CoreV1().Nodes().Create(context.Background(), labNodeObject(n.name, n.podCIDR, n.ip), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func labNodeObject(name string, podCIDR netip.Prefix, ip netip.Addr) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDR: podCIDR.String(), PodCIDRs: []string{podCIDR.String()}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: ip.String()},
			{Type: corev1.NodeHostName, Address: name},
		}},
	}
}

// start runs n's NodeNet until the test ends.
func (c *labCluster) start(t testing.TB, n *labNode) {
	t.Helper()
	if c.resync == 0 {
		c.resync = time.Hour
	}
	factory := informers.NewSharedInformerFactory(c.client, 0)
	nn, err := New(Config{
		Nodes:        factory.Core().V1().Nodes(),
		Client:       c.client,
		NodeName:     n.name,
		NodeIP:       n.ip,
		Backend:      c.backend,
		Netns:        n.ns.Path(),
		NFT:          n.nft,
		Sysctl:       n.ns,
		Clock:        c.clock,
		ResyncPeriod: c.resync,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nn.Close) // after n.stop, registered below
	n.net = nn
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), n.logs.logger()))
	done := make(chan error, 1)
	factory.Start(ctx.Done())
	go func() { done <- nn.Run(ctx) }()
	n.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("%s: Run: %v", n.name, err)
		}
		factory.Shutdown()
	})
	t.Cleanup(n.stop)
}

// waitReady waits for n's first successful sync.
func (n *labNode) waitReady(t testing.TB) {
	t.Helper()
	select {
	case <-n.net.Ready():
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no successful sync within 30s; log:\n%s", n.name, n.logs)
	}
}

// netlinkIn opens a netlink handle inside ns, closed when t ends.
func netlinkIn(t testing.TB, ns *netlab.NS) *netlink.Handle {
	t.Helper()
	nsh, err := netns.GetFromPath(ns.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// nftIn returns a knftables interface for nodenet's table inside ns.
func nftIn(t testing.TB, ns *netlab.NS) knftables.Interface {
	t.Helper()
	return nftTableIn(t, ns, knftables.IPv4Family, TableName)
}

// nftTableIn returns a knftables interface for a table inside ns.
func nftTableIn(t testing.TB, ns *netlab.NS, family knftables.Family, table string) knftables.Interface {
	t.Helper()
	// knftables finds nft in PATH once, in New: the wrapper that enters ns
	// must be first in PATH only for that call.
	path := os.Getenv("PATH")
	os.Setenv("PATH", ns.NFTWrapper()+":"+path)
	nft, err := knftables.New(family, table)
	os.Setenv("PATH", path)
	if err != nil {
		t.Fatal(err)
	}
	return nft
}

// ourRoutes lists nodenet's routes on n as "DST via GW", sorted.
func (n *labNode) ourRoutes(t testing.TB) []string {
	t.Helper()
	routes, err := n.nl.RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: RouteProtocol},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range routes {
		out = append(out, fmt.Sprintf("%s via %s", r.Dst, r.Gw))
	}
	slices.Sort(out)
	return out
}

// eventually polls cond until it holds, failing t after 30s with what
// describe says of the state then.
func eventually(t testing.TB, what string, cond func() bool, describe func() string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v; now: %s", what, err, describe())
	}
}

// echoServer accepts on a listener inside a namespace, echoes what it
// reads, and reports each client's address.
type echoServer struct {
	ln      net.Listener
	clients chan netip.Addr
}

func newEchoServer(t testing.TB, ns *netlab.NS, ip netip.Addr) *echoServer {
	t.Helper()
	return newEchoServerAt(t, ns, netip.AddrPortFrom(ip, 0))
}

func newEchoServerAt(t testing.TB, ns *netlab.NS, addr netip.AddrPort) *echoServer {
	t.Helper()
	ln, err := ns.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{ln: ln, clients: make(chan netip.Addr, 100)}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.clients <- netip.MustParseAddrPort(conn.RemoteAddr().String()).Addr()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
	return s
}

// connect dials the server from ns until a round trip works, and returns
// the client address the server saw.
func (s *echoServer) connect(t testing.TB, from *netlab.NS) netip.Addr {
	t.Helper()
	return s.connectVia(t, from, s.ln.Addr().String())
}

// connectVia is connect through another address that leads to the server
// (a Service's).
func (s *echoServer) connectVia(t testing.TB, from *netlab.NS, addr string) netip.Addr {
	t.Helper()
	var lastErr error
	try := func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		conn, err := from.DialContext(ctx, "tcp", addr)
		if err != nil {
			lastErr = err
			return false, nil
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte("ping")); err != nil {
			lastErr = err
			return false, nil
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err != nil {
			lastErr = err
			return false, nil
		}
		return true, nil
	}
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, try); err != nil {
		t.Fatalf("connecting from %s to %s: %v (last: %v)", from.Name, addr, err, lastErr)
	}
	// The server saw every attempt that connected; the last is ours.
	var seen netip.Addr
	for {
		select {
		case seen = <-s.clients:
		default:
			return seen
		}
	}
}

// logBuffer collects a NodeNet's log.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) logger() klog.Logger {
	return textlogger.NewLogger(textlogger.NewConfig(textlogger.Output(b)))
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
