package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/controller"
	"github.com/tinykube/tinykube/internal/lifecycle"
	"github.com/tinykube/tinykube/pki"
	"github.com/tinykube/tinykube/scheduler"
)

// The identities of the in-process components, as upstream names them, so
// events, logs and authorization read as users expect. The API server's
// bootstrap policy binds system:kube-scheduler (and
// system:volume-scheduler) to the scheduler and, because every controller
// runs as this one user, system:kube-controller-manager and
// system:tinykube:controllers (the union of upstream's per-controller
// roles) to the controllers. The node agent is not one of them: its
// kubelet, proxy and DNS use the node's certificate (system:node:NAME in
// system:nodes) and go through the Node authorizer.
const (
	userControllerManager = "system:kube-controller-manager"
	userScheduler         = "system:kube-scheduler"
)

// loopback holds one fresh bearer token per in-process component. The
// tokens live only in memory and only for this run of the server: nothing
// on disk grants what they grant.
type loopback struct {
	tokens map[string]string // user name -> token
	set    *authn.Tokens
}

func newLoopback(users ...string) (*loopback, error) {
	l := &loopback{tokens: map[string]string{}}
	byToken := map[string]authn.User{}
	for _, u := range users {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		token := hex.EncodeToString(secret)
		l.tokens[u] = token
		byToken[token] = authn.User{Name: u, UID: u}
	}
	set, err := authn.NewTokens(byToken)
	if err != nil {
		return nil, err
	}
	l.set = set
	return l, nil
}

// config is the client configuration of user, talking to url over TLS
// verified against the cluster CA.
func (l *loopback) config(url string, caPEM []byte, user string) *rest.Config {
	return &rest.Config{
		Host:            url,
		BearerToken:     l.tokens[user],
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		// The API server names managedFields managers after the user
		// agent's first word: kube-controller-manager, kube-scheduler, as
		// upstream shows them.
		UserAgent: strings.TrimPrefix(user, "system:") + "/tinykube",
		// No client-side rate limit: the server is in the same process, and
		// a limit of 100/s made a 1,000-replica Deployment take 9 s and
		// capped scheduling at about 100 pods/s.
		QPS: -1,
		// The endpoints controllers write v1 Endpoints, whose every request
		// carries the deprecation warning: not news for the server's log.
		WarningHandler: rest.NoWarnings{},
	}
}

// componentsConfig is what the in-process components need.
type componentsConfig struct {
	loopback    *loopback
	url         string
	caPEM       []byte
	signingCA   string // dir of the CA that signs kubelet CSRs; "" signs none
	clusterCIDR netip.Prefix
	// clusterDNS is the ClusterIP of kube-system/kube-dns.
	clusterDNS netip.Addr
	serviceLB  bool
	// Node lifecycle settings (upstream's flag names).
	nodeMonitorGracePeriod time.Duration
}

// componentsStopTimeout bounds how long shutdown waits for each in-process
// component to finish its work in flight; a component with a long backlog
// (say, the scheduler with thousands of status updates queued) must not
// keep the server from exiting.
const componentsStopTimeout = 5 * time.Second

// startComponents starts the in-process API clients in g, after the API
// serves: the controllers, as upstream's kube-controller-manager runs
// them, and the scheduler. Their connections are closed when they stop:
// the server's graceful shutdown waits for every open HTTP/2 connection,
// and one that a client opened but never used would hold it up until its
// timeout.
func startComponents(ctx context.Context, g *lifecycle.Group, cfg componentsConfig) error {
	// One manager, one informer factory, one event broadcaster.
	rc := cfg.loopback.config(cfg.url, cfg.caPEM, userControllerManager)
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return err
	}
	manager, err := controller.NewManager(controller.ManagerConfig{
		RESTConfig:             rc,
		HTTPClient:             hc,
		ClusterCIDR:            cfg.clusterCIDR,
		ClusterSigningCertFile: signingFile(cfg.signingCA, pki.CACertPath),
		ClusterSigningKeyFile:  signingFile(cfg.signingCA, pki.CAKeyPath),
		ClusterDNS:             cfg.clusterDNS,
		ServiceLB:              cfg.serviceLB,
		NodeMonitorGracePeriod: cfg.nodeMonitorGracePeriod,
		Logger:                 g.Logger("controller-manager"),
	})
	if err != nil {
		return fmt.Errorf("controller manager: %w", err)
	}
	if err := g.Start(ctx, lifecycle.Component{Name: "controller-manager", StopTimeout: componentsStopTimeout,
		Run: func(ctx context.Context) error {
			defer utilnet.CloseIdleConnectionsFor(hc.Transport)
			return manager.Run(ctx)
		}}); err != nil {
		return err
	}

	// The scheduler is its own client with its own informers, as the
	// separate process it is upstream.
	src := cfg.loopback.config(cfg.url, cfg.caPEM, userScheduler)
	shc, err := rest.HTTPClientFor(src)
	if err != nil {
		return err
	}
	schedClient, err := kubernetes.NewForConfigAndClient(src, shc)
	if err != nil {
		return err
	}
	schedInformers := informers.NewSharedInformerFactory(schedClient, 0)
	sched, err := scheduler.New(scheduler.Config{Client: schedClient, Informers: schedInformers})
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	return g.Start(ctx, lifecycle.Component{Name: "scheduler", Ready: sched.Ready(), StopTimeout: componentsStopTimeout,
		Run: func(ctx context.Context) error {
			defer utilnet.CloseIdleConnectionsFor(shc.Transport)
			defer schedInformers.Shutdown()
			return sched.Run(ctx)
		}})
}

// signingFile is the CA file in dir, or "" without a dir.
func signingFile(dir string, file func(string) string) string {
	if dir == "" {
		return ""
	}
	return file(dir)
}
