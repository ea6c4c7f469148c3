package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tinykube/tinykube/agent"
	"github.com/tinykube/tinykube/nodenet"
	"github.com/tinykube/tinykube/server"
)

// serverOptions are the `tinykube server` flags, named as k3s names them so
// its users need not learn new ones.
type serverOptions struct {
	dataDir          string
	bindAddress      string
	port             int
	advertiseAddress string
	writeKubeconfig  string
	serviceCIDR      string
	clusterCIDR      string
	nodePortRange    string
	requestTimeout   time.Duration
	profiling        bool
	disableAgent     bool
	token            string
	disable          []string
	maxInFlight      int
	maxMutating      int
	nodeLifecycle    nodeLifecycleFlags
	node             nodeFlags
	log              logOptions
}

// nodeFlags are the flags of the node part, shared by `server` and
// `agent`.
type nodeFlags struct {
	nodeName          string
	nodeIP            string
	clusterDNS        string
	clusterDomain     string
	nodePortAddresses []string
	flushRules        bool
	runtimeEndpoint   string
	privateRegistry   string
	backend           string
}

// addNodeFlags registers the node flags on f.
func addNodeFlags(f *pflag.FlagSet, n *nodeFlags) {
	f.StringVar(&n.nodeName, "node-name", "", "name of this node (default: the host name)")
	f.StringVar(&n.nodeIP, "node-ip", "", "this node's InternalIP (default: the address of the default route's interface)")
	f.StringVar(&n.clusterDNS, "cluster-dns", "", "ClusterIP of the cluster DNS Service kube-system/kube-dns, written into pods' resolv.conf (default: the tenth address of --service-cidr)")
	f.StringVar(&n.clusterDomain, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	f.StringSliceVar(&n.nodePortAddresses, "nodeport-addresses", nil, "CIDRs of the node addresses NodePorts answer on, e.g. 192.168.1.0/24,127.0.0.0/8 (default: every node address and 127.0.0.1)")
	f.BoolVar(&n.flushRules, "flush-rules", false, "remove the proxy's nftables table on shutdown (by default the rules stay, so Services keep working across a restart)")
	f.StringVar(&n.runtimeEndpoint, "container-runtime-endpoint", "", "socket of an existing containerd to use instead of starting one")
	f.StringVar(&n.privateRegistry, "private-registry", "/etc/tinykube/registries.yaml", "registry mirrors, endpoints and credentials (k3s's registries.yaml format)")
	f.StringVar(&n.backend, "flannel-backend", "host-gw", "how pod traffic crosses nodes: host-gw (routes; nodes on one L2 segment), vxlan (overlay), or none")
}

// parse checks the node flags; nodeIP and the CIDRs default from the
// caller's knowledge.
func (n *nodeFlags) parse(defaultNodeIP netip.Addr, serviceCIDR, clusterCIDR netip.Prefix) (agent.Settings, error) {
	s := agent.Settings{
		NodeName:        strings.ToLower(n.nodeName),
		NodeIP:          defaultNodeIP,
		ServiceCIDR:     serviceCIDR,
		ClusterCIDR:     clusterCIDR,
		ClusterDomain:   strings.TrimSuffix(n.clusterDomain, "."),
		FlushRules:      n.flushRules,
		RuntimeEndpoint: n.runtimeEndpoint,
		PrivateRegistry: n.privateRegistry,
		Backend:         n.backend,
	}
	if s.Backend != agent.BackendNone {
		b, err := nodenet.ParseBackend(s.Backend)
		if err != nil {
			return s, fmt.Errorf("--flannel-backend: %w", err)
		}
		s.Backend = string(b)
	}
	var err error
	if s.NodeName == "" {
		if s.NodeName, err = agent.DefaultNodeName(); err != nil {
			return s, err
		}
	}
	if errs := validation.IsDNS1123Subdomain(s.NodeName); len(errs) > 0 {
		return s, fmt.Errorf("--node-name %q: %s", s.NodeName, strings.Join(errs, "; "))
	}
	if n.nodeIP != "" {
		if s.NodeIP, err = netip.ParseAddr(n.nodeIP); err != nil {
			return s, fmt.Errorf("--node-ip: %w", err)
		}
	}
	if !s.NodeIP.IsValid() || s.NodeIP.IsUnspecified() {
		return s, errors.New("--node-ip must be a concrete address")
	}
	if n.clusterDNS == "" {
		s.ClusterDNS = nthAddr(serviceCIDR, 10)
	} else if s.ClusterDNS, err = netip.ParseAddr(n.clusterDNS); err != nil {
		return s, fmt.Errorf("--cluster-dns: %w", err)
	}
	if !serviceCIDR.Contains(s.ClusterDNS) {
		return s, fmt.Errorf("--cluster-dns %s is outside --service-cidr %s", s.ClusterDNS, serviceCIDR)
	}
	if errs := validation.IsDNS1123Subdomain(s.ClusterDomain); len(errs) > 0 {
		return s, fmt.Errorf("--cluster-domain %q: %s", n.clusterDomain, strings.Join(errs, "; "))
	}
	for _, c := range n.nodePortAddresses {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return s, fmt.Errorf("--nodeport-addresses: %w", err)
		}
		s.NodePortAddresses = append(s.NodePortAddresses, p.Masked())
	}
	return s, nil
}

