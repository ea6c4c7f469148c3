package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/tinykube/tinykube/controller/clusterdns"
	"github.com/tinykube/tinykube/controller/clusterroleaggregation"
	"github.com/tinykube/tinykube/controller/cronjob"
	"github.com/tinykube/tinykube/controller/csrapproving"
	"github.com/tinykube/tinykube/controller/csrsigning"
	"github.com/tinykube/tinykube/controller/deployment"
	"github.com/tinykube/tinykube/controller/disruption"
	"github.com/tinykube/tinykube/controller/endpointslice"
	"github.com/tinykube/tinykube/controller/endpointslicemirroring"
	"github.com/tinykube/tinykube/controller/garbagecollector"
	"github.com/tinykube/tinykube/controller/job"
	"github.com/tinykube/tinykube/controller/namespace"
	"github.com/tinykube/tinykube/controller/nodeipam"
	"github.com/tinykube/tinykube/controller/nodelifecycle"
	"github.com/tinykube/tinykube/controller/replicaset"
	"github.com/tinykube/tinykube/controller/rootcacertpublisher"
	"github.com/tinykube/tinykube/controller/serviceaccount"
	"github.com/tinykube/tinykube/controller/servicelb"
	"github.com/tinykube/tinykube/pki"
)

// Defaults of the manager's settings, as upstream's
// kube-controller-manager flags.
const (
	DefaultClusterCIDR            = "10.42.0.0/16"
	DefaultNodeMonitorGracePeriod = nodelifecycle.DefaultNodeMonitorGracePeriod
	DefaultNodeMonitorPeriod      = nodelifecycle.DefaultNodeMonitorPeriod
	defaultResync                 = 12 * time.Hour
)

// ManagerConfig configures the controller manager.
type ManagerConfig struct {
	// RESTConfig reaches the API server (required). The manager sets its
	// own user agent on a copy when it has none.
	RESTConfig *rest.Config
	// HTTPClient, when set, carries every request (so its owner can close
	// its connections at shutdown); else one is built from RESTConfig.
	HTTPClient *http.Client
	// ClusterCIDR is the range node pod CIDRs come from (--cluster-cidr);
	// default 10.42.0.0/16.
	ClusterCIDR netip.Prefix
	// NodeCIDRMaskSize (--node-cidr-mask-size) defaults to 24 (64 for
	// IPv6).
	NodeCIDRMaskSize int
	// NodeMonitorGracePeriod (--node-monitor-grace-period) defaults to
	// 40s; NodeMonitorPeriod (--node-monitor-period) to 5s.
	NodeMonitorGracePeriod time.Duration
	NodeMonitorPeriod      time.Duration
	// RootCA is the cluster CA bundle (PEM) published to every namespace
	// as kube-root-ca.crt (--root-ca-file); as upstream it defaults to
	// the CA RESTConfig trusts. Without either, no CA is published.
	RootCA []byte
	// ClusterDNS is the ClusterIP of kube-system/kube-dns (--cluster-dns);
	// invalid (zero) publishes no cluster DNS Service.
	ClusterDNS netip.Addr
	// ServiceLB gives LoadBalancer Services the nodes' addresses, as k3s's
	// ServiceLB; off when a cloud or another load balancer does it.
	ServiceLB bool
	// ClusterSigningCertFile and ClusterSigningKeyFile are the CA that
	// signs approved kubelet certificate requests (upstream's
	// --cluster-signing-cert-file and --cluster-signing-key-file); without
	// them nothing is signed. ClusterSigningDuration
	// (--cluster-signing-duration) defaults to a year.
	ClusterSigningCertFile string
	ClusterSigningKeyFile  string
	ClusterSigningDuration time.Duration
	// Clock is for tests; nil is the real clock.
	Clock clock.PassiveClock
	// Logger is the manager's; each controller logs through it with its
	// name as the "component" attribute. Nil discards.
	Logger *slog.Logger
}

// Manager runs every controller on one shared informer factory and one
// event broadcaster, as upstream's kube-controller-manager.
type Manager struct {
	cfg         ManagerConfig
	client      kubernetes.Interface
	factory     informers.SharedInformerFactory
	broadcaster record.EventBroadcaster
	runners     []runner
}

// runner is one controller, built, with its logger.
type runner struct {
	name string
	log  *slog.Logger
	run  runFunc
}

