package server

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/tinykube/tinykube/agent"
	"github.com/tinykube/tinykube/internal/lifecycle"
	"github.com/tinykube/tinykube/pki"
)

// Config is a server's settings, checked by the caller (k3s's flag names
// in brackets).
type Config struct {
	DataDir       string            // --data-dir
	Bind          netip.Addr        // --bind-address
	Port          int               // --https-listen-port; 0 picks a free one
	Advertise     netip.Addr        // --advertise-address
	Kubeconfig    string            // --write-kubeconfig; "" writes none
	ServiceCIDR   netip.Prefix      // --service-cidr
	ClusterCIDR   netip.Prefix      // --cluster-cidr
	NodePortRange utilnet.PortRange // --service-node-port-range
	// RequestTimeout is kube-apiserver's --request-timeout (60 s when 0).
	RequestTimeout time.Duration
	// Profiling serves /debug/pprof/ to cluster admins (--profiling).
	Profiling bool
	// Token is the join token agents present (--token): a bootstrap token
	// or a full K10 token of this cluster; "" keeps the one in
	// DATA_DIR/server/token, or makes one.
	Token string
	// ServiceLB runs the ServiceLB-style LoadBalancer controller.
	ServiceLB bool
	// Node lifecycle (upstream's kube-controller-manager and
	// kube-apiserver flags).
	NodeMonitorGracePeriod       time.Duration
	NotReadyTolerationSeconds    int64
	UnreachableTolerationSeconds int64
	// Requests served at once (--max-requests-inflight,
	// --max-mutating-requests-inflight); 0 means no limit, as upstream.
	MaxRequestsInFlight         int
	MaxMutatingRequestsInFlight int
	// Node is the settings of this host's node; nil runs no node
	// (--disable-agent). Its ClusterDNS also sets the DNS Service's IP.
	Node *agent.Settings
	// ClusterDNS is the ClusterIP of kube-system/kube-dns.
	ClusterDNS netip.Addr

	Logger *slog.Logger
	// Ready, when set, is called once with the API's URL when every
	// component has started.
	Ready func(url string)
}

// Shutdown timing of the API: requests in flight get shutdownGrace to
// finish before long-running ones (watches) are ended; whatever is left
// after shutdownTimeout is cut.
const (
	shutdownGrace   = time.Second
	shutdownTimeout = 10 * time.Second
)

// ReleaseStartupMemoryAfter is how long after the ready line the server
// gives back the memory start-up used: long enough for the controllers'
// and the node's first list and sync.
const ReleaseStartupMemoryAfter = 10 * time.Second

// FirstServiceIP is the ClusterIP of the `kubernetes` Service: the first
// address after the network address, as upstream reserves it.
func FirstServiceIP(cidr netip.Prefix) netip.Addr {
	return cidr.Masked().Addr().Next()
}

