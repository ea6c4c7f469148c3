package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Name is upstream's name for this controller, in logs and as its event
// source.
const Name = "namespace-controller"

// DefaultRecheckInterval is how often a Terminating namespace whose
// content is still going away (pods in their grace period, objects with
// finalizers) is looked at again.
const DefaultRecheckInterval = time.Second

// Config wires the controller.
type Config struct {
	Client kubernetes.Interface
	// Metadata lists and deletes objects of every resource.
	Metadata  metadata.Interface
	Informers informers.SharedInformerFactory
	Recorder  record.EventRecorder
	Clock     clock.PassiveClock
	// RecheckInterval defaults to DefaultRecheckInterval.
	RecheckInterval time.Duration
	// Workers is how many namespaces are emptied at once (upstream's
	// --concurrent-namespace-syncs); 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller empties and finalizes deleted namespaces.
type Controller struct {
	logger     *slog.Logger
	workers    int
	client     kubernetes.Interface
	metadata   metadata.Interface
	recorder   record.EventRecorder
	clock      clock.PassiveClock
	recheck    time.Duration
	namespaces corelisters.NamespaceLister
	synced     cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]
}

// New validates cfg and registers the namespace informer; the caller
// starts cfg.Informers after New.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Metadata == nil || cfg.Informers == nil || cfg.Recorder == nil {
		return nil, errors.New("namespace: Client, Metadata, Informers and Recorder are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.RecheckInterval <= 0 {
		cfg.RecheckInterval = DefaultRecheckInterval
	}
	inf := cfg.Informers.Core().V1().Namespaces()
	c := &Controller{
		logger: cfg.Logger, workers: cfg.Workers,
		client: cfg.Client, metadata: cfg.Metadata, recorder: cfg.Recorder, clock: cfg.Clock, recheck: cfg.RecheckInterval,
		namespaces: inf.Lister(),
		synced:     inf.Informer().HasSynced,
		queue:      workloop.NewQueue[string]("namespace", nil),
	}
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	_, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	return c, err
}

// Run works the queue until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	return workloop.Loop[string]{Logger: c.logger, Workers: c.workers, KeyKind: "namespace",
		Queue: c.queue, Synced: []cache.InformerSynced{c.synced}, Sync: c.sync}.Run(ctx)
}

// sync deletes the content of one Terminating namespace and finalizes it
// once empty; content still going away asks for a recheck
// (workloop.RequeueAfter).
func (c *Controller) sync(ctx context.Context, name string) error {
	ns, err := c.namespaces.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return nil
	}
	if ns.Status.Phase != corev1.NamespaceTerminating {
		// The API server sets the phase with deletionTimestamp; a
		// namespace read before that is looked at again.
		return workloop.RequeueAfter(c.recheck)
	}
	res, discoveryErr := c.resources()
	left, deleteErr := c.deleteContent(ctx, name, res)
	if err := c.updateConditions(ctx, ns, discoveryErr, deleteErr, left); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if discoveryErr != nil || deleteErr != nil {
		return errors.Join(discoveryErr, deleteErr)
	}
	if left.objects > 0 {
		return workloop.RequeueAfter(c.recheck)
	}
	fin := ns.DeepCopy()
	fin.Spec.Finalizers = slices.DeleteFunc(fin.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	_, err = c.client.CoreV1().Namespaces().Finalize(ctx, fin, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// resources are the namespaced resources that can be listed and deleted.
// A group that fails discovery is reported, the others are still used.
func (c *Controller) resources() ([]schema.GroupVersionResource, error) {
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
			gr := gv.WithResource(r.Name).GroupResource()
			if !r.Namespaced || seen[gr] || strings.Contains(r.Name, "/") ||
				!slices.Contains(r.Verbs, "list") || !slices.Contains(r.Verbs, "delete") {
				continue
			}
			// Groups come in preference order; the first version wins.
			seen[gr] = true
			out = append(out, gv.WithResource(r.Name))
		}
	}
	return out, err
}

// leftovers describes what is still in a namespace.
type leftovers struct {
	objects    int
	byResource map[string]int // "pods." -> count, as upstream names them
	finalizers map[string]int // finalizer -> objects holding it
}

