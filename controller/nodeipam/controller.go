package nodeipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Name is the controller's name, as upstream's; Component is the name
// upstream's range allocator records events as.
const (
	Name      = "node-ipam-controller"
	Component = "cidrAllocator"
)

// Defaults, as upstream's.
const (
	DefaultNodeCIDRMaskSizeIPv4 = 24
	DefaultNodeCIDRMaskSizeIPv6 = 64
)

// Config wires the controller.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	// ClusterCIDR is the range node ranges are cut from (required).
	ClusterCIDR netip.Prefix
	// NodeCIDRMaskSize is the prefix length of one node's range; default
	// 24 for IPv4, 64 for IPv6.
	NodeCIDRMaskSize int
	// Workers is how many nodes are synced at once; 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller allocates node pod CIDRs.
type Controller struct {
	logger   *slog.Logger
	workers  int
	client   kubernetes.Interface
	recorder record.EventRecorder
	nodes    corelisters.NodeLister
	synced   cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]

	mu   sync.Mutex
	set  *cidrSet
	held map[string]netip.Prefix // node name -> its range, as far as we know
}

// New validates cfg and registers the node informer; the caller starts
// cfg.Informers after New.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil || cfg.Recorder == nil {
		return nil, errors.New("nodeipam: Client, Informers and Recorder are required")
	}
	if cfg.NodeCIDRMaskSize == 0 {
		cfg.NodeCIDRMaskSize = DefaultNodeCIDRMaskSizeIPv4
		if cfg.ClusterCIDR.Addr().Is6() {
			cfg.NodeCIDRMaskSize = DefaultNodeCIDRMaskSizeIPv6
		}
	}
	set, err := newCIDRSet(cfg.ClusterCIDR, cfg.NodeCIDRMaskSize)
	if err != nil {
		return nil, err
	}
	inf := cfg.Informers.Core().V1().Nodes()
	c := &Controller{
		logger:   cfg.Logger,
		workers:  cfg.Workers,
		client:   cfg.Client,
		recorder: cfg.Recorder,
		nodes:    inf.Lister(),
		synced:   inf.Informer().HasSynced,
		set:      set,
		held:     map[string]netip.Prefix{},
		queue:    workloop.NewQueue[string]("nodeipam", nil),
	}
	_, err = inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.queue.Add(obj.(*corev1.Node).Name) },
		UpdateFunc: func(_, obj any) {
			if n := obj.(*corev1.Node); n.Spec.PodCIDR == "" {
				c.queue.Add(n.Name)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if n, ok := obj.(*corev1.Node); ok {
				c.queue.Add(n.Name)
			}
		},
	})
	return c, err
}

// Run rebuilds the allocation from the existing Nodes, then allocates
// until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	return workloop.Loop[string]{Logger: c.logger, Workers: c.workers, KeyKind: "node",
		Queue: c.queue, Synced: []cache.InformerSynced{c.synced}, PreStart: c.occupyExisting, Sync: c.sync}.Run(ctx)
}

// occupyExisting marks the ranges the Nodes already have as taken, before
// any node is given one.
func (c *Controller) occupyExisting(context.Context) error {
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range nodes {
		c.occupyLocked(n)
	}
	return nil
}

// occupyLocked records the range node already has.
func (c *Controller) occupyLocked(n *corev1.Node) {
	p, err := netip.ParsePrefix(n.Spec.PodCIDR)
	if err != nil {
		return
	}
	if old, ok := c.held[n.Name]; ok && old != p {
		c.set.release(old)
	}
	if c.set.occupy(p) {
		c.held[n.Name] = p
	}
}

// sync gives a node without a range one, and takes back the range of a
// node that is gone.
func (c *Controller) sync(ctx context.Context, name string) error {
	node, err := c.nodes.Get(name)
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		if p, ok := c.held[name]; ok {
			c.set.release(p)
			delete(c.held, name)
		}
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	if node.Spec.PodCIDR != "" {
		c.occupyLocked(node)
		c.mu.Unlock()
		return nil
	}
	p, ok := c.held[name]
	if !ok {
		p, err = c.set.allocate()
		if err != nil {
			c.mu.Unlock()
			c.recorder.Eventf(node, corev1.EventTypeNormal, "CIDRNotAvailable", "Node %s status is now: CIDRNotAvailable", name)
			return err
		}
		c.held[name] = p
	}
	c.mu.Unlock()

	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"podCIDR": p.String(), "podCIDRs": []string{p.String()}}})
	_, err = c.client.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		c.mu.Lock()
		c.set.release(p)
		delete(c.held, name)
		c.mu.Unlock()
		return nil
	}
	if err != nil {
		c.recorder.Eventf(node, corev1.EventTypeWarning, "CIDRAssignmentFailed", "Node %s status is now: CIDRAssignmentFailed", name)
		return fmt.Errorf("setting podCIDR %s on node %s: %w", p, name, err)
	}
	workloop.Logger(ctx).Info("allocated pod CIDR", "node", name, "podCIDR", p)
	return nil
}
