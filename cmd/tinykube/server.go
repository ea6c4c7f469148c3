package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/nodenet"
	"github.com/tinykube/tinykube/pki"
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
	disableAgent     bool
	token            string
	disable          []string
	nodeLifecycle    nodeLifecycleFlags
	node             nodeFlags
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
func (n *nodeFlags) parse(defaultNodeIP netip.Addr, serviceCIDR, clusterCIDR netip.Prefix) (nodeSettings, error) {
	s := nodeSettings{
		nodeName:        strings.ToLower(n.nodeName),
		nodeIP:          defaultNodeIP,
		serviceCIDR:     serviceCIDR,
		clusterCIDR:     clusterCIDR,
		clusterDomain:   strings.TrimSuffix(n.clusterDomain, "."),
		flushRules:      n.flushRules,
		runtimeEndpoint: n.runtimeEndpoint,
		privateRegistry: n.privateRegistry,
		backend:         n.backend,
	}
	if s.backend != backendNone {
		b, err := nodenet.ParseBackend(s.backend)
		if err != nil {
			return s, fmt.Errorf("--flannel-backend: %w", err)
		}
		s.backend = string(b)
	}
	var err error
	if s.nodeName == "" {
		if s.nodeName, err = defaultNodeName(); err != nil {
			return s, err
		}
	}
	if errs := validation.IsDNS1123Subdomain(s.nodeName); len(errs) > 0 {
		return s, fmt.Errorf("--node-name %q: %s", s.nodeName, strings.Join(errs, "; "))
	}
	if n.nodeIP != "" {
		if s.nodeIP, err = netip.ParseAddr(n.nodeIP); err != nil {
			return s, fmt.Errorf("--node-ip: %w", err)
		}
	}
	if !s.nodeIP.IsValid() || s.nodeIP.IsUnspecified() {
		return s, errors.New("--node-ip must be a concrete address")
	}
	if n.clusterDNS == "" {
		s.clusterDNS = nthAddr(serviceCIDR, 10)
	} else if s.clusterDNS, err = netip.ParseAddr(n.clusterDNS); err != nil {
		return s, fmt.Errorf("--cluster-dns: %w", err)
	}
	if !serviceCIDR.Contains(s.clusterDNS) {
		return s, fmt.Errorf("--cluster-dns %s is outside --service-cidr %s", s.clusterDNS, serviceCIDR)
	}
	if errs := validation.IsDNS1123Subdomain(s.clusterDomain); len(errs) > 0 {
		return s, fmt.Errorf("--cluster-domain %q: %s", n.clusterDomain, strings.Join(errs, "; "))
	}
	for _, c := range n.nodePortAddresses {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return s, fmt.Errorf("--nodeport-addresses: %w", err)
		}
		s.nodePortAddresses = append(s.nodePortAddresses, p.Masked())
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

// Shutdown timing: requests in flight get shutdownGrace to finish before
// long-running ones (watches) are ended; whatever is left after
// shutdownTimeout is cut.
const (
	shutdownGrace   = time.Second
	shutdownTimeout = 10 * time.Second
)

// releaseStartupMemoryAfter is how long after the ready line the server
// gives back the memory start-up used: long enough for the controllers'
// and the node's first list and sync.
const releaseStartupMemoryAfter = 10 * time.Second

func newServerCommand(stdout, stderr io.Writer) *cobra.Command {
	o := &serverOptions{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane (and a node) on this host",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return runServer(ctx, stop, o, stdout, stderr)
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVar(&o.dataDir, "data-dir", "/var/lib/tinykube", "directory for the cluster's state, keys and certificates")
	f.StringVar(&o.bindAddress, "bind-address", "0.0.0.0", "address the API server listens on")
	f.IntVar(&o.port, "https-listen-port", 6443, "HTTPS port of the API server (0 picks a free one)")
	f.StringVar(&o.advertiseAddress, "advertise-address", "", "address the cluster reaches the API server at (default: the address of the default route's interface)")
	f.StringVar(&o.writeKubeconfig, "write-kubeconfig", defaultKubeconfig, "write the admin kubeconfig here (mode 0600)")
	f.StringVar(&o.serviceCIDR, "service-cidr", "10.43.0.0/16", "range of Service ClusterIPs")
	f.StringVar(&o.clusterCIDR, "cluster-cidr", "10.42.0.0/16", "range of pod IPs")
	f.StringVar(&o.nodePortRange, "service-node-port-range", "30000-32767", "range of NodePorts")
	f.BoolVar(&o.disableAgent, "disable-agent", false, "run no kubelet or proxy on this host (control plane only)")
	f.StringVar(&o.token, "token", "", "join token agents present: a bootstrap token <id>.<secret>, or a full K10 token of this cluster (default: the one in DATA_DIR/server/token, else a new one)")
	f.StringSliceVar(&o.disable, "disable", nil, "packaged components not to run: servicelb")
	addNodeFlags(f, &o.node)
	f.DurationVar(&o.nodeLifecycle.monitorGracePeriod, "node-monitor-grace-period", 40*time.Second, "how long a node may go without renewing its lease before it is marked unreachable")
	f.Int64Var(&o.nodeLifecycle.notReadyTolerationSeconds, "default-not-ready-toleration-seconds", 300, "tolerationSeconds of the default toleration for node.kubernetes.io/not-ready:NoExecute")
	f.Int64Var(&o.nodeLifecycle.unreachableTolerationSeconds, "default-unreachable-toleration-seconds", 300, "tolerationSeconds of the default toleration for node.kubernetes.io/unreachable:NoExecute")
	return cmd
}

// serverConfig is serverOptions parsed and checked.
type serverConfig struct {
	dataDir       string
	bind          netip.Addr
	port          int
	advertise     netip.Addr
	kubeconfig    string
	serviceCIDR   netip.Prefix
	clusterCIDR   netip.Prefix
	nodePortRange utilnet.PortRange
	disableAgent  bool
	serviceLB     bool
	nodeLifecycle nodeLifecycleFlags
	node          nodeFlags
}

func (o *serverOptions) parse() (*serverConfig, error) {
	c := &serverConfig{dataDir: o.dataDir, port: o.port, kubeconfig: o.writeKubeconfig, disableAgent: o.disableAgent, nodeLifecycle: o.nodeLifecycle, node: o.node, serviceLB: true}
	for _, d := range o.disable {
		switch strings.TrimSpace(d) {
		case "servicelb":
			c.serviceLB = false
		default:
			return nil, fmt.Errorf("--disable %q: tinykube packages only servicelb", d)
		}
	}
	if nl := o.nodeLifecycle; nl.monitorGracePeriod <= 0 || nl.notReadyTolerationSeconds < 0 || nl.unreachableTolerationSeconds < 0 {
		return nil, errors.New("--node-monitor-grace-period must be positive and the default toleration seconds not negative")
	}
	var err error
	if c.dataDir == "" {
		return nil, errors.New("--data-dir must not be empty")
	}
	if c.dataDir, err = filepath.Abs(c.dataDir); err != nil {
		return nil, err
	}
	if c.bind, err = netip.ParseAddr(o.bindAddress); err != nil {
		return nil, fmt.Errorf("--bind-address: %w", err)
	}
	if o.port < 0 || o.port > 65535 {
		return nil, fmt.Errorf("--https-listen-port: %d is not a port", o.port)
	}
	if o.advertiseAddress != "" {
		if c.advertise, err = netip.ParseAddr(o.advertiseAddress); err != nil {
			return nil, fmt.Errorf("--advertise-address: %w", err)
		}
		if c.advertise.IsUnspecified() {
			return nil, errors.New("--advertise-address must be a concrete address")
		}
	}
	if c.serviceCIDR, err = netip.ParsePrefix(o.serviceCIDR); err != nil {
		return nil, fmt.Errorf("--service-cidr: %w", err)
	}
	if c.clusterCIDR, err = netip.ParsePrefix(o.clusterCIDR); err != nil {
		return nil, fmt.Errorf("--cluster-cidr: %w", err)
	}
	c.serviceCIDR, c.clusterCIDR = c.serviceCIDR.Masked(), c.clusterCIDR.Masked()
	if c.serviceCIDR.Overlaps(c.clusterCIDR) {
		return nil, fmt.Errorf("--service-cidr %s overlaps --cluster-cidr %s", c.serviceCIDR, c.clusterCIDR)
	}
	pr, err := utilnet.ParsePortRange(o.nodePortRange)
	if err != nil {
		return nil, fmt.Errorf("--service-node-port-range: %w", err)
	}
	c.nodePortRange = *pr
	if c.kubeconfig != "" {
		if c.kubeconfig, err = filepath.Abs(c.kubeconfig); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// firstServiceIP is the ClusterIP of the `kubernetes` Service: the first
// address after the network address, as upstream reserves it.
func firstServiceIP(cidr netip.Prefix) netip.Addr {
	return cidr.Masked().Addr().Next()
}

// runServer starts the API server and serves until ctx ends. stop releases
// the signal handler once shutdown begins, so a second Ctrl-C ends the
// process at once.
func runServer(ctx context.Context, stop func(), o *serverOptions, stdout, stderr io.Writer) error {
	cfg, err := o.parse()
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	serverDir := filepath.Join(cfg.dataDir, "server")

	if !cfg.advertise.IsValid() {
		cfg.advertise = defaultAdvertiseAddress(cfg.bind)
	}
	// The node's settings are checked before anything starts, also with
	// --disable-agent: --cluster-dns configures the DNS Service.
	nodeSet, err := cfg.node.parse(cfg.advertise, cfg.serviceCIDR, cfg.clusterCIDR)
	if err != nil {
		return err
	}

	// Listen before anything else: it is the cheapest thing to fail (port
	// taken), and with --https-listen-port 0 the real port is needed for
	// the `kubernetes` Service and the kubeconfig.
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.bind.String(), strconv.Itoa(cfg.port)))
	if err != nil {
		return err
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	store, err := openStore(filepath.Join(serverDir, "db", "state.db"))
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("closing the store", "err", err)
		}
	}()

	sec, err := setUpSecurity(cfg, serverDir, logger)
	if err != nil {
		return err
	}
	bundle := sec.bundle

	core, err := newCore(store, coreConfig{
		serviceCIDR:      cfg.serviceCIDR,
		nodePortRange:    cfg.nodePortRange,
		advertiseAddress: cfg.advertise,
		securePort:       port,
		kubeletTransport: kubeletTransport(bundle),

		notReadyTolerationSeconds:    cfg.nodeLifecycle.notReadyTolerationSeconds,
		unreachableTolerationSeconds: cfg.nodeLifecycle.unreachableTolerationSeconds,
		serviceAccounts:              sec.serviceAccounts,
	})
	if err != nil {
		return err
	}
	sec.lookup.handler = core.handler
	if err := core.bootstrap(ctx); err != nil {
		return err
	}
	handler, err := setUpJoin(ctx, serverDir, bundle.CACertPEM, o.token, sec.authenticator, core.handler)
	if err != nil {
		return err
	}

	url := "https://" + net.JoinHostPort(kubeconfigHost(cfg.bind).String(), strconv.Itoa(port))
	if cfg.kubeconfig != "" {
		if err := pki.WriteKubeconfig(cfg.kubeconfig, pki.Kubeconfig{
			Server:    url,
			CACertPEM: bundle.CACertPEM,
			CertPEM:   bundle.AdminCertPEM,
			KeyPEM:    bundle.AdminKeyPEM,
		}); err != nil {
			return err
		}
	}

	// Requests derive their context from base; cancelling it, a moment
	// into shutdown, ends any long-running request still open, which
	// Shutdown would otherwise wait for until its timeout. Watches are
	// ended at once, and cleanly, by the REST core itself.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler: handler,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{bundle.Serving},
			MinVersion:   tls.VersionTLS12,
			// Ask for a client certificate but let the authenticator
			// verify it, so a bad one gets upstream's 401 Status rather
			// than a TLS alert, and token users are not asked twice.
			ClientAuth: tls.RequestClientCert,
			ClientCAs:  bundle.ClientCAs,
		},
		ReadHeaderTimeout: 30 * time.Second,
		// Idle keep-alive connections from clients that went away are
		// closed, as upstream does after 90s.
		IdleTimeout: 90 * time.Second,
		// Every watch is a stream; a client's informers share one
		// connection. Upstream's kube-apiserver allows 1000 streams per
		// connection rather than Go's default of a few hundred.
		HTTP2:       &http.HTTP2Config{MaxConcurrentStreams: 1000},
		BaseContext: func(net.Listener) context.Context { return base },
		ErrorLog:    log.New(stderr, "tinykube: http: ", 0),
	}
	srv.RegisterOnShutdown(core.closeWatches)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(ln, "", "") }()

	comps, err := startComponents(ctx, componentsConfig{
		loopback:    sec.loopback,
		url:         url,
		caPEM:       bundle.CACertPEM,
		signingCA:   filepath.Join(serverDir, "tls"),
		clusterCIDR: cfg.clusterCIDR,
		clusterDNS:  nodeSet.clusterDNS,
		serviceLB:   cfg.serviceLB,
		logger:      logger,

		nodeMonitorGracePeriod: cfg.nodeLifecycle.monitorGracePeriod,
	})
	if err != nil {
		srv.Close()
		return err
	}

	kubeconfigNote := ""
	if cfg.kubeconfig != "" {
		kubeconfigNote = " (kubeconfig " + cfg.kubeconfig + ")"
	}
	// stopAgent is a no-op with --disable-agent.
	stopAgent := func() {}
	if !cfg.disableAgent {
		// This host is a node too: kubelet, proxy and cluster DNS.
		nc, err := serverNodeConfig(nodeSet, cfg.dataDir, filepath.Join(serverDir, "tls"), url, bundle.CACertPEM, logger)
		if err == nil {
			var n *node
			if n, err = startNode(ctx, nc); err == nil {
				stopAgent = n.stop
			}
		}
		if err != nil {
			comps.stop()
			srv.Close()
			return err
		}
	}
	fmt.Fprintf(stdout, "tinykube: API server ready at %s%s\n", url, kubeconfigNote)
	// Once the components have started and filled their caches, what only
	// start-up touched can go (see releaseStartupMemory).
	release := time.AfterFunc(releaseStartupMemoryAfter, releaseStartupMemory)
	defer release.Stop()

	select {
	case err := <-serveErr:
		stopAgent()
		comps.stop()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	stop()
	logger.Info("shutting down")
	// In reverse of start: the node agent and the components first, while
	// the API still answers their last writes.
	stopAgent()
	if !comps.stop() {
		logger.Warn("components still busy at shutdown; not waiting for them", "after", componentsStopTimeout)
	}
	grace := time.AfterFunc(shutdownGrace, cancelBase)
	defer grace.Stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		logger.Warn("connections cut at shutdown timeout", "err", err)
	}
	return nil
}

