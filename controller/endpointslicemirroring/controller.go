package endpointslicemirroring

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Names, labels and defaults, as upstream.
const (
	// Name is the controller's name; Component its event source, as
	// upstream's.
	Name           = "endpointslice-mirroring-controller"
	Component      = "endpoint-slice-mirroring-controller"
	ControllerName = "endpointslicemirroring-controller.k8s.io"
	// MaxEndpointsPerSubset is upstream's default
	// --mirroring-max-endpoints-per-subset; it also bounds each slice.
	MaxEndpointsPerSubset = 1000

	// Endpoints the endpoints controller writes carry this label (the
	// endpointslice controller mirrors them itself).
	labelEndpointsManagedBy = "endpoints.kubernetes.io/managed-by"
	endpointsControllerName = "endpoint-controller"
	// annotationLeader marks the Endpoints some components use as
	// leader-election locks; they are not mirrored.
	annotationLeader = "control-plane.alpha.kubernetes.io/leader"

	// Event reasons recorded on the Endpoints.
	ReasonInvalidIPAddress         = "InvalidIPAddress"
	ReasonTooManyAddressesToMirror = "TooManyAddressesToMirror"
	ReasonFailedToUpdate           = "FailedToUpdateEndpointSlices"
)

// maxRetries is how often a failing key is retried with back-off before
// it is dropped until its next change (upstream's value).
const maxRetries = 15

// Config wires the controller.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	// MaxEndpointsPerSubset defaults to 1000.
	MaxEndpointsPerSubset int
	// Workers is how many keys sync at once (upstream's --concurrent-*
	// flag); 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller mirrors user-written Endpoints to EndpointSlices.
type Controller struct {
	logger    *slog.Logger
	workers   int
	client    kubernetes.Interface
	recorder  record.EventRecorder
	maxPer    int
	services  corelisters.ServiceLister
	endpoints corelisters.EndpointsLister
	slices    discoverylisters.EndpointSliceLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]

	// written remembers what this controller last did to each slice, so
	// a sync does not act on a cache that has not seen its own writes
	// (which would create duplicate slices).
	mu      sync.Mutex
	written map[string]write // by namespace/name
}

type write struct {
	service         string
	resourceVersion string
	deleted         bool
}

// New validates cfg and registers the informers; the caller starts
// cfg.Informers after New.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil || cfg.Recorder == nil {
		return nil, errors.New("endpointslicemirroring: Client, Informers and Recorder are required")
	}
	if cfg.MaxEndpointsPerSubset <= 0 {
		cfg.MaxEndpointsPerSubset = MaxEndpointsPerSubset
	}
	core := cfg.Informers.Core().V1()
	sl := cfg.Informers.Discovery().V1().EndpointSlices()
	c := &Controller{
		logger: cfg.Logger, workers: cfg.Workers,
		client: cfg.Client, recorder: cfg.Recorder, maxPer: cfg.MaxEndpointsPerSubset,
		services:  core.Services().Lister(),
		endpoints: core.Endpoints().Lister(),
		slices:    sl.Lister(),
		synced:    []cache.InformerSynced{core.Services().Informer().HasSynced, core.Endpoints().Informer().HasSynced, sl.Informer().HasSynced},
		queue:     workloop.NewQueue[string]("endpointslicemirroring", nil),
		written:   map[string]write{},
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{core.Services().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc: c.enqueueObject,
			UpdateFunc: func(old, obj any) {
				if (old.(*corev1.Service).Spec.Selector == nil) != (obj.(*corev1.Service).Spec.Selector == nil) {
					c.enqueueObject(obj)
				}
			},
			DeleteFunc: c.enqueueObject,
		}},
		{core.Endpoints().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueueObject,
			UpdateFunc: func(_, obj any) { c.enqueueObject(obj) },
			DeleteFunc: c.enqueueObject,
		}},
		{sl.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueueSlice,
			UpdateFunc: func(old, obj any) { c.enqueueSlice(old); c.enqueueSlice(obj) },
			DeleteFunc: func(obj any) {
				// The cache no longer has the slice, whatever this
				// controller last wrote to it: a user may delete a slice
				// before the cache showed the controller's last write.
				if s, ok := unwrap(obj).(*discoveryv1.EndpointSlice); ok {
					c.mu.Lock()
					delete(c.written, s.Namespace+"/"+s.Name)
					c.mu.Unlock()
				}
				c.enqueueSlice(obj)
			},
		}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func unwrap(obj any) any {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

// enqueueObject queues the namespace/name of a Service or Endpoints.
func (c *Controller) enqueueObject(obj any) {
	if m, ok := unwrap(obj).(metav1.Object); ok {
		c.queue.Add(m.GetNamespace() + "/" + m.GetName())
	}
}

func (c *Controller) enqueueSlice(obj any) {
	s, ok := unwrap(obj).(*discoveryv1.EndpointSlice)
	if !ok || s.Labels[discoveryv1.LabelManagedBy] != ControllerName || s.Labels[discoveryv1.LabelServiceName] == "" {
		return
	}
	c.queue.Add(s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName])
}

