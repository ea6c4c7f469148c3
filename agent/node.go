package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/nodenet"
	"github.com/tinykube/tinykube/pki"
	"github.com/tinykube/tinykube/proxy"
	"github.com/tinykube/tinykube/proxy/dns"
)

// backendNone is the --flannel-backend that runs no node routing.
const backendNone = "none"

// nodeStopTimeout bounds how long shutdown waits for the node's parts.
const nodeStopTimeout = 15 * time.Second

// nodeSettings are the flags every node takes, on `server` and `agent`
// alike (k3s's names).
type nodeSettings struct {
	nodeName          string
	nodeIP            netip.Addr
	serviceCIDR       netip.Prefix
	clusterCIDR       netip.Prefix
	clusterDNS        netip.Addr
	clusterDomain     string
	nodePortAddresses []netip.Prefix
	flushRules        bool
	runtimeEndpoint   string
	privateRegistry   string
	// backend routes pod traffic between nodes; "none" leaves it to the
	// user.
	backend string
}

// nodeConfig is what a node needs: its settings, its identity and where
// the API is.
type nodeConfig struct {
	nodeSettings
	dataDir string
	// api is the node's client configuration: credentials of
	// system:node:NAME.
	api         *rest.Config
	servingCert *tls.Certificate
	clientCAs   *x509.CertPool
	logger      *slog.Logger
}

// node is a running kubelet, proxy and cluster DNS server.
type node struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	logger *slog.Logger
}

// defaultNodeName is the host name, lower-cased, as the kubelet defaults
// it.
func defaultNodeName() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", err
	}
	return strings.ToLower(host), nil
}

// serverNodeConfig is the node of the server's own host: it authenticates
// as system:node:NAME with a certificate the cluster CA issues directly.
func serverNodeConfig(s nodeSettings, dataDir, caDir, url string, caPEM []byte, logger *slog.Logger) (nodeConfig, error) {
	nb, err := pki.EnsureNode(pki.NodeConfig{
		CADir:    caDir,
		Dir:      filepath.Join(dataDir, "agent", "tls"),
		NodeName: s.nodeName,
		IPs:      []netip.Addr{s.nodeIP},
	})
	if err != nil {
		return nodeConfig{}, err
	}
	return nodeConfig{
		nodeSettings: s,
		dataDir:      dataDir,
		api: &rest.Config{
			Host: url,
			TLSClientConfig: rest.TLSClientConfig{
				CAData:   caPEM,
				CertData: nb.ClientCertPEM,
				KeyData:  nb.ClientKeyPEM,
			},
		},
		servingCert: &nb.Serving,
		clientCAs:   nb.ClientCAs,
		logger:      logger,
	}, nil
}

// clientFor is a clientset of the node's identity, named for a component.
func (c nodeConfig) clientFor(component string, qps float32) (kubernetes.Interface, error) {
	rc := rest.CopyConfig(c.api)
	rc.UserAgent = component + "/tinykube"
	rc.QPS, rc.Burst = qps, int(2*qps)
	return kubernetes.NewForConfig(rc)
}