// NewManager validates cfg and builds every controller; nothing talks to
// the API server before Run.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if cfg.RESTConfig == nil {
		return nil, errors.New("controller: RESTConfig is required")
	}
	if !cfg.ClusterCIDR.IsValid() {
		cfg.ClusterCIDR = netip.MustParsePrefix(DefaultClusterCIDR)
	}
	if cfg.NodeMonitorGracePeriod == 0 {
		cfg.NodeMonitorGracePeriod = DefaultNodeMonitorGracePeriod
	}
	if cfg.NodeMonitorPeriod == 0 {
		cfg.NodeMonitorPeriod = DefaultNodeMonitorPeriod
	}
	if cfg.NodeMonitorGracePeriod < 0 || cfg.NodeMonitorPeriod < 0 {
		return nil, errors.New("controller: node monitor periods must be positive")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.RootCA) == 0 {
		cfg.RootCA = cfg.RESTConfig.CAData
	}
	if len(cfg.RootCA) == 0 && cfg.RESTConfig.CAFile != "" {
		ca, err := os.ReadFile(cfg.RESTConfig.CAFile)
		if err != nil {
			return nil, fmt.Errorf("controller: root CA: %w", err)
		}
		cfg.RootCA = ca
	}
	restCfg := rest.CopyConfig(cfg.RESTConfig)
	if restCfg.UserAgent == "" {
		restCfg.UserAgent = "tinykube/kube-controller-manager"
	}
	if restCfg.WarningHandler == nil && restCfg.WarningHandlerWithContext == nil {
		restCfg.WarningHandler = warningLogger{cfg.Logger}
	}
	hc := cfg.HTTPClient
	if hc == nil {
		var err error
		if hc, err = rest.HTTPClientFor(restCfg); err != nil {
			return nil, err
		}
	}
	client, err := kubernetes.NewForConfigAndClient(restCfg, hc)
	if err != nil {
		return nil, err
	}
	md, err := metadata.NewForConfigAndClient(restCfg, hc)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:     cfg,
		client:  client,
		factory: informers.NewSharedInformerFactory(client, defaultResync),
		// The broadcaster's own log lines (an event it could not write)
		// go to the manager's logger through its context, not to klog.
		broadcaster: record.NewBroadcaster(record.WithContext(
			logr.NewContext(context.Background(), logr.FromSlogHandler(cfg.Logger.Handler())))),
	}
	// rec records events as source; what the recorder itself logs goes to
	// the controller's logger.
	rec := func(source string, log *slog.Logger) record.EventRecorder {
		return m.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: source}).
			WithLogger(logr.FromSlogHandler(log.Handler()))
	}
	f := m.factory
	// Worker counts are upstream's --concurrent-*-syncs defaults.
	steps := []step{
		{deployment.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(deployment.New(deployment.Config{Client: client, Informers: f, Recorder: rec(deployment.Name, log), Clock: cfg.Clock,
				Workers: 5, Logger: log}))
		}},
		{replicaset.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(replicaset.New(replicaset.Config{Client: client, Informers: f, Recorder: rec(replicaset.Name, log), Clock: cfg.Clock,
				Workers: 5, Logger: log}))
		}},
		{job.Name, func(log *slog.Logger) (runFunc, error) {
			clk, _ := cfg.Clock.(clock.WithTicker) // nil: the real clock
			return runOf(job.New(job.Config{Client: client, Informers: f, Recorder: rec(job.Name, log), Clock: clk,
				Workers: 5, Logger: log}))
		}},
		{cronjob.Name, func(log *slog.Logger) (runFunc, error) {
			clk, _ := cfg.Clock.(clock.WithTicker)
			return runOf(cronjob.New(cronjob.Config{Client: client, Informers: f, Recorder: rec(cronjob.Name, log), Clock: clk,
				Workers: 5, Logger: log}))
		}},
		{endpointslice.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(endpointslice.New(endpointslice.Config{Client: client, Informers: f, Recorder: rec(endpointslice.Component, log), Clock: cfg.Clock,
				Workers: 5, Logger: log}))
		}},
		{endpointslicemirroring.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(endpointslicemirroring.New(endpointslicemirroring.Config{Client: client, Informers: f, Recorder: rec(endpointslicemirroring.Component, log),
				Workers: 5, Logger: log}))
		}},
		{garbagecollector.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(garbagecollector.New(garbagecollector.Config{Client: client, Metadata: md, Informers: f, Recorder: rec(garbagecollector.Name, log),
				Workers: 20, Logger: log}))
		}},
		{namespace.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(namespace.New(namespace.Config{Client: client, Metadata: md, Informers: f, Recorder: rec(namespace.Name, log), Clock: cfg.Clock,
				Workers: 10, Logger: log}))
		}},
		{nodeipam.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(nodeipam.New(nodeipam.Config{Client: client, Informers: f, Recorder: rec(nodeipam.Component, log),
				ClusterCIDR: cfg.ClusterCIDR, NodeCIDRMaskSize: cfg.NodeCIDRMaskSize, Logger: log}))
		}},
		{nodelifecycle.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(nodelifecycle.New(nodelifecycle.Config{Client: client, Informers: f, Recorder: rec(nodelifecycle.Component, log), Clock: cfg.Clock,
				NodeMonitorGracePeriod: cfg.NodeMonitorGracePeriod, NodeMonitorPeriod: cfg.NodeMonitorPeriod, Logger: log}))
		}},
		{clusterroleaggregation.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(clusterroleaggregation.New(clusterroleaggregation.Config{Client: client, Informers: f,
				Workers: 5, Logger: log}))
		}},
		{disruption.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(disruption.New(disruption.Config{Client: client, Informers: f, Recorder: rec(disruption.Component, log), Clock: cfg.Clock,
				Workers: 1, Logger: log}))
		}},
		{serviceaccount.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(serviceaccount.New(serviceaccount.Config{Client: client, Informers: f, Recorder: rec(serviceaccount.Name, log),
				Workers: 1, Logger: log}))
		}},
		{csrapproving.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(csrapproving.New(csrapproving.Config{Client: client, Informers: f, Clock: cfg.Clock,
				Workers: 5, Logger: log}))
		}},
	}
	if cfg.ClusterSigningCertFile != "" || cfg.ClusterSigningKeyFile != "" {
		steps = append(steps, step{csrsigning.Name, func(log *slog.Logger) (runFunc, error) {
			signer, err := pki.LoadSigner(cfg.ClusterSigningCertFile, cfg.ClusterSigningKeyFile)
			if err != nil {
				return nil, err
			}
			return runOf(csrsigning.New(csrsigning.Config{Client: client, Informers: f, Signer: signer,
				SigningDuration: cfg.ClusterSigningDuration, Clock: cfg.Clock, Workers: 5, Logger: log}))
		}})
	}
	if len(cfg.RootCA) > 0 {
		steps = append(steps, step{rootcacertpublisher.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(rootcacertpublisher.New(rootcacertpublisher.Config{Client: client, Informers: f, RootCA: cfg.RootCA,
				Workers: 5, Logger: log}))
		}})
	} else {
		cfg.Logger.Info("no root CA: kube-root-ca.crt is not published")
	}
	if cfg.ClusterDNS.IsValid() {
		steps = append(steps, step{clusterdns.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(clusterdns.New(clusterdns.Config{Client: client, Informers: f, ClusterDNS: cfg.ClusterDNS, Logger: log}))
		}})
	}
	if cfg.ServiceLB {
		steps = append(steps, step{servicelb.Name, func(log *slog.Logger) (runFunc, error) {
			return runOf(servicelb.New(servicelb.Config{Client: client, Informers: f, Recorder: rec(servicelb.Name, log), Logger: log}))
		}})
	}
	for _, s := range steps {
		log := cfg.Logger.With("component", s.name)
		run, err := s.build(log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		m.runners = append(m.runners, runner{name: s.name, log: log, run: run})
	}
	return m, nil
}