// security is the server's key material and the authentication built on
// it.
type security struct {
	bundle   *pki.Bundle
	loopback *loopback
	// serviceAccounts issues service account tokens (the REST core's
	// TokenRequest) and verifies them (the authenticator).
	serviceAccounts *authn.ServiceAccountTokens
	// lookup checks that a token's objects still exist; it needs the
	// REST core's handler before the server serves.
	lookup        *objectLookup
	authenticator *authn.Authenticator
}

// setUpSecurity loads or creates the certificates and the token file, and
// builds the authenticator: client certificates of the cluster CA, the
// token file's tokens, this run's in-memory component tokens, and service
// account tokens signed with the data dir's service account key.
func setUpSecurity(cfg *serverConfig, serverDir string, logger *slog.Logger) (*security, error) {
	names, ips := nodeAddresses()
	ips = append(ips, cfg.advertise)
	if !cfg.bind.IsUnspecified() {
		ips = append(ips, cfg.bind)
	}
	bundle, err := pki.Ensure(pki.Config{
		Dir:       filepath.Join(serverDir, "tls"),
		ServiceIP: firstServiceIP(cfg.serviceCIDR),
		DNSNames:  names,
		IPs:       ips,
	})
	if err != nil {
		return nil, err
	}
	if bundle.ServingRenewed {
		logger.Info("issued a new serving certificate", "dnsNames", bundle.Serving.Leaf.DNSNames, "ips", bundle.Serving.Leaf.IPAddresses)
	}
	tokens, err := authn.EnsureTokenFile(filepath.Join(serverDir, "token.csv"), authn.User{
		Name:   pki.AdminUser,
		UID:    pki.AdminUser,
		Groups: []string{pki.AdminGroup},
	})
	if err != nil {
		return nil, err
	}
	loopback, err := newLoopback(userControllerManager, userScheduler)
	if err != nil {
		return nil, err
	}
	saKey, err := pki.EnsureServiceAccountKey(filepath.Join(serverDir, "tls"))
	if err != nil {
		return nil, err
	}
	lookup := &objectLookup{}
	serviceAccounts, err := authn.NewServiceAccountTokens(authn.ServiceAccountTokensConfig{Key: saKey, Lookup: lookup.lookup})
	if err != nil {
		return nil, err
	}
	authenticator, err := authn.New(authn.Config{
		ClientCAs:       bundle.ClientCAs,
		Tokens:          []*authn.Tokens{tokens, loopback.set},
		ServiceAccounts: serviceAccounts,
	})
	if err != nil {
		return nil, err
	}
	return &security{bundle: bundle, loopback: loopback, serviceAccounts: serviceAccounts, lookup: lookup, authenticator: authenticator}, nil
}