// nthAddr is the n-th address after prefix's network address.
func nthAddr(prefix netip.Prefix, n int) netip.Addr {
	a := prefix.Masked().Addr()
	for range n {
		a = a.Next()
	}
	return a
}

// nodeLifecycleFlags are upstream's kube-controller-manager and
// kube-apiserver flags for unreachable nodes, passed to the controller
// manager as they are.
type nodeLifecycleFlags struct {
	monitorGracePeriod           time.Duration
	notReadyTolerationSeconds    int64
	unreachableTolerationSeconds int64
}

// defaultKubeconfig is where `server` writes the admin kubeconfig and where
// `kubectl` looks for it.
const defaultKubeconfig = "/etc/tinykube/kubeconfig.yaml"

func newServerCommand(stdout, stderr io.Writer) *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane (and a node) on this host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := o.parse()
			if err != nil {
				return err
			}
			return runLogged(cmd.Context(), o.log, stderr, func(ctx context.Context, logger *slog.Logger) error {
				cfg.Logger = logger
				cfg.Ready = func(url string) {
					note := ""
					if cfg.Kubeconfig != "" {
						note = " (kubeconfig " + cfg.Kubeconfig + ")"
					}
					fmt.Fprintf(stdout, "tinykube: API server ready at %s%s\n", url, note)
				}
				return server.Run(ctx, *cfg)
			})
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	addLogFlags(f, &o.log)
	f.StringVar(&o.dataDir, "data-dir", "/var/lib/tinykube", "directory for the cluster's state, keys and certificates")
	f.StringVar(&o.bindAddress, "bind-address", "0.0.0.0", "address the API server listens on")
	f.IntVar(&o.port, "https-listen-port", 6443, "HTTPS port of the API server (0 picks a free one)")
	f.StringVar(&o.advertiseAddress, "advertise-address", "", "address the cluster reaches the API server at (default: the address of the default route's interface)")
	f.StringVar(&o.writeKubeconfig, "write-kubeconfig", defaultKubeconfig, "write the admin kubeconfig here (mode 0600)")
	f.StringVar(&o.serviceCIDR, "service-cidr", "10.43.0.0/16", "range of Service ClusterIPs")
	f.StringVar(&o.clusterCIDR, "cluster-cidr", "10.42.0.0/16", "range of pod IPs")
	f.StringVar(&o.nodePortRange, "service-node-port-range", "30000-32767", "range of NodePorts")
	f.BoolVar(&o.profiling, "profiling", true, "serve Go's profiles under /debug/pprof/ to those allowed to read them (cluster admins)")
	f.DurationVar(&o.requestTimeout, "request-timeout", 60*time.Second, "how long an API request that is not a watch or a pod stream may take, reading its body included, before it is answered 504")
	f.BoolVar(&o.disableAgent, "disable-agent", false, "run no kubelet or proxy on this host (control plane only)")
	f.StringVar(&o.token, "token", "", "join token agents present: a bootstrap token <id>.<secret>, or a full K10 token of this cluster (default: the one in DATA_DIR/server/token, else a new one)")
	f.StringSliceVar(&o.disable, "disable", nil, "packaged components not to run: servicelb")
	f.IntVar(&o.maxInFlight, "max-requests-inflight", 400, "read-only requests served at once before the next gets 429 (0: no limit)")
	f.IntVar(&o.maxMutating, "max-mutating-requests-inflight", 200, "mutating requests served at once before the next gets 429 (0: no limit)")
	addNodeFlags(f, &o.node)
	f.DurationVar(&o.nodeLifecycle.monitorGracePeriod, "node-monitor-grace-period", 40*time.Second, "how long a node may go without renewing its lease before it is marked unreachable")
	f.Int64Var(&o.nodeLifecycle.notReadyTolerationSeconds, "default-not-ready-toleration-seconds", 300, "tolerationSeconds of the default toleration for node.kubernetes.io/not-ready:NoExecute")
	f.Int64Var(&o.nodeLifecycle.unreachableTolerationSeconds, "default-unreachable-toleration-seconds", 300, "tolerationSeconds of the default toleration for node.kubernetes.io/unreachable:NoExecute")
	return cmd
}