// warningLogger logs the API server's warnings (the deprecated v1
// Endpoints the endpoints controller writes, for one) at debug level
// through the manager's logger, instead of client-go's default, klog.
type warningLogger struct{ log *slog.Logger }

func (w warningLogger) HandleWarningHeader(code int, agent, text string) {
	if code == 299 && text != "" {
		w.log.Debug("API server warning", "warning", text)
	}
}

// runFunc runs one controller until ctx ends.
type runFunc func(ctx context.Context) error

// step is one controller of the manager: its name and how to build it
// with its logger.
type step struct {
	name  string
	build func(log *slog.Logger) (runFunc, error)
}

// runOf adapts a controller constructor's result.
func runOf[C interface{ Run(context.Context) error }](c C, err error) (runFunc, error) {
	if err != nil {
		return nil, err
	}
	return c.Run, nil
}

// Client is the manager's clientset (for callers that wait on what the
// controllers write).
func (m *Manager) Client() kubernetes.Interface { return m.client }

// Run starts the event sink, the informers and every controller, and
// blocks until ctx ends and they have all stopped. A controller that
// stops on an error is logged at once; Run returns those errors joined.
func (m *Manager) Run(ctx context.Context) error {
	m.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: m.client.CoreV1().Events("")})
	defer m.broadcaster.Shutdown()
	var wg sync.WaitGroup
	errs := make([]error, len(m.runners))
	for i, r := range m.runners {
		wg.Go(func() {
			if err := r.run(ctx); err != nil {
				r.log.Error("controller stopped", "err", err)
				errs[i] = fmt.Errorf("%s: %w", r.name, err)
			}
		})
	}
	// The one place the shared informers start: every controller
	// registered its handlers in NewManager.
	m.factory.Start(ctx.Done())
	m.cfg.Logger.Info("controller manager started", "controllers", len(m.runners))
	<-ctx.Done()
	wg.Wait()
	m.factory.Shutdown()
	return errors.Join(errs...)
}
