package endpointslice

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
	"time"

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
	"k8s.io/utils/clock"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Names and labels, as upstream.
const (
	// Name is the controller's name; Component its event source, as
	// upstream's.
	Name               = "endpointslice-controller"
	Component          = "endpoint-slice-controller"
	ControllerName     = "endpointslice-controller.k8s.io"
	labelHeadless      = "service.kubernetes.io/headless"
	annotationTrigger  = corev1.EndpointsLastChangeTriggerTime
	annotationCapacity = "endpoints.kubernetes.io/over-capacity"
	// The legacy Endpoints are labelled as upstream's endpoint-controller
	// labels them (since 1.33).
	labelEndpointsManagedBy = "endpoints.kubernetes.io/managed-by"
	endpointsControllerName = "endpoint-controller"
)

// maxRetries is how often a failing key is retried with back-off before
// it is dropped until its next change (upstream's value).
const maxRetries = 15

// Config wires the controller.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Clock     clock.PassiveClock
	// MaxEndpointsPerSlice defaults to 100.
	MaxEndpointsPerSlice int
	// Workers is how many keys sync at once (upstream's --concurrent-*
	// flag); 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller keeps EndpointSlices and Endpoints of selector Services.
type Controller struct {
	logger    *slog.Logger
	workers   int
	client    kubernetes.Interface
	recorder  record.EventRecorder
	clock     clock.PassiveClock
	maxPer    int
	services  corelisters.ServiceLister
	pods      corelisters.PodLister
	nodes     corelisters.NodeLister
	endpoints corelisters.EndpointsLister
	slices    discoverylisters.EndpointSliceLister
	synced    []cache.InformerSynced
	queue     workqueue.TypedRateLimitingInterface[string]

	// written remembers, per slice, what this controller last wrote, so a
	// sync does not act on a cache that has not seen its own writes yet
	// (which would create duplicate slices).
	mu      sync.Mutex
	written map[string]write // by namespace/name
}

// New validates cfg and registers the informers; the caller starts
// cfg.Informers after New.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil || cfg.Recorder == nil {
		return nil, errors.New("endpointslice: Client, Informers and Recorder are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.MaxEndpointsPerSlice <= 0 {
		cfg.MaxEndpointsPerSlice = MaxEndpointsPerSlice
	}
	core := cfg.Informers.Core().V1()
	sl := cfg.Informers.Discovery().V1().EndpointSlices()
	c := &Controller{
		logger: cfg.Logger, workers: cfg.Workers,
		client: cfg.Client, recorder: cfg.Recorder, clock: cfg.Clock, maxPer: cfg.MaxEndpointsPerSlice,
		services:  core.Services().Lister(),
		pods:      core.Pods().Lister(),
		nodes:     core.Nodes().Lister(),
		endpoints: core.Endpoints().Lister(),
		slices:    sl.Lister(),
		synced: []cache.InformerSynced{core.Services().Informer().HasSynced, core.Pods().Informer().HasSynced,
			core.Nodes().Informer().HasSynced, core.Endpoints().Informer().HasSynced, sl.Informer().HasSynced},
		queue:   workloop.NewQueue[string]("endpointslice", nil),
		written: map[string]write{},
	}
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{core.Services().Informer(), onAny(c.enqueueObject)},
		{core.Pods().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc: func(obj any) { c.enqueuePod(obj, nil) },
			UpdateFunc: func(old, obj any) {
				if old.(*corev1.Pod).ResourceVersion != obj.(*corev1.Pod).ResourceVersion {
					c.enqueuePod(obj, old)
				}
			},
			DeleteFunc: func(obj any) { c.enqueuePod(obj, nil) },
		}},
		{core.Endpoints().Informer(), onAny(c.enqueueObject)},
		{sl.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    c.enqueueSlice,
			UpdateFunc: func(_, obj any) { c.enqueueSlice(obj) },
			DeleteFunc: func(obj any) {
				c.forget(obj)
				c.enqueueSlice(obj)
			},
		}},
		{core.Nodes().Informer(), cache.ResourceEventHandlerFuncs{UpdateFunc: c.nodeUpdated}},
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func onAny(f func(any)) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{AddFunc: f, UpdateFunc: func(_, obj any) { f(obj) }, DeleteFunc: f}
}

