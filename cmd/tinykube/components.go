package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/controller/deployment"
	"github.com/tinykube/tinykube/controller/nodeipam"
	"github.com/tinykube/tinykube/controller/replicaset"
	"github.com/tinykube/tinykube/controller/serviceaccount"
	"github.com/tinykube/tinykube/scheduler"
)

// The identities of the in-process components, as upstream names them, so
// events, logs and (later) authorization read as users expect.
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
		UserAgent:       "tinykube/" + user,
		// Upstream's controller-manager and scheduler raise client-go's
		// 5 QPS default too; on one host the server is not far away.
		QPS:   100,
		Burst: 200,
	}
}

// componentsConfig is what the in-process components need.
type componentsConfig struct {
	loopback    *loopback
	url         string
	caPEM       []byte
	clusterCIDR netip.Prefix
	logger      *slog.Logger
}

// Worker goroutines per controller, as upstream's defaults
// (--concurrent-deployment-syncs and friends).
const controllerWorkers = 5

// components are the in-process API clients: the controllers, as
// upstream's kube-controller-manager runs them, and the scheduler. They
// start after the API serves and stop before it does.
type components struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stops  []func()
}

// startComponents builds every component, starts them, and returns at
// once; they run until stop.
func startComponents(ctx context.Context, cfg componentsConfig) (*components, error) {
	ctx, cancel := context.WithCancel(ctx)
	c := &components{cancel: cancel}
	cs, err := c.client(cfg, userControllerManager)
	if err != nil {
		cancel()
		return nil, err
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: cs.CoreV1().Events("")})
	recorder := func(component string) record.EventRecorder {
		return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
	}
	// In reverse of start: the informers stop after the controllers that
	// read them, the event sink last so their final events are sent.
	c.stops = append(c.stops, broadcaster.Shutdown, factory.Shutdown)

	sa, err := serviceaccount.New(serviceaccount.Config{Client: cs, Informers: factory})
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("serviceaccount controller: %w", err)
	}
	ipam, err := nodeipam.New(nodeipam.Config{
		Client:      cs,
		Informers:   factory,
		Recorder:    recorder("node-ipam-controller"),
		ClusterCIDR: cfg.clusterCIDR,
	})
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("node IPAM controller: %w", err)
	}

	deployments, err := deployment.New(deployment.Config{
		Client:    cs,
		Informers: factory,
		Recorder:  recorder("deployment-controller"),
	})
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("deployment controller: %w", err)
	}
	replicaSets, err := replicaset.New(replicaset.Config{
		Client:    cs,
		Informers: factory,
		Recorder:  recorder("replicaset-controller"),
	})
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("replicaset controller: %w", err)
	}

	// The scheduler is its own client with its own informers, as the
	// separate process it is upstream; it starts them itself.
	schedClient, err := c.client(cfg, userScheduler)
	if err != nil {
		c.stop()
		return nil, err
	}
	schedInformers := informers.NewSharedInformerFactory(schedClient, 0)
	c.stops = append(c.stops, schedInformers.Shutdown)
	sched, err := scheduler.New(scheduler.Config{Client: schedClient, Informers: schedInformers})
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("scheduler: %w", err)
	}

	factory.Start(ctx.Done())
	c.run(func() { sa.Run(ctx, 2) })
	c.run(func() { ipam.Run(ctx, 1) })
	c.run(func() { deployments.Run(ctx, controllerWorkers) })
	c.run(func() { replicaSets.Run(ctx, controllerWorkers) })
	c.run(func() {
		if err := sched.Run(ctx); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			cfg.logger.Error("scheduler stopped", "err", err)
		}
	})
	return c, nil
}

// client is a clientset for user. Its connections are closed when the
// components stop: the server's graceful shutdown waits for every open
// HTTP/2 connection, and one that a client opened but never used would
// hold it up until its timeout.
func (c *components) client(cfg componentsConfig, user string) (kubernetes.Interface, error) {
	rc := cfg.loopback.config(cfg.url, cfg.caPEM, user)
	hc, err := rest.HTTPClientFor(rc)
	if err != nil {
		return nil, err
	}
	c.stops = append(c.stops, func() { utilnet.CloseIdleConnectionsFor(hc.Transport) })
	return kubernetes.NewForConfigAndClient(rc, hc)
}

func (c *components) run(f func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}

// componentsStopTimeout bounds how long shutdown waits for components to
// finish their work in flight; a component with a long backlog (say, the
// scheduler with thousands of status updates queued) must not keep the
// server from exiting.
const componentsStopTimeout = 5 * time.Second

// stop ends every component and waits for them, at most
// componentsStopTimeout; it reports whether they all finished.
func (c *components) stop() bool {
	c.cancel()
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(componentsStopTimeout):
		return false
	}
	for i := len(c.stops) - 1; i >= 0; i-- {
		c.stops[i]()
	}
	return true
}
