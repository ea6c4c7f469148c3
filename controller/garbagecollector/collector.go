package garbagecollector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Name is upstream's name for the collector, in logs and as its event
// source.
const Name = "garbage-collector-controller"

// ignored are resources the collector never watches, as upstream's
// defaults: events are many, short-lived and never owners.
var ignored = []schema.GroupResource{{Group: "", Resource: "events"}, {Group: "events.k8s.io", Resource: "events"}}

// Config wires the collector.
type Config struct {
	// Client is used for discovery.
	Client kubernetes.Interface
	// Metadata reads, patches and deletes objects of every resource; the
	// collector runs its own metadata informers on it.
	Metadata metadata.Interface
	// Informers is not used: the collector watches metadata only.
	Informers informers.SharedInformerFactory
	// Recorder is optional: upstream's collector records no events.
	Recorder record.EventRecorder
	// Workers is how many objects are collected at once (upstream's
	// --concurrent-gc-syncs); 0 means 1.
	Workers int
	// Logger is the collector's; nil discards.
	Logger *slog.Logger
}

// Collector is the garbage collector.
type Collector struct {
	client   kubernetes.Interface
	metadata metadata.Interface
	graph    *graph
	queue    workqueue.TypedRateLimitingInterface[types.UID]
	// loop lacks its Synced: Run adds the monitors it starts.
	loop   workloop.Loop[types.UID]
	logger *slog.Logger

	// Filled by Run from discovery.
	kinds map[schema.GroupVersionKind]resourceInfo
}

type resourceInfo struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}

// New validates cfg.
func New(cfg Config) (*Collector, error) {
	if cfg.Client == nil || cfg.Metadata == nil {
		return nil, errors.New("garbagecollector: Client and Metadata are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Collector{
		client:   cfg.Client,
		metadata: cfg.Metadata,
		graph:    newGraph(),
		queue:    workloop.NewQueue[types.UID]("garbage_collector", nil),
		kinds:    map[schema.GroupVersionKind]resourceInfo{},
		logger:   cfg.Logger,
	}
	c.loop = workloop.Loop[types.UID]{Logger: cfg.Logger, Workers: cfg.Workers, KeyKind: "uid", Queue: c.queue, Sync: c.sync}
	return c, nil
}

// Run discovers the resources, watches their metadata, waits until the
// graph holds every object, then collects until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	var monitored []schema.GroupVersionResource
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		monitored, err = c.discover()
		if err != nil {
			c.logger.Warn("discovery failed, will retry", "err", err)
		}
		return err == nil, nil
	})
	if err != nil {
		return nil // ctx ended
	}
	factory := metadatainformer.NewSharedInformerFactory(c.metadata, 0)
	var synced []cache.InformerSynced
	for _, gvr := range monitored {
		inf := factory.ForResource(gvr).Informer()
		if _, err := inf.AddEventHandler(c.handler(gvr)); err != nil {
			return fmt.Errorf("garbagecollector: watching %s: %w", gvr, err)
		}
		synced = append(synced, inf.HasSynced)
	}
	// The monitors are the collector's own metadata informers, apart
	// from the manager's shared factory.
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	loop := c.loop
	loop.Synced = synced
	return loop.Run(ctx)
}

// discover fills c.kinds and returns the resources to watch: every one
// that can be listed, watched and deleted, but events.
func (c *Collector) discover() ([]schema.GroupVersionResource, error) {
	_, lists, err := c.client.Discovery().ServerGroupsAndResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, err
	}
	var out []schema.GroupVersionResource
	seen := map[schema.GroupResource]bool{}
	for _, l := range lists {
		gv, perr := schema.ParseGroupVersion(l.GroupVersion)
		if perr != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			gvr := gv.WithResource(r.Name)
			if _, ok := c.kinds[gv.WithKind(r.Kind)]; !ok {
				c.kinds[gv.WithKind(r.Kind)] = resourceInfo{gvr: gvr, namespaced: r.Namespaced}
			}
			gr := gvr.GroupResource()
			if seen[gr] || slices.Contains(ignored, gr) ||
				!slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "watch") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			seen[gr] = true
			out = append(out, gvr)
		}
	}
	return out, err
}

