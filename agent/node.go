package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/netip"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/internal/lifecycle"
	"github.com/tinykube/tinykube/kubelet"
	"github.com/tinykube/tinykube/kubelet/supervisor"
	"github.com/tinykube/tinykube/nodenet"
	"github.com/tinykube/tinykube/proxy"
)

// BackendNone is the node routing backend that runs no node routing: pod
// traffic between nodes is left to the user.
const BackendNone = "none"

// NodeStopTimeout bounds how long shutdown waits for each of the node's
// components.
const NodeStopTimeout = 15 * time.Second

// Settings are what every node is told, on `server` and `agent` alike
// (k3s's flag names in brackets).
type Settings struct {
	NodeName          string       // --node-name
	NodeIP            netip.Addr   // --node-ip
	ServiceCIDR       netip.Prefix // --service-cidr
	ClusterCIDR       netip.Prefix // --cluster-cidr
	ClusterDNS        netip.Addr   // --cluster-dns
	ClusterDomain     string       // --cluster-domain
	NodePortAddresses []netip.Prefix
	FlushRules        bool
	RuntimeEndpoint   string // --container-runtime-endpoint
	PrivateRegistry   string // --private-registry
	// Backend routes pod traffic between nodes (nodenet.Backend), or
	// BackendNone.
	Backend string
}

// DefaultNodeName is the host name, lower-cased, as the kubelet defaults
// it.
func DefaultNodeName() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		return "", err
	}
	return strings.ToLower(host), nil
}

// NodeConfig is what a node needs: its settings, its identity and where
// the API is.
type NodeConfig struct {
	Settings
	DataDir string
	// API is the node's client configuration: credentials of
	// system:node:NAME.
	API         *rest.Config
	ServingCert *tls.Certificate
	ClientCAs   *x509.CertPool
}

// clientFor is a clientset of the node's identity, named for a component.
func (c NodeConfig) clientFor(component string, qps float32) (kubernetes.Interface, error) {
	rc := rest.CopyConfig(c.API)
	rc.UserAgent = component + "/tinykube"
	rc.QPS, rc.Burst = qps, int(2*qps)
	return kubernetes.NewForConfig(rc)
}

// StartNode builds the node's components and starts them in g, in order,
// each once the one before is ready: containerd (unless the node uses an
// existing one), the kubelet, the proxy, node routing and cluster DNS. Missing packages fail here, in one error; the
// components then run until g stops them.
func StartNode(ctx context.Context, g *lifecycle.Group, c NodeConfig) error {
	kubeletClient, err := c.clientFor("kubelet", 50)
	if err != nil {
		return err
	}
	// Events get their own rate limit, as upstream's eventRecordQPS.
	eventClient, err := c.clientFor("kubelet", 50)
	if err != nil {
		return err
	}
	// Without tinykube's node routing the bridge masquerades whatever
	// leaves the node, as a single node needs.
	ipMasq, mtu := c.Backend == BackendNone, 0
	if c.Backend == string(nodenet.VXLAN) {
		mtu = nodenet.VXLANMTU
	}
	// The container runtime starts first: tinykube's own containerd,
	// unless the node uses an existing one.
	endpoint := c.RuntimeEndpoint
	var containerd *supervisor.Supervisor
	if endpoint == "" {
		if containerd, err = kubelet.NewContainerd(c.DataDir, g.Logger("containerd")); err != nil {
			return err
		}
		endpoint = containerd.Address()
	}
	k, err := kubelet.New(kubelet.Config{
		Client:                   kubeletClient,
		EventClient:              eventClient,
		NodeName:                 c.NodeName,
		NodeIP:                   c.NodeIP,
		DataDir:                  c.DataDir,
		ContainerRuntimeEndpoint: endpoint,
		Logger:                   g.Logger("kubelet"),
		RegistriesFile:           c.PrivateRegistry,
		ClusterDNS:               []netip.Addr{c.ClusterDNS},
		ClusterDomain:            c.ClusterDomain,
		IPMasq:                   ipMasq,
		MTU:                      mtu,
		ServingCert:              c.ServingCert,
		ClientCAs:                c.ClientCAs,
	})
	if err != nil {
		return err
	}
	proxyClient, err := c.clientFor("kube-proxy", 50)
	if err != nil {
		return err
	}
	// The proxy, the DNS server and the node routing share one cache of
	// Services, EndpointSlices and Nodes.
	svcInformers := informers.NewSharedInformerFactory(proxyClient, 0)
	p, err := proxy.New(proxy.Config{
		Client:            proxyClient,
		Informers:         svcInformers,
		NodeName:          c.NodeName,
		NodeIPs:           []netip.Addr{c.NodeIP},
		NodePortAddresses: c.NodePortAddresses,
		ServiceCIDR:       c.ServiceCIDR,
		ClusterCIDR:       c.ClusterCIDR,
		FlushOnShutdown:   c.FlushRules,
	})
	if err != nil {
		return err
	}
	var routing *nodenet.NodeNet
	if c.Backend != BackendNone {
		routingClient, err := c.clientFor("tinykube-nodenet", 20)
		if err != nil {
			return err
		}
		if routing, err = nodenet.New(nodenet.Config{
			Nodes:       svcInformers.Core().V1().Nodes(),
			Client:      routingClient,
			NodeName:    c.NodeName,
			NodeIP:      c.NodeIP,
			ClusterCIDR: c.ClusterCIDR,
			Backend:     nodenet.Backend(c.Backend),
		}); err != nil {
			return err
		}
	}
	dns, err := newClusterDNS(c, proxyClient, svcInformers)
	if err != nil {
		return err
	}

	if containerd != nil {
		if err := g.Start(ctx, lifecycle.Component{Name: "containerd", Run: containerd.Run, Ready: containerd.Ready(), StopTimeout: NodeStopTimeout}); err != nil {
			return err
		}
	}
	if err := g.Start(ctx, lifecycle.Component{Name: "kubelet", Run: k.Run, Ready: k.Ready(), StopTimeout: NodeStopTimeout}); err != nil {
		return err
	}
	// The proxy's component runs the shared informers: node routing and
	// DNS start after it and stop before it.
	if err := g.Start(ctx, lifecycle.Component{Name: "proxy", Ready: p.Ready(), StopTimeout: NodeStopTimeout,
		Run: func(ctx context.Context) error {
			svcInformers.Start(ctx.Done())
			defer svcInformers.Shutdown()
			return p.Run(ctx)
		}}); err != nil {
		return err
	}
	if routing != nil {
		if err := g.Start(ctx, lifecycle.Component{Name: "nodenet", Ready: routing.Ready(), StopTimeout: NodeStopTimeout,
			Run: func(ctx context.Context) error {
				defer routing.Close()
				return routing.Run(ctx)
			}}); err != nil {
			return err
		}
	}
	return g.Start(ctx, lifecycle.Component{Name: "dns", Run: dns.run, Ready: dns.ready, StopTimeout: NodeStopTimeout})
}