func unwrap(obj any) any {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

// enqueueObject queues the Service named like obj (a Service or Endpoints).
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

// enqueuePod queues the Services that select the pod, before or after a
// label change.
func (c *Controller) enqueuePod(obj, old any) {
	pod, ok := unwrap(obj).(*corev1.Pod)
	if !ok {
		return
	}
	sets := []labels.Set{pod.Labels}
	if o, ok := old.(*corev1.Pod); ok {
		sets = append(sets, o.Labels)
	}
	svcs, err := c.services.Services(pod.Namespace).List(labels.Everything())
	if err != nil {
		return
	}
	for _, svc := range svcs {
		if svc.Spec.Selector == nil {
			continue
		}
		sel := labels.SelectorFromValidatedSet(svc.Spec.Selector)
		for _, set := range sets {
			if sel.Matches(set) {
				c.queue.Add(svc.Namespace + "/" + svc.Name)
				break
			}
		}
	}
}

// nodeUpdated: a zone change moves every endpoint on the node.
func (c *Controller) nodeUpdated(old, obj any) {
	if old.(*corev1.Node).Labels[corev1.LabelTopologyZone] == obj.(*corev1.Node).Labels[corev1.LabelTopologyZone] {
		return
	}
	svcs, _ := c.services.List(labels.Everything())
	for _, svc := range svcs {
		c.queue.Add(svc.Namespace + "/" + svc.Name)
	}
}

// Run works the queue until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	return workloop.Loop[string]{Logger: c.logger, Workers: c.workers, MaxRetries: maxRetries, KeyKind: "service",
		Queue: c.queue, Synced: c.synced, Sync: c.sync}.Run(ctx)
}

func (c *Controller) sync(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	svc, err := c.services.Services(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return c.deleteAll(ctx, namespace, name)
	}
	if err != nil {
		return err
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		// ExternalName Services get no endpoints, as upstream.
		return c.deleteAll(ctx, namespace, name)
	}
	if svc.Spec.Selector == nil {
		// Endpoints of selectorless Services are the user's.
		return nil
	}
	pods, err := c.pods.Pods(namespace).List(labels.SelectorFromValidatedSet(svc.Spec.Selector))
	if err != nil {
		return err
	}
	zoneOf := func(node string) string {
		n, err := c.nodes.Get(node)
		if err != nil {
			return ""
		}
		return n.Labels[corev1.LabelTopologyZone]
	}
	forSlices, forEndpoints := desiredGroups(svc, pods, zoneOf)
	errSlices := c.reconcileSlices(ctx, svc, forSlices)
	errEndpoints := c.reconcileEndpoints(ctx, svc, forEndpoints)
	if namespaceTerminating(errSlices) || namespaceTerminating(errEndpoints) {
		// The namespace controller is removing it all; nothing to retry.
		return nil
	}
	if errSlices != nil && !apierrors.IsConflict(errSlices) {
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpointSlices",
			"Error updating Endpoint Slices for Service %s/%s: %v", namespace, name, errSlices)
	}
	if errEndpoints != nil && !apierrors.IsConflict(errEndpoints) && !apierrors.IsAlreadyExists(errEndpoints) {
		c.recorder.Eventf(svc, corev1.EventTypeWarning, "FailedToUpdateEndpoint",
			"Failed to update endpoint %s/%s: %v", namespace, name, errEndpoints)
	}
	return errors.Join(errSlices, errEndpoints)
}

// namespaceTerminating reports a create refused because the namespace is
// being deleted. Upstream marks it with a status cause; the message is
// checked too, for servers that do not set the cause.
func namespaceTerminating(err error) bool {
	return apierrors.IsForbidden(err) && (apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) ||
		strings.Contains(err.Error(), "because it is being terminated"))
}