// Run works the queue until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	return workloop.Loop[string]{Logger: c.logger, Workers: c.workers, MaxRetries: maxRetries, KeyKind: "endpoints",
		Queue: c.queue, Synced: c.synced, Sync: c.sync}.Run(ctx)
}

// shouldMirror: user-written Endpoints only.
func shouldMirror(ep *corev1.Endpoints) bool {
	if ep.Labels[discoveryv1.LabelSkipMirror] == "true" || ep.Labels[labelEndpointsManagedBy] == endpointsControllerName {
		return false
	}
	_, leader := ep.Annotations[annotationLeader]
	return !leader
}

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	ep, err := c.endpoints.Endpoints(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return c.deleteMirrored(ctx, namespace, name)
	}
	if err != nil {
		return err
	}
	if !shouldMirror(ep) {
		return c.deleteMirrored(ctx, namespace, name)
	}
	svc, err := c.services.Services(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return c.deleteMirrored(ctx, namespace, name)
	}
	if err != nil {
		return err
	}
	if svc.Spec.Selector != nil {
		// The endpointslice controller owns this Service's slices.
		return c.deleteMirrored(ctx, namespace, name)
	}
	if !c.cacheCaughtUp(namespace, name) {
		// The event of our own write queues the key again.
		return nil
	}
	d := mirror(ep, c.maxPer)
	if d.invalid > 0 {
		c.recorder.Eventf(ep, corev1.EventTypeWarning, ReasonInvalidIPAddress,
			"Skipped %d invalid IP addresses when mirroring to EndpointSlices", d.invalid)
	}
	if d.truncated > 0 {
		c.recorder.Eventf(ep, corev1.EventTypeWarning, ReasonTooManyAddressesToMirror,
			"A max of %d addresses can be mirrored to EndpointSlices per Endpoints subset. %d addresses were skipped", c.maxPer, d.truncated)
	}
	err = c.reconcile(ctx, ep, d.groups)
	if namespaceTerminating(err) {
		return nil
	}
	if err != nil && !apierrors.IsConflict(err) {
		c.recorder.Eventf(ep, corev1.EventTypeWarning, ReasonFailedToUpdate,
			"Error mirroring Endpoints %s/%s to EndpointSlices: %v", namespace, name, err)
	}
	return err
}

func namespaceTerminating(err error) bool {
	return apierrors.IsForbidden(err) && (apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) ||
		strings.Contains(err.Error(), "because it is being terminated"))
}

// mirrored lists the slices this controller wrote for name, oldest first
// so the same slices are reused sync after sync.
func (c *Controller) mirrored(namespace, name string) ([]*discoveryv1.EndpointSlice, error) {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: ControllerName})
	list, err := c.slices.EndpointSlices(namespace).List(sel)
	slices.SortFunc(list, func(a, b *discoveryv1.EndpointSlice) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), strings.Compare(a.Name, b.Name))
	})
	return list, err
}