// kubeletTransport reaches kubelets for logs, exec, attach and
// port-forward: it checks each kubelet's serving certificate against the
// cluster CA and presents the API server's kubelet client certificate.
// HTTP/1.1 only (no ForceAttemptHTTP2), because those streams upgrade the
// connection; no proxy from the environment, because node traffic never
// goes through one.
func kubeletTransport(b *pki.Bundle) *http.Transport {
	return &http.Transport{
		TLSClientConfig: &tls.Config{
			RootCAs:      b.ClientCAs,
			Certificates: []tls.Certificate{b.KubeletClient},
			MinVersion:   tls.VersionTLS12,
		},
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
	}
}

// kubeconfigHost is the address local clients use: loopback when the
// server listens on every address, else the one address it binds.
func kubeconfigHost(bind netip.Addr) netip.Addr {
	switch {
	case bind.IsUnspecified() && bind.Is6():
		return netip.IPv6Loopback()
	case bind.IsUnspecified():
		return netip.MustParseAddr("127.0.0.1")
	}
	return bind
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

// nodeAddresses are the host name and the host's global unicast addresses:
// the names a client on the network may use for this server.
func nodeAddresses() ([]string, []netip.Addr) {
	var names []string
	// A host name that is not a DNS name cannot go into a certificate.
	if h, err := os.Hostname(); err == nil && len(validation.IsDNS1123Subdomain(strings.ToLower(h))) == 0 {
		names = append(names, strings.ToLower(h))
	}
	var ips []netip.Addr
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return names, nil
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if ok && ip.Unmap().IsGlobalUnicast() {
			ips = append(ips, ip.Unmap())
		}
	}
	return names, ips
}