func (c *Collector) handler(gvr schema.GroupVersionResource) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.observe(gvr, obj) },
		UpdateFunc: func(_, obj any) { c.observe(gvr, obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			m, ok := obj.(metav1.Object)
			if !ok {
				return
			}
			old := c.graph.remove(m.GetUID())
			c.graph.markAbsent(m.GetUID())
			// Dependents may have lost their last owner.
			for _, d := range c.graph.dependentsOf(m.GetUID()) {
				c.queue.Add(d.uid)
			}
			if old != nil {
				c.enqueueDeletingOwners(old.owners)
			}
		},
	}
}

// observe records an added or updated object and queues the work it may
// need.
func (c *Collector) observe(gvr schema.GroupVersionResource, obj any) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	n := &node{
		gvr: gvr, namespace: m.GetNamespace(), name: m.GetName(), uid: m.GetUID(), resourceVersion: m.GetResourceVersion(),
		owners: m.GetOwnerReferences(), finalizers: m.GetFinalizers(), deletionTimestamp: m.GetDeletionTimestamp(),
	}
	old := c.graph.upsert(n)
	switch {
	case old == nil:
		if len(n.owners) > 0 || n.beingDeleted() {
			c.queue.Add(n.uid)
		}
	case !slices.Equal(old.finalizers, n.finalizers) || (old.deletionTimestamp == nil) != (n.deletionTimestamp == nil):
		c.queue.Add(n.uid)
	case !ownersEqual(old.owners, n.owners):
		c.queue.Add(n.uid)
		c.enqueueDeletingOwners(old.owners)
	}
}

func ownersEqual(a, b []metav1.OwnerReference) bool {
	return slices.EqualFunc(a, b, func(x, y metav1.OwnerReference) bool {
		return x.UID == y.UID && ptrTrue(x.BlockOwnerDeletion) == ptrTrue(y.BlockOwnerDeletion)
	})
}

func ptrTrue(b *bool) bool { return b != nil && *b }

// enqueueDeletingOwners queues the owners waiting for their dependents:
// one of those may just have gone.
func (c *Collector) enqueueDeletingOwners(owners []metav1.OwnerReference) {
	for _, o := range owners {
		if n := c.graph.get(o.UID); n != nil && n.deletingDependents() {
			c.queue.Add(o.UID)
		}
	}
}

func (c *Collector) sync(ctx context.Context, uid types.UID) error {
	n := c.graph.get(uid)
	switch {
	case n == nil:
		return nil
	case n.orphaning():
		return c.orphanDependents(ctx, n)
	case n.deletingDependents():
		return c.deleteDependents(ctx, n)
	case n.beingDeleted() || len(n.owners) == 0:
		return nil
	}
	return c.attemptToDelete(ctx, n)
}

// orphanDependents removes n from its dependents' ownerReferences, then
// its orphan finalizer.
func (c *Collector) orphanDependents(ctx context.Context, n *node) error {
	var errs []error
	for _, d := range c.graph.dependentsOf(n.uid) {
		if err := c.removeOwnerRefs(ctx, d, n.uid); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.removeFinalizer(ctx, n, metav1.FinalizerOrphanDependents)
}

// deleteDependents deletes the dependents of an owner in foreground
// deletion and removes its finalizer once none blocks it.
func (c *Collector) deleteDependents(ctx context.Context, n *node) error {
	for _, d := range c.graph.dependentsOf(n.uid) {
		if !d.beingDeleted() || d.deletingDependents() {
			c.queue.Add(d.uid)
		}
	}
	if len(c.graph.blockingDependents(n.uid)) > 0 {
		// A dependent's removal queues n again.
		return nil
	}
	return c.removeFinalizer(ctx, n, metav1.FinalizerDeleteDependents)
}

type ownerState int

const (
	solid    ownerState = iota // exists and is not waiting for dependents
	dangling                   // gone, or a different object by now
	waiting                    // being deleted in the foreground
)

// ownerState tells what became of one owner: from the graph, or from the
// API server when the graph has not seen it (its informer may lag).
func (c *Collector) ownerState(ctx context.Context, dep *node, ref metav1.OwnerReference) (ownerState, error) {
	if o := c.graph.get(ref.UID); o != nil {
		if o.deletingDependents() {
			return waiting, nil
		}
		return solid, nil
	}
	if c.graph.isAbsent(ref.UID) {
		return dangling, nil
	}
	info, ok := c.kinds[schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind)]
	if !ok {
		// A kind the server does not serve: leave the dependent alone.
		return solid, nil
	}
	ns := ""
	if info.namespaced {
		if dep.namespace == "" {
			return dangling, nil // a cluster-scoped object cannot have a namespaced owner
		}
		ns = dep.namespace
	}
	live, err := c.metadata.Resource(info.gvr).Namespace(ns).Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		c.graph.markAbsent(ref.UID)
		return dangling, nil
	}
	if err != nil {
		return solid, err
	}
	if live.UID != ref.UID {
		return dangling, nil
	}
	if live.DeletionTimestamp != nil && slices.Contains(live.Finalizers, metav1.FinalizerDeleteDependents) {
		return waiting, nil
	}
	return solid, nil
}