// Run starts the server's components in order and serves until ctx ends,
// then stops them in reverse. The first component to fail stops the rest
// and is returned, named: "apiserver: ...", "kubelet: ...".
func Run(ctx context.Context, cfg Config) error {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g := lifecycle.New(ctx, logger)
	defer g.Stop(componentsStopTimeout)
	serverDir := filepath.Join(cfg.DataDir, "server")

	// Listen before anything else: it is the cheapest thing to fail (port
	// taken), and with port 0 the real port is needed for the
	// `kubernetes` Service and the kubeconfig.
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Bind.String(), strconv.Itoa(cfg.Port)))
	if err != nil {
		return lifecycle.Failed("apiserver", err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	store, err := OpenStore(StorePath(cfg.DataDir))
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			g.Logger("storage").Error("closing the store", "err", err)
		}
	}()

	sec, err := setUpSecurity(cfg, serverDir, g.Logger("pki"))
	if err != nil {
		return err
	}
	bundle := sec.bundle
	core, err := newCore(store, coreConfig{
		serviceCIDR:      cfg.ServiceCIDR,
		nodePortRange:    cfg.NodePortRange,
		requestTimeout:   cfg.RequestTimeout,
		profiling:        cfg.Profiling,
		advertiseAddress: cfg.Advertise,
		securePort:       port,
		kubeletTransport: kubeletTransport(bundle),
		logger:           g.Logger("apiserver"),

		notReadyTolerationSeconds:    cfg.NotReadyTolerationSeconds,
		unreachableTolerationSeconds: cfg.UnreachableTolerationSeconds,
		serviceAccounts:              sec.serviceAccounts,
		maxInFlight:                  cfg.MaxRequestsInFlight,
		maxMutatingInFlight:          cfg.MaxMutatingRequestsInFlight,
	})
	if err != nil {
		return err
	}
	sec.lookup.handler = core.handler
	if err := core.bootstrap(ctx); err != nil {
		return err
	}
	handler, err := setUpJoin(ctx, serverDir, bundle.CACertPEM, cfg.Token, sec.authenticator, core.handler)
	if err != nil {
		return err
	}
	url := "https://" + net.JoinHostPort(kubeconfigHost(cfg.Bind).String(), strconv.Itoa(port))
	if cfg.Kubeconfig != "" {
		if err := pki.WriteKubeconfig(cfg.Kubeconfig, pki.Kubeconfig{
			Server:    url,
			CACertPEM: bundle.CACertPEM,
			CertPEM:   bundle.AdminCertPEM,
			KeyPEM:    bundle.AdminKeyPEM,
		}); err != nil {
			return err
		}
	}

	api := &apiServer{ln: ln, handler: handler, bundle: bundle, closeWatches: core.closeWatches, logger: g.Logger("apiserver")}
	if err := g.Start(ctx, lifecycle.Component{Name: "apiserver", Run: api.run, StopTimeout: shutdownGrace + shutdownTimeout + time.Second}); err != nil {
		return err
	}
	if err := startComponents(ctx, g, componentsConfig{
		loopback:               sec.loopback,
		url:                    url,
		caPEM:                  bundle.CACertPEM,
		signingCA:              filepath.Join(serverDir, "tls"),
		clusterCIDR:            cfg.ClusterCIDR,
		clusterDNS:             cfg.ClusterDNS,
		serviceLB:              cfg.ServiceLB,
		nodeMonitorGracePeriod: cfg.NodeMonitorGracePeriod,
	}); err != nil {
		return stopped(ctx, err)
	}
	if cfg.Node != nil {
		// This host is a node too: kubelet, proxy, cluster DNS, routing.
		nc, err := ownNodeConfig(*cfg.Node, cfg.DataDir, filepath.Join(serverDir, "tls"), url, bundle.CACertPEM)
		if err != nil {
			return err
		}
		if err := agent.StartNode(ctx, g, nc); err != nil {
			return stopped(ctx, err)
		}
	}
	if cfg.Ready != nil {
		cfg.Ready(url)
	}
	// Once the components have started and filled their caches, what only
	// start-up touched can go (see releaseStartupMemory).
	release := time.AfterFunc(ReleaseStartupMemoryAfter, releaseStartupMemory)
	defer release.Stop()
	if err := g.Wait(ctx); err != nil {
		return err
	}
	logger.Info("shutting down", "component", "server")
	if late := g.Stop(componentsStopTimeout); len(late) > 0 {
		logger.Warn("components still busy at shutdown; not waiting for them", "component", "server", "components", late)
	}
	return nil
}

// stopped is err, unless ctx ended: a start interrupted by a signal is no
// failure.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// apiServer serves the API over HTTPS on ln.
type apiServer struct {
	ln           net.Listener
	handler      http.Handler
	bundle       *pki.Bundle
	closeWatches func()
	logger       *slog.Logger
}

// run serves until ctx ends, then shuts down gracefully: requests in
// flight may finish, watches end at once.
func (a *apiServer) run(ctx context.Context) error {
	// Requests derive their context from base; cancelling it, a moment
	// into shutdown, ends any long-running request still open, which
	// Shutdown would otherwise wait for until its timeout. Watches are
	// ended at once, and cleanly, by the REST core itself.
	base, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler: a.handler,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{a.bundle.Serving},
			MinVersion:   tls.VersionTLS12,
			// Ask for a client certificate but let the authenticator
			// verify it, so a bad one gets upstream's 401 Status rather
			// than a TLS alert, and token users are not asked twice.
			ClientAuth: tls.RequestClientCert,
			ClientCAs:  a.bundle.ClientCAs,
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
		ErrorLog:    slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(a.closeWatches)
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(a.ln, "", "") }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	grace := time.AfterFunc(shutdownGrace, cancelBase)
	defer grace.Stop()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
		a.logger.Warn("connections cut at shutdown timeout", "err", err)
	}
	return nil
}

// ownNodeConfig is the node of the server's own host: it authenticates as
// system:node:NAME with a certificate the cluster CA issues directly.
func ownNodeConfig(s agent.Settings, dataDir, caDir, url string, caPEM []byte) (agent.NodeConfig, error) {
	nb, err := pki.EnsureNode(pki.NodeConfig{
		CADir:    caDir,
		Dir:      filepath.Join(dataDir, "agent", "tls"),
		NodeName: s.NodeName,
		IPs:      []netip.Addr{s.NodeIP},
	})
	if err != nil {
		return agent.NodeConfig{}, err
	}
	return agent.NodeConfig{
		Settings:    s,
		DataDir:     dataDir,
		API:         restConfig(url, caPEM, nb.ClientCertPEM, nb.ClientKeyPEM),
		ServingCert: &nb.Serving,
		ClientCAs:   nb.ClientCAs,
	}, nil
}