func (o *serverOptions) parse() (*server.Config, error) {
	c := &server.Config{DataDir: o.dataDir, Port: o.port, Kubeconfig: o.writeKubeconfig, Token: o.token, ServiceLB: true,
		RequestTimeout:               o.requestTimeout,
		Profiling:                    o.profiling,
		NodeMonitorGracePeriod:       o.nodeLifecycle.monitorGracePeriod,
		NotReadyTolerationSeconds:    o.nodeLifecycle.notReadyTolerationSeconds,
		UnreachableTolerationSeconds: o.nodeLifecycle.unreachableTolerationSeconds,
		MaxRequestsInFlight:          o.maxInFlight,
		MaxMutatingRequestsInFlight:  o.maxMutating,
	}
	if o.maxInFlight < 0 || o.maxMutating < 0 {
		return nil, errors.New("--max-requests-inflight and --max-mutating-requests-inflight must not be negative")
	}
	for _, d := range o.disable {
		switch strings.TrimSpace(d) {
		case "servicelb":
			c.ServiceLB = false
		default:
			return nil, fmt.Errorf("--disable %q: tinykube packages only servicelb", d)
		}
	}
	if o.requestTimeout <= 0 {
		return nil, errors.New("--request-timeout must be positive")
	}
	if nl := o.nodeLifecycle; nl.monitorGracePeriod <= 0 || nl.notReadyTolerationSeconds < 0 || nl.unreachableTolerationSeconds < 0 {
		return nil, errors.New("--node-monitor-grace-period must be positive and the default toleration seconds not negative")
	}
	var err error
	if c.DataDir == "" {
		return nil, errors.New("--data-dir must not be empty")
	}
	if c.DataDir, err = filepath.Abs(c.DataDir); err != nil {
		return nil, err
	}
	if c.Bind, err = netip.ParseAddr(o.bindAddress); err != nil {
		return nil, fmt.Errorf("--bind-address: %w", err)
	}
	if o.port < 0 || o.port > 65535 {
		return nil, fmt.Errorf("--https-listen-port: %d is not a port", o.port)
	}
	if o.advertiseAddress != "" {
		if c.Advertise, err = netip.ParseAddr(o.advertiseAddress); err != nil {
			return nil, fmt.Errorf("--advertise-address: %w", err)
		}
		if c.Advertise.IsUnspecified() {
			return nil, errors.New("--advertise-address must be a concrete address")
		}
	} else {
		c.Advertise = defaultAdvertiseAddress(c.Bind)
	}
	if c.ServiceCIDR, err = netip.ParsePrefix(o.serviceCIDR); err != nil {
		return nil, fmt.Errorf("--service-cidr: %w", err)
	}
	if c.ClusterCIDR, err = netip.ParsePrefix(o.clusterCIDR); err != nil {
		return nil, fmt.Errorf("--cluster-cidr: %w", err)
	}
	c.ServiceCIDR, c.ClusterCIDR = c.ServiceCIDR.Masked(), c.ClusterCIDR.Masked()
	if c.ServiceCIDR.Overlaps(c.ClusterCIDR) {
		return nil, fmt.Errorf("--service-cidr %s overlaps --cluster-cidr %s", c.ServiceCIDR, c.ClusterCIDR)
	}
	pr, err := utilnet.ParsePortRange(o.nodePortRange)
	if err != nil {
		return nil, fmt.Errorf("--service-node-port-range: %w", err)
	}
	c.NodePortRange = *pr
	if c.Kubeconfig != "" {
		if c.Kubeconfig, err = filepath.Abs(c.Kubeconfig); err != nil {
			return nil, err
		}
	}
	// The node's settings are checked before anything starts, also with
	// --disable-agent: --cluster-dns configures the DNS Service.
	node, err := o.node.parse(c.Advertise, c.ServiceCIDR, c.ClusterCIDR)
	if err != nil {
		return nil, err
	}
	c.ClusterDNS = node.ClusterDNS
	if !o.disableAgent {
		c.Node = &node
	}
	return c, nil
}

// defaultAdvertiseAddress is the address upstream would pick: the bind
// address when it is a concrete one, else the default route's interface,
// else loopback (a host with no network still gets a working cluster).
func defaultAdvertiseAddress(bind netip.Addr) netip.Addr {
	if !bind.IsUnspecified() {
		return bind
	}
	if ip, err := utilnet.ChooseHostInterface(); err == nil {
		if a, ok := netip.AddrFromSlice(ip); ok {
			return a.Unmap()
		}
	}
	return netip.MustParseAddr("127.0.0.1")
}