func (c *Controller) deleteMirrored(ctx context.Context, namespace, name string) error {
	existing, err := c.mirrored(namespace, name)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range existing {
		if err := c.deleteSlice(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) deleteSlice(ctx context.Context, s *discoveryv1.EndpointSlice) error {
	err := c.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return err
	}
	c.remember(s, true)
	return nil
}

// sliceMeta is the labels and annotations of ep's slices: the Endpoints'
// own, plus the controller's labels, without the trigger time and
// last-applied annotations, as upstream.
func sliceMeta(ep *corev1.Endpoints) (map[string]string, map[string]string) {
	l := maps.Clone(ep.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[discoveryv1.LabelServiceName] = ep.Name
	l[discoveryv1.LabelManagedBy] = ControllerName
	a := maps.Clone(ep.Annotations)
	if a == nil {
		a = map[string]string{}
	}
	delete(a, corev1.EndpointsLastChangeTriggerTime)
	delete(a, corev1.LastAppliedConfigAnnotation)
	return l, a
}

// ownerRef makes the Endpoints the slices' controller, as upstream: the
// garbage collector removes them with it.
func ownerRef(ep *corev1.Endpoints) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{APIVersion: "v1", Kind: "Endpoints", Name: ep.Name, UID: ep.UID, Controller: &t, BlockOwnerDeletion: &t}
}

// reconcile makes ep's slices hold groups: each group is cut into slices
// of at most maxPer endpoints, reusing existing slices of the same address
// type and ports; the rest are created or deleted.
func (c *Controller) reconcile(ctx context.Context, ep *corev1.Endpoints, groups []*group) error {
	existing, err := c.mirrored(ep.Namespace, ep.Name)
	if err != nil {
		return err
	}
	byKey := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		k := groupKey(s.AddressType, s.Ports)
		byKey[k] = append(byKey[k], s)
	}
	lbls, annotations := sliceMeta(ep)
	owner := ownerRef(ep)
	client := c.client.DiscoveryV1().EndpointSlices(ep.Namespace)
	var errs []error
	for _, g := range groups {
		k := g.key()
		reuse := byKey[k]
		delete(byKey, k)
		chunks := slices.Collect(slices.Chunk(g.endpoints, c.maxPer))
		for i, eps := range chunks {
			want := &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					GenerateName: ep.Name + "-", Namespace: ep.Namespace,
					Labels: lbls, Annotations: annotations,
					OwnerReferences: []metav1.OwnerReference{owner},
				},
				AddressType: g.addressType,
				Endpoints:   eps,
				Ports:       g.ports,
			}
			if i >= len(reuse) {
				created, err := client.Create(ctx, want, metav1.CreateOptions{})
				if err != nil {
					errs = append(errs, err)
					continue
				}
				c.remember(created, false)
				continue
			}
			have := reuse[i]
			if apiequality.Semantic.DeepEqual(have.Endpoints, want.Endpoints) && apiequality.Semantic.DeepEqual(have.Ports, want.Ports) &&
				maps.Equal(have.Labels, want.Labels) && maps.Equal(have.Annotations, want.Annotations) &&
				apiequality.Semantic.DeepEqual(have.OwnerReferences, want.OwnerReferences) {
				continue
			}
			upd := have.DeepCopy()
			upd.Labels, upd.Annotations, upd.OwnerReferences = want.Labels, want.Annotations, want.OwnerReferences
			upd.Endpoints, upd.Ports = want.Endpoints, want.Ports
			updated, err := client.Update(ctx, upd, metav1.UpdateOptions{})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			c.remember(updated, false)
		}
		if len(reuse) > len(chunks) {
			byKey[k] = reuse[len(chunks):]
		}
	}
	for _, stale := range byKey {
		for _, s := range stale {
			if err := c.deleteSlice(ctx, s); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("mirroring %s/%s: %w", ep.Namespace, ep.Name, err)
	}
	return nil
}

// cacheCaughtUp reports whether the slice cache shows every write this
// controller made for one Service. Only that Service's writes count: when
// it is behind, the events of those writes queue the same key again.
func (c *Controller) cacheCaughtUp(namespace, service string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, w := range c.written {
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		if ns != namespace || w.service != service {
			continue
		}
		s, err := c.slices.EndpointSlices(ns).Get(name)
		switch {
		case w.deleted && apierrors.IsNotFound(err):
			delete(c.written, key)
		case !w.deleted && err == nil && !olderThan(s.ResourceVersion, w.resourceVersion):
			delete(c.written, key)
		default:
			return false
		}
	}
	return true
}

// olderThan compares resourceVersions where they are numbers (they are
// on tinykube and etcd); otherwise only equality counts.
func olderThan(have, want string) bool {
	h, err1 := strconv.ParseUint(have, 10, 64)
	w, err2 := strconv.ParseUint(want, 10, 64)
	if err1 != nil || err2 != nil {
		return have != want
	}
	return h < w
}

func (c *Controller) remember(s *discoveryv1.EndpointSlice, deleted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written[s.Namespace+"/"+s.Name] = write{service: s.Labels[discoveryv1.LabelServiceName], resourceVersion: s.ResourceVersion, deleted: deleted}
}