// attemptToDelete deletes n when none of its owners is left, and trims
// references to owners that are gone when some are.
func (c *Collector) attemptToDelete(ctx context.Context, n *node) error {
	var solidN int
	var gone []types.UID
	var waitingN int
	for _, ref := range n.owners {
		st, err := c.ownerState(ctx, n, ref)
		if err != nil {
			return err
		}
		switch st {
		case solid:
			solidN++
		case dangling:
			gone = append(gone, ref.UID)
		case waiting:
			waitingN++
			gone = append(gone, ref.UID)
		}
	}
	if solidN > 0 {
		if len(gone) == 0 {
			return nil
		}
		return c.removeOwnerRefs(ctx, n, gone...)
	}
	policy := metav1.DeletePropagationBackground
	switch {
	case waitingN > 0 && len(c.graph.dependentsOf(n.uid)) > 0:
		policy = metav1.DeletePropagationForeground
	case slices.Contains(n.finalizers, metav1.FinalizerOrphanDependents):
		policy = metav1.DeletePropagationOrphan
	case slices.Contains(n.finalizers, metav1.FinalizerDeleteDependents):
		policy = metav1.DeletePropagationForeground
	}
	workloop.Logger(ctx).Info("deleting object whose owners are gone", "resource", n.gvr.GroupResource(), "namespace", n.namespace, "name", n.name, "propagation", policy)
	err := c.metadata.Resource(n.gvr).Namespace(n.namespace).Delete(ctx, n.name, metav1.DeleteOptions{
		PropagationPolicy: &policy,
		Preconditions:     &metav1.Preconditions{UID: &n.uid},
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if apierrors.IsConflict(err) {
		// Another object of the same name by now; its own events decide.
		return nil
	}
	return err
}

// removeOwnerRefs drops the references to the given owners from n, with a
// JSON merge patch naming n's UID so it cannot hit a successor.
func (c *Collector) removeOwnerRefs(ctx context.Context, n *node, owners ...types.UID) error {
	refs := slices.DeleteFunc(slices.Clone(n.owners), func(r metav1.OwnerReference) bool { return slices.Contains(owners, r.UID) })
	if len(refs) == len(n.owners) {
		return nil
	}
	if refs == nil {
		refs = []metav1.OwnerReference{}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": refs, "uid": n.uid}})
	if err != nil {
		return err
	}
	_, err = c.metadata.Resource(n.gvr).Namespace(n.namespace).Patch(ctx, n.name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing owner references from %s %s/%s: %w", n.gvr.GroupResource(), n.namespace, n.name, err)
	}
	return nil
}

// removeFinalizer drops one finalizer from n; the resourceVersion in the
// patch makes it fail rather than drop a finalizer added meanwhile.
func (c *Collector) removeFinalizer(ctx context.Context, n *node, finalizer string) error {
	rest := slices.DeleteFunc(slices.Clone(n.finalizers), func(f string) bool { return f == finalizer })
	if len(rest) == len(n.finalizers) {
		return nil
	}
	if rest == nil {
		rest = []string{}
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers": rest, "uid": n.uid, "resourceVersion": n.resourceVersion,
	}})
	if err != nil {
		return err
	}
	_, err = c.metadata.Resource(n.gvr).Namespace(n.namespace).Patch(ctx, n.name, types.MergePatchType, patch, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing finalizer %s from %s %s/%s: %w", finalizer, n.gvr.GroupResource(), n.namespace, n.name, err)
	}
	return nil
}