// deleteAll removes what this controller wrote for a Service that is
// gone, or that gets no endpoints. The slices' ownerReferences would let the garbage collector do
// it too; the Endpoints have none, as upstream.
func (c *Controller) deleteAll(ctx context.Context, namespace, name string) error {
	var errs []error
	existing, _ := c.ownSlices(namespace, name)
	for _, s := range existing {
		if err := c.client.DiscoveryV1().EndpointSlices(namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	// Only Endpoints this controller wrote: users write their own for
	// Services without a selector, possibly before the Service exists.
	if ep, err := c.endpoints.Endpoints(namespace).Get(name); err == nil && ep.Labels[labelEndpointsManagedBy] == endpointsControllerName {
		if err := c.client.CoreV1().Endpoints(namespace).Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Controller) ownSlices(namespace, service string) ([]*discoveryv1.EndpointSlice, error) {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: service, discoveryv1.LabelManagedBy: ControllerName})
	list, err := c.slices.EndpointSlices(namespace).List(sel)
	// Oldest first, so the same slices are reused sync after sync.
	slices.SortFunc(list, func(a, b *discoveryv1.EndpointSlice) int {
		return cmp.Or(a.CreationTimestamp.Compare(b.CreationTimestamp.Time), strings.Compare(a.Name, b.Name))
	})
	return list, err
}

// cacheCaughtUp reports whether the slice cache shows every write this
// controller made for the Service's slices; when not, the Service is
// looked at again shortly (the write's own event may also queue it). A
// write the cache has not shown for writeExpectationTTL is given up on, as
// upstream's expectations expire, so a lost event cannot stall a Service.
func (c *Controller) cacheCaughtUp(namespace, service string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	caughtUp := true
	for key, w := range c.written {
		ns, name, _ := cache.SplitMetaNamespaceKey(key)
		if ns != namespace || w.service != service {
			continue
		}
		if c.clock.Since(w.at) > writeExpectationTTL {
			delete(c.written, key)
			continue
		}
		s, err := c.slices.EndpointSlices(ns).Get(name)
		switch {
		case w.deleted && apierrors.IsNotFound(err):
			delete(c.written, key)
		case !w.deleted && err == nil && !olderThan(s.ResourceVersion, w.resourceVersion):
			delete(c.written, key)
		default:
			caughtUp = false
		}
	}
	return caughtUp
}

// cacheCatchUpDelay is how soon a Service whose slices the cache has not
// caught up with is looked at again.
const cacheCatchUpDelay = 100 * time.Millisecond

// writeExpectationTTL is how long a write may go unseen by the cache
// before the controller stops waiting for it.
const writeExpectationTTL = time.Minute

// forget drops what the controller remembers of a slice the cache saw
// deleted: whatever it wrote last is gone.
func (c *Controller) forget(obj any) {
	s, ok := unwrap(obj).(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	c.mu.Lock()
	delete(c.written, s.Namespace+"/"+s.Name)
	c.mu.Unlock()
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
	c.written[s.Namespace+"/"+s.Name] = write{
		service:         s.Labels[discoveryv1.LabelServiceName],
		resourceVersion: s.ResourceVersion,
		deleted:         deleted,
		at:              c.clock.Now(),
	}
}

// write is what the controller last did to one slice.
type write struct {
	service         string
	resourceVersion string
	deleted         bool
	at              time.Time
}

// sliceLabels are the Service's labels plus the controller's own.
func sliceLabels(svc *corev1.Service) map[string]string {
	l := maps.Clone(svc.Labels)
	if l == nil {
		l = map[string]string{}
	}
	delete(l, corev1.IsHeadlessService)
	l[discoveryv1.LabelServiceName] = svc.Name
	l[discoveryv1.LabelManagedBy] = ControllerName
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		l[labelHeadless] = ""
	}
	return l
}

func ownerRef(svc *corev1.Service) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID, Controller: &t, BlockOwnerDeletion: &t}
}

