package servicelb

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sort"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Name is the controller's name (upstream has none: k3s's ServiceLB is
// the model), in logs and as its event source.
const Name = "service-lb-controller"

// Event reasons.
const (
	ReasonPortInUse = "PortInUse"
	ReasonAssigned  = "IngressAssigned"
)

// Config configures a Controller.
type Config struct {
	Client    kubernetes.Interface            // required
	Informers informers.SharedInformerFactory // required; started by the caller
	// Recorder records events; nil: one that writes to the API.
	Recorder record.EventRecorder
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller sets status.loadBalancer.ingress of LoadBalancer Services.
type Controller struct {
	client      kubernetes.Interface
	services    corelisters.ServiceLister
	nodes       corelisters.NodeLister
	synced      []cache.InformerSynced
	queue       workqueue.TypedRateLimitingInterface[string]
	recorder    record.EventRecorder
	logger      *slog.Logger
	broadcaster record.EventBroadcaster

	// pendingOn remembers, per pending Service, which Service holds its
	// port, so that the Warning is recorded once per conflict (reconcile
	// runs on one goroutine).
	pendingOn map[string]string
}

// New validates cfg and registers the event handlers.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, errors.New("servicelb: Client and Informers are required")
	}
	c := &Controller{
		client:    cfg.Client,
		services:  cfg.Informers.Core().V1().Services().Lister(),
		nodes:     cfg.Informers.Core().V1().Nodes().Lister(),
		queue:     workloop.NewQueue[string]("servicelb", nil),
		recorder:  cfg.Recorder,
		logger:    cfg.Logger,
		pendingOn: map[string]string{},
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.recorder == nil {
		// The broadcaster's own log lines go to the logger, not to klog.
		log := logr.FromSlogHandler(c.logger.Handler())
		c.broadcaster = record.NewBroadcaster(record.WithContext(logr.NewContext(context.Background(), log)))
		c.recorder = c.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: Name}).WithLogger(log)
	}
	svcInf := cfg.Informers.Core().V1().Services().Informer()
	nodeInf := cfg.Informers.Core().V1().Nodes().Informer()
	// Any LoadBalancer change may free or take a port for the others, and
	// any node change changes the addresses: recheck them all.
	all := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.enqueueAll() },
		UpdateFunc: func(any, any) { c.enqueueAll() },
		DeleteFunc: func(any) { c.enqueueAll() },
	}
	r1, err := svcInf.AddEventHandler(all)
	if err != nil {
		return nil, err
	}
	r2, err := nodeInf.AddEventHandler(all)
	if err != nil {
		return nil, err
	}
	c.synced = []cache.InformerSynced{r1.HasSynced, r2.HasSynced}
	return c, nil
}

// allKey stands for "every LoadBalancer Service": one reconcile decides
// all port ownership at once, from full state.
const allKey = "all"

func (c *Controller) enqueueAll() { c.queue.Add(allKey) }

// Run reconciles until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if c.broadcaster != nil {
		c.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.client.CoreV1().Events("")})
		defer c.broadcaster.Shutdown()
	}
	c.enqueueAll()
	// One worker: reconcile decides every Service's ports at once.
	return workloop.Loop[string]{Logger: c.logger, KeyKind: "key", Queue: c.queue, Synced: c.synced,
		Sync: func(ctx context.Context, _ string) error { return c.reconcile(ctx) }}.Run(ctx)
}

type portKey struct {
	protocol corev1.Protocol
	port     int32
}

// reconcile assigns ports to LoadBalancer Services, oldest first, and
// writes every status that differs.
func (c *Controller) reconcile(ctx context.Context) error {
	svcs, err := c.services.List(labels.Everything())
	if err != nil {
		return err
	}
	var lbs []*corev1.Service
	for _, s := range svcs {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.LoadBalancerClass == nil {
			lbs = append(lbs, s)
		}
	}
	sort.Slice(lbs, func(i, j int) bool {
		a, b := lbs[i], lbs[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	ingress, err := c.nodeIngress()
	if err != nil {
		return err
	}
	owner := map[portKey]*corev1.Service{}
	var errs []error
	stillPending := map[string]bool{}
	defer func() {
		for k := range c.pendingOn {
			if !stillPending[k] {
				delete(c.pendingOn, k)
			}
		}
	}()
	for _, s := range lbs {
		var conflict *corev1.Service
		var conflictPort portKey
		for _, p := range s.Spec.Ports {
			if o, ok := owner[portKey{p.Protocol, p.Port}]; ok {
				conflict, conflictPort = o, portKey{p.Protocol, p.Port}
				break
			}
		}
		want := ingress
		if conflict != nil {
			want = nil
			stillPending[s.Namespace+"/"+s.Name] = true
		} else {
			for _, p := range s.Spec.Ports {
				owner[portKey{p.Protocol, p.Port}] = s
			}
		}
		if equality.Semantic.DeepEqual(s.Status.LoadBalancer.Ingress, want) ||
			(len(want) == 0 && len(s.Status.LoadBalancer.Ingress) == 0) {
			if conflict != nil {
				c.pending(s, conflict, conflictPort)
			}
			continue
		}
		updated := s.DeepCopy()
		updated.Status.LoadBalancer.Ingress = want
		if _, err := c.client.CoreV1().Services(s.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
			if !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
			continue
		}
		if conflict != nil {
			c.pending(s, conflict, conflictPort)
		} else if len(want) > 0 {
			c.recorder.Eventf(s, corev1.EventTypeNormal, ReasonAssigned, "Ingress is the address of every ready node: %s", ingressString(want))
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) pending(s, owner *corev1.Service, p portKey) {
	k, o := s.Namespace+"/"+s.Name, owner.Namespace+"/"+owner.Name
	if c.pendingOn[k] == o {
		return
	}
	c.pendingOn[k] = o
	c.recorder.Eventf(s, corev1.EventTypeWarning, ReasonPortInUse,
		"Port %d/%s is already used by LoadBalancer Service %s/%s; this Service stays pending until it is free",
		p.port, p.protocol, owner.Namespace, owner.Name)
}

// nodeIngress lists the address of every ready node (InternalIP, else
// ExternalIP), sorted.
func (c *Controller) nodeIngress() ([]corev1.LoadBalancerIngress, error) {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	for _, n := range nodes {
		if !ready(n) {
			continue
		}
		if ip, ok := nodeIP(n); ok {
			ips = append(ips, ip)
		}
	}
	slices.SortFunc(ips, func(a, b netip.Addr) int { return a.Compare(b) })
	ips = slices.Compact(ips)
	var out []corev1.LoadBalancerIngress
	for _, ip := range ips {
		mode := corev1.LoadBalancerIPModeVIP
		out = append(out, corev1.LoadBalancerIngress{IP: ip.String(), IPMode: &mode})
	}
	return out, nil
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeIP(n *corev1.Node) (netip.Addr, bool) {
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type == t {
				if ip, err := netip.ParseAddr(a.Address); err == nil {
					return ip, true
				}
			}
		}
	}
	return netip.Addr{}, false
}

func ingressString(in []corev1.LoadBalancerIngress) string {
	s := ""
	for i, x := range in {
		if i > 0 {
			s += ", "
		}
		s += x.IP
	}
	return s
}
