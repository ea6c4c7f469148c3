package serviceaccount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// DefaultName is the ServiceAccount every namespace gets.
const DefaultName = "default"

// Name is the controller's name, as upstream's, in logs and as its event
// source.
const Name = "serviceaccount-controller"

// Config wires the controller.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// Recorder is optional: upstream's controller records no events.
	Recorder record.EventRecorder
	// Names are the ServiceAccounts every namespace gets; default
	// ["default"].
	Names []string
	// Workers is how many keys sync at once (upstream's --concurrent-*
	// flag); 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller ensures the default ServiceAccounts.
type Controller struct {
	logger     *slog.Logger
	workers    int
	client     kubernetes.Interface
	names      []string
	namespaces corelisters.NamespaceLister
	accounts   corelisters.ServiceAccountLister
	synced     []cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]
}

// New validates cfg and registers the controller's informers; the caller
// starts cfg.Informers after New.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, errors.New("serviceaccount: Client and Informers are required")
	}
	if len(cfg.Names) == 0 {
		cfg.Names = []string{DefaultName}
	}
	ns := cfg.Informers.Core().V1().Namespaces()
	sa := cfg.Informers.Core().V1().ServiceAccounts()
	c := &Controller{
		logger: cfg.Logger, workers: cfg.Workers,
		client:     cfg.Client,
		names:      cfg.Names,
		namespaces: ns.Lister(),
		accounts:   sa.Lister(),
		synced:     []cache.InformerSynced{ns.Informer().HasSynced, sa.Informer().HasSynced},
		queue:      workloop.NewQueue[string]("serviceaccount", nil),
	}
	enqueueNS := func(obj any) {
		if n, ok := obj.(*corev1.Namespace); ok {
			c.queue.Add(n.Name)
		}
	}
	if _, err := ns.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueNS,
		UpdateFunc: func(_, obj any) { enqueueNS(obj) },
	}); err != nil {
		return nil, err
	}
	if _, err := sa.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if a, ok := obj.(*corev1.ServiceAccount); ok {
				c.queue.Add(a.Namespace)
			}
		},
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// Run works the queue until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	return workloop.Loop[string]{Logger: c.logger, Workers: c.workers, KeyKind: "namespace",
		Queue: c.queue, Synced: c.synced, Sync: c.sync}.Run(ctx)
}

// sync creates the missing ServiceAccounts of one namespace.
func (c *Controller) sync(ctx context.Context, namespace string) error {
	ns, err := c.namespaces.Get(namespace)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.Status.Phase != corev1.NamespaceActive && ns.Status.Phase != "" || ns.DeletionTimestamp != nil {
		return nil
	}
	var errs []error
	for _, name := range c.names {
		if _, err := c.accounts.ServiceAccounts(namespace).Get(name); err == nil {
			continue
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}
		_, err := c.client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{})
		switch {
		case err == nil, apierrors.IsAlreadyExists(err):
		case apierrors.IsForbidden(err) && (apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) ||
			strings.Contains(err.Error(), "because it is being terminated")):
			// Being deleted: the namespace needs no account any more.
		default:
			errs = append(errs, fmt.Errorf("creating ServiceAccount %s/%s: %w", namespace, name, err))
		}
	}
	return errors.Join(errs...)
}