// reconcileSlices makes the Service's slices hold groups: each group is cut
// into slices of at most maxPer endpoints, which reuse the existing slices
// of the same address type and ports; the rest are created or deleted. A
// Service with no endpoints keeps one empty slice, as upstream.
func (c *Controller) reconcileSlices(ctx context.Context, svc *corev1.Service, groups []*group) error {
	if !c.cacheCaughtUp(svc.Namespace, svc.Name) {
		c.queue.AddAfter(svc.Namespace+"/"+svc.Name, cacheCatchUpDelay)
		return nil
	}
	existing, err := c.ownSlices(svc.Namespace, svc.Name)
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		groups = []*group{{addressType: addressTypes(svc)[0]}}
	}
	byKey := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		k := groupKey(s.AddressType, s.Ports)
		byKey[k] = append(byKey[k], s)
	}
	labels := sliceLabels(svc)
	owner := ownerRef(svc)
	now := c.clock.Now().UTC().Format(time.RFC3339)
	client := c.client.DiscoveryV1().EndpointSlices(svc.Namespace)
	var errs []error
	for _, g := range groups {
		k := g.key()
		reuse := byKey[k]
		delete(byKey, k)
		chunks := [][]discoveryv1.Endpoint{nil}
		if len(g.endpoints) > 0 {
			chunks = slices.Collect(slices.Chunk(g.endpoints, c.maxPer))
		}
		for i, eps := range chunks {
			want := &discoveryv1.EndpointSlice{
				ObjectMeta: metav1.ObjectMeta{
					GenerateName: svc.Name + "-", Namespace: svc.Namespace, Labels: labels,
					Annotations:     map[string]string{annotationTrigger: now},
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
				maps.Equal(have.Labels, want.Labels) && apiequality.Semantic.DeepEqual(have.OwnerReferences, want.OwnerReferences) {
				continue
			}
			upd := have.DeepCopy()
			upd.Labels, upd.OwnerReferences, upd.Endpoints, upd.Ports = want.Labels, want.OwnerReferences, want.Endpoints, want.Ports
			if upd.Annotations == nil {
				upd.Annotations = map[string]string{}
			}
			upd.Annotations[annotationTrigger] = now
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
			err := client.Delete(ctx, s.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
				continue
			}
			c.remember(s, true)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("endpoint slices of %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

// reconcileEndpoints writes the legacy Endpoints named like the Service.
func (c *Controller) reconcileEndpoints(ctx context.Context, svc *corev1.Service, groups []*group) error {
	subs, truncated := subsets(groups)
	want := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, Labels: maps.Clone(svc.Labels)},
		Subsets:    subs,
	}
	if want.Labels == nil {
		want.Labels = map[string]string{}
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		want.Labels[corev1.IsHeadlessService] = ""
	} else {
		delete(want.Labels, corev1.IsHeadlessService)
	}
	want.Labels[labelEndpointsManagedBy] = endpointsControllerName
	want.Annotations = map[string]string{annotationTrigger: c.clock.Now().UTC().Format(time.RFC3339)}
	if truncated {
		want.Annotations[annotationCapacity] = "truncated"
	}
	client := c.client.CoreV1().Endpoints(svc.Namespace)
	have, err := c.endpoints.Endpoints(svc.Namespace).Get(svc.Name)
	if apierrors.IsNotFound(err) {
		_, err = client.Create(ctx, want, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	if apiequality.Semantic.DeepEqual(have.Subsets, want.Subsets) && maps.Equal(have.Labels, want.Labels) &&
		(have.Annotations[annotationCapacity] == "truncated") == truncated {
		return nil
	}
	upd := have.DeepCopy()
	upd.Labels, upd.Subsets = want.Labels, want.Subsets
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	maps.Copy(upd.Annotations, want.Annotations)
	if !truncated {
		delete(upd.Annotations, annotationCapacity)
	}
	_, err = client.Update(ctx, upd, metav1.UpdateOptions{})
	return err
}