// deleteContent deletes every object of every resource in namespace and
// counts what is still there afterwards (being deleted).
func (c *Controller) deleteContent(ctx context.Context, namespace string, res []schema.GroupVersionResource) (leftovers, error) {
	left := leftovers{byResource: map[string]int{}, finalizers: map[string]int{}}
	var errs []error
	bg := metav1.DeletePropagationBackground
	for _, gvr := range res {
		client := c.metadata.Resource(gvr).Namespace(namespace)
		list, err := client.List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s: %w", gvr.GroupResource(), err))
			continue
		}
		pending := 0
		for i := range list.Items {
			item := &list.Items[i]
			if item.DeletionTimestamp == nil {
				err := client.Delete(ctx, item.Name, metav1.DeleteOptions{PropagationPolicy: &bg, Preconditions: &metav1.Preconditions{UID: &item.UID}})
				if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
					continue
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("deleting %s %s: %w", gvr.GroupResource(), item.Name, err))
					continue
				}
			}
			pending++
		}
		if pending == 0 {
			continue
		}
		// Count what deleting did not remove at once.
		list, err = client.List(ctx, metav1.ListOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("listing %s: %w", gvr.GroupResource(), err))
			continue
		}
		if n := len(list.Items); n > 0 {
			left.objects += n
			// Upstream names core resources "pods." (resource.group).
			left.byResource[gvr.Resource+"."+gvr.Group] += n
			for _, item := range list.Items {
				for _, f := range item.Finalizers {
					left.finalizers[f]++
				}
			}
		}
	}
	return left, errors.Join(errs...)
}

// updateConditions writes upstream's five deletion conditions.
func (c *Controller) updateConditions(ctx context.Context, ns *corev1.Namespace, discoveryErr, deleteErr error, left leftovers) error {
	cond := func(t corev1.NamespaceConditionType, failed bool, badReason, badMsg, goodReason, goodMsg string) corev1.NamespaceCondition {
		if failed {
			return corev1.NamespaceCondition{Type: t, Status: corev1.ConditionTrue, Reason: badReason, Message: badMsg}
		}
		return corev1.NamespaceCondition{Type: t, Status: corev1.ConditionFalse, Reason: goodReason, Message: goodMsg}
	}
	errMsg := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	want := []corev1.NamespaceCondition{
		cond(corev1.NamespaceDeletionDiscoveryFailure, discoveryErr != nil, "DiscoveryFailed", "Discovery failed for some groups: "+errMsg(discoveryErr),
			"ResourcesDiscovered", "All resources successfully discovered"),
		cond(corev1.NamespaceDeletionGVParsingFailure, false, "GroupVersionParsingFailed", "",
			"ParsedGroupVersions", "All legacy kube types successfully parsed"),
		cond(corev1.NamespaceDeletionContentFailure, deleteErr != nil, "ContentDeletionFailed", "Failed to delete all resource types: "+errMsg(deleteErr),
			"ContentDeleted", "All content successfully deleted, may be waiting on finalization"),
		cond(corev1.NamespaceContentRemaining, left.objects > 0, "SomeResourcesRemain", "Some resources are remaining: "+describe(left.byResource, "has"),
			"ContentRemoved", "All content successfully removed"),
		cond(corev1.NamespaceFinalizersRemaining, len(left.finalizers) > 0, "SomeFinalizersRemain",
			"Some content in the namespace has finalizers remaining: "+describe(left.finalizers, "in"),
			"ContentHasNoFinalizers", "All content-preserving finalizers finished"),
	}
	now := metav1.NewTime(c.clock.Now())
	upd := ns.DeepCopy()
	changed := false
	for _, w := range want {
		i := slices.IndexFunc(upd.Status.Conditions, func(x corev1.NamespaceCondition) bool { return x.Type == w.Type })
		if i < 0 {
			w.LastTransitionTime = now
			upd.Status.Conditions = append(upd.Status.Conditions, w)
			changed = true
			continue
		}
		have := upd.Status.Conditions[i]
		if have.Status != w.Status {
			w.LastTransitionTime = now
		} else {
			w.LastTransitionTime = have.LastTransitionTime
		}
		if !apiequality.Semantic.DeepEqual(have, w) {
			upd.Status.Conditions[i] = w
			changed = true
		}
	}
	if !changed {
		return nil
	}
	_, err := c.client.CoreV1().Namespaces().UpdateStatus(ctx, upd, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return nil // the next pass writes them
	}
	return err
}

// describe renders counts as upstream: "pods. has 2 resource instances",
// "foregroundDeletion in 1 resource instances".
func describe(counts map[string]int, verb string) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s %d resource instances", k, verb, counts[k]))
	}
	return strings.Join(parts, ", ")
}