// startNode starts the kubelet, the proxy and the DNS server of a node.
// Missing packages fail here, in one line; the parts then run in the
// background until stop.
func startNode(ctx context.Context, c nodeConfig) (*node, error) {
	kubeletClient, err := c.clientFor("kubelet", 50)
	if err != nil {
		return nil, err
	}
	// Events get their own rate limit, as upstream's eventRecordQPS.
	eventClient, err := c.clientFor("kubelet", 50)
	if err != nil {
		return nil, err
	}
	// Without tinykube's node routing the bridge masquerades whatever
	// leaves the node, as a single node needs.
	ipMasq, mtu := c.backend == backendNone, 0
	if c.backend == string(nodenet.VXLAN) {
		mtu = nodenet.VXLANMTU
	}
	k, err := kubelet.New(kubelet.Config{
		Client:                   kubeletClient,
		EventClient:              eventClient,
		NodeName:                 c.nodeName,
		NodeIP:                   c.nodeIP,
		DataDir:                  c.dataDir,
		ContainerRuntimeEndpoint: c.runtimeEndpoint,
		RegistriesFile:           c.privateRegistry,
		ClusterDNS:               []netip.Addr{c.clusterDNS},
		ClusterDomain:            c.clusterDomain,
		IPMasq:                   ipMasq,
		MTU:                      mtu,
		ServingCert:              c.servingCert,
		ClientCAs:                c.clientCAs,
	})
	if err != nil {
		return nil, err
	}
	proxyClient, err := c.clientFor("kube-proxy", 50)
	if err != nil {
		return nil, err
	}
	// The proxy, the DNS server and the node routing share one cache of
	// Services, EndpointSlices and Nodes.
	svcInformers := informers.NewSharedInformerFactory(proxyClient, 0)
	p, err := proxy.New(proxy.Config{
		Client:            proxyClient,
		Informers:         svcInformers,
		NodeName:          c.nodeName,
		NodeIPs:           []netip.Addr{c.nodeIP},
		NodePortAddresses: c.nodePortAddresses,
		ServiceCIDR:       c.serviceCIDR,
		ClusterCIDR:       c.clusterCIDR,
		FlushOnShutdown:   c.flushRules,
	})
	if err != nil {
		return nil, err
	}
	var routing *nodenet.NodeNet
	if c.backend != backendNone {
		routingClient, err := c.clientFor("tinykube-nodenet", 20)
		if err != nil {
			return nil, err
		}
		if routing, err = nodenet.New(nodenet.Config{
			Nodes:       svcInformers.Core().V1().Nodes(),
			Client:      routingClient,
			NodeName:    c.nodeName,
			NodeIP:      c.nodeIP,
			ClusterCIDR: c.clusterCIDR,
			Backend:     nodenet.Backend(c.backend),
		}); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	n := &node{cancel: cancel, logger: c.logger}
	run := func(name string, f func(context.Context) error) {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				c.logger.Error(name+" stopped", "err", err)
			}
		}()
	}
	if routing != nil {
		run("node routing", func(ctx context.Context) error {
			defer routing.Close()
			return routing.Run(ctx)
		})
	}
	run("kubelet", k.Run)
	run("proxy", p.Run)
	run("dns", func(ctx context.Context) error { return c.runDNS(ctx, proxyClient, svcInformers) })
	svcInformers.Start(ctx.Done())
	go func() {
		select {
		case <-k.Ready():
			c.logger.Info("kubelet ready", "node", c.nodeName)
		case <-ctx.Done():
		}
	}()
	return n, nil
}

// runDNS serves cluster DNS on the gateway address of the node's pod
// bridge, where kube-system/kube-dns's slice for this node points. It
// waits for the node's pod CIDR; the address may not exist yet (the
// bridge comes with the first pod), hence IP_FREEBIND.
func (c nodeConfig) runDNS(ctx context.Context, client kubernetes.Interface, f informers.SharedInformerFactory) error {
	var gateway netip.Addr
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, c.nodeName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		cidr, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil {
			return false, nil
		}
		gateway = cidr.Masked().Addr().Next()
		return true, nil
	})
	if err != nil {
		return err
	}
	lc := net.ListenConfig{Control: func(network, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			level, opt := unix.IPPROTO_IP, unix.IP_FREEBIND
			if strings.HasSuffix(network, "6") {
				level, opt = unix.IPPROTO_IPV6, unix.IPV6_FREEBIND
			}
			serr = unix.SetsockoptInt(int(fd), level, opt, 1)
		})
		return errors.Join(err, serr)
	}}
	s, err := dns.New(dns.Config{
		Informers: f,
		Addr:      net.JoinHostPort(gateway.String(), "53"),
		Domain:    c.clusterDomain,
		ListenPacket: func(network, address string) (net.PacketConn, error) {
			return lc.ListenPacket(ctx, network, address)
		},
		Listen: func(network, address string) (net.Listener, error) {
			return lc.Listen(ctx, network, address)
		},
	})
	if err != nil {
		return err
	}
	// The factory was started before this informer was asked for.
	f.Start(ctx.Done())
	go func() {
		select {
		case <-s.Ready():
			c.logger.Info("cluster DNS ready", "addr", s.Addr())
		case <-ctx.Done():
		}
	}()
	if err := s.Run(ctx); err != nil {
		return fmt.Errorf("cluster DNS on %s: %w", gateway, err)
	}
	return nil
}

// stop ends the node's parts; running containers keep running, and so do
// the proxy's rules unless --flush-rules.
func (n *node) stop() {
	n.cancel()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(nodeStopTimeout):
		n.logger.Warn("node still stopping; not waiting for it", "after", nodeStopTimeout)
	}
}
