package replicaset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Name is the component name events are recorded under, as upstream.
const Name = "replicaset-controller"

// burstReplicas caps the pods created or deleted for one ReplicaSet in one
// sync (upstream's --replicaset-controller burst of 500).
const burstReplicas = 500

// controllerKind is the kind set in the ownerReferences of the pods.
var controllerKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// Config is what New needs.
type Config struct {
	// Client writes pods and ReplicaSet status. Required.
	Client kubernetes.Interface
	// Informers is the shared factory the ReplicaSet and Pod informers come
	// from; whoever owns it starts it. Required.
	Informers informers.SharedInformerFactory
	// Recorder records SuccessfulCreate / SuccessfulDelete events; it
	// should be recording as "replicaset-controller". Required.
	Recorder record.EventRecorder
	// Clock is used for availability (minReadySeconds) and expectations;
	// nil means the real clock.
	Clock clock.PassiveClock
	// Workers is how many keys sync at once (upstream's --concurrent-*
	// flag); 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller keeps ReplicaSets' pods. Create it with New and start it
// with Run.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	clock    clock.PassiveClock

	rsLister  appslisters.ReplicaSetLister
	podLister corelisters.PodLister
	synced    []cache.InformerSynced

	queue        workqueue.TypedRateLimitingInterface[string]
	loop         workloop.Loop[string]
	expectations *expectations
}

// New validates cfg and registers the controller's event handlers on the
// informers of cfg.Informers.
func New(cfg Config) (*Controller, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("replicaset: Config.Client is required")
	case cfg.Informers == nil:
		return nil, errors.New("replicaset: Config.Informers is required")
	case cfg.Recorder == nil:
		return nil, errors.New("replicaset: Config.Recorder is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	rsInformer := cfg.Informers.Apps().V1().ReplicaSets()
	podInformer := cfg.Informers.Core().V1().Pods()
	c := &Controller{
		client:       cfg.Client,
		recorder:     cfg.Recorder,
		clock:        cfg.Clock,
		rsLister:     rsInformer.Lister(),
		podLister:    podInformer.Lister(),
		queue:        workloop.NewQueue[string]("replicaset", nil),
		expectations: newExpectations(cfg.Clock),
	}
	if _, err := rsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.deleteReplicaSet,
	}); err != nil {
		return nil, fmt.Errorf("replicaset: %w", err)
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.addPod,
		UpdateFunc: c.updatePod,
		DeleteFunc: c.deletePod,
	}); err != nil {
		return nil, fmt.Errorf("replicaset: %w", err)
	}
	c.synced = []cache.InformerSynced{rsInformer.Informer().HasSynced, podInformer.Informer().HasSynced}
	c.loop = workloop.Loop[string]{Logger: cfg.Logger, Workers: cfg.Workers,
		KeyKind: "replicaset", Queue: c.queue, Synced: c.synced, Sync: c.sync}
	return c, nil
}

// Run waits for the informer caches, then syncs ReplicaSets until ctx
// ends. It blocks until then.
func (c *Controller) Run(ctx context.Context) error { return c.loop.Run(ctx) }

func (c *Controller) enqueue(obj any) {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		c.loop.Log().Error("cannot key object", "err", err)
		return
	}
	c.queue.Add(key)
}

func (c *Controller) enqueueAfter(rs *appsv1.ReplicaSet, d time.Duration) {
	key, err := cache.MetaNamespaceKeyFunc(rs)
	if err != nil {
		c.loop.Log().Error("cannot key object", "err", err)
		return
	}
	c.queue.AddAfter(key, d)
}

func (c *Controller) deleteReplicaSet(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		c.loop.Log().Error("cannot key object", "err", err)
		return
	}
	c.expectations.forget(key)
	c.queue.Add(key)
}

// resolveControllerRef returns the ReplicaSet ref points at, or nil when
// ref is not a ReplicaSet or the one of that name has another UID.
func (c *Controller) resolveControllerRef(namespace string, ref *metav1.OwnerReference) *appsv1.ReplicaSet {
	if ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return nil
	}
	rs, err := c.rsLister.ReplicaSets(namespace).Get(ref.Name)
	if err != nil || rs.UID != ref.UID {
		return nil
	}
	return rs
}

// matchingReplicaSets are the ReplicaSets whose selector selects pod, for
// orphans that one of them may adopt.
func (c *Controller) matchingReplicaSets(pod *corev1.Pod) []*appsv1.ReplicaSet {
	if len(pod.Labels) == 0 {
		return nil
	}
	list, err := c.rsLister.ReplicaSets(pod.Namespace).List(labels.Everything())
	if err != nil {
		return nil
	}
	var out []*appsv1.ReplicaSet
	for _, rs := range list {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, rs)
	}
	return out
}

func (c *Controller) addPod(obj any) {
	pod := obj.(*corev1.Pod)
	if pod.DeletionTimestamp != nil {
		// Restarted controller seeing a pod already on its way out: it
		// must not count as a creation.
		c.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		rs := c.resolveControllerRef(pod.Namespace, ref)
		if rs == nil {
			return
		}
		key, _ := cache.MetaNamespaceKeyFunc(rs)
		c.expectations.creationObserved(key)
		c.queue.Add(key)
		return
	}
	for _, rs := range c.matchingReplicaSets(pod) {
		c.enqueue(rs)
	}
}

func (c *Controller) updatePod(oldObj, newObj any) {
	old, cur := oldObj.(*corev1.Pod), newObj.(*corev1.Pod)
	if old.ResourceVersion == cur.ResourceVersion {
		return
	}
	labelsChanged := !labels.Equals(old.Labels, cur.Labels)
	if cur.DeletionTimestamp != nil {
		c.deletePod(cur)
		if labelsChanged {
			c.deletePod(old)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOf(cur), metav1.GetControllerOf(old)
	refChanged := !refEqual(curRef, oldRef)
	if refChanged && oldRef != nil {
		if rs := c.resolveControllerRef(old.Namespace, oldRef); rs != nil {
			c.enqueue(rs)
		}
	}
	if curRef != nil {
		rs := c.resolveControllerRef(cur.Namespace, curRef)
		if rs == nil {
			return
		}
		c.enqueue(rs)
		// A pod that just became ready turns available minReadySeconds
		// later; no event will say so.
		if !podReady(old) && podReady(cur) && rs.Spec.MinReadySeconds > 0 {
			c.enqueueAfter(rs, time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
		}
		return
	}
	if labelsChanged || refChanged {
		for _, rs := range c.matchingReplicaSets(cur) {
			c.enqueue(rs)
		}
	}
}

func (c *Controller) deletePod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if pod, ok = tomb.Obj.(*corev1.Pod); !ok {
			return
		}
	}
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return
	}
	rs := c.resolveControllerRef(pod.Namespace, ref)
	if rs == nil {
		return
	}
	key, _ := cache.MetaNamespaceKeyFunc(rs)
	podKey, _ := cache.MetaNamespaceKeyFunc(pod)
	c.expectations.deletionObserved(key, podKey)
	c.queue.Add(key)
}

func refEqual(a, b *metav1.OwnerReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID
}
