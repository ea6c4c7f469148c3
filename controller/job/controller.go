package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Name is the component name events are recorded under, as upstream.
const Name = "job-controller"

// Upstream's pod failure back-off: 10s doubled per consecutive failure,
// at most 6 minutes.
const (
	defaultBackOff = 10 * time.Second
	maxBackOff     = 6 * time.Minute
	// expectationsTTL bounds how long a Job waits for its informer to
	// report what it wrote (upstream's ExpectationsTimeout).
	expectationsTTL = 5 * time.Minute
)

var controllerKind = batchv1.SchemeGroupVersion.WithKind("Job")

// orphanPodPrefix marks queue keys that name a pod (not a Job) whose Job
// is gone and whose tracking finalizer must be removed.
const orphanPodPrefix = "orphan-pod:"

// Config is what New needs.
type Config struct {
	// Client writes pods, Jobs and their status. Required.
	Client kubernetes.Interface
	// Informers gives the Job and Pod informers; whoever owns it starts
	// it. Required.
	Informers informers.SharedInformerFactory
	// Recorder records events as "job-controller". Required.
	Recorder record.EventRecorder
	// Clock is for start and completion times, deadlines, back-off and
	// TTLs; nil is the real clock. The queue's delays follow it.
	Clock clock.WithTicker
	// Workers is how many keys sync at once (upstream's --concurrent-*
	// flag); 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller runs Jobs. Create it with New, start it with Run.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	clock    clock.WithTicker

	jobLister batchlisters.JobLister
	podLister corelisters.PodLister
	loop      workloop.Loop[string]
	queue     workqueue.TypedRateLimitingInterface[string]

	mu sync.Mutex
	// pending is what each Job (by key) wrote and its informer has not
	// reported yet, so a lagging cache cannot make it act twice.
	pending map[string]*pendingWrites
	// backOff is each Job's (by key) failures since its last success.
	backOff map[string]backOffRecord
}

// pendingWrites are pod creations not yet seen, and the pods whose
// tracking finalizer was removed but still show it.
type pendingWrites struct {
	creations  int
	finalizers sets.Set[types.UID]
	at         time.Time
}

type backOffRecord struct {
	uid         types.UID // of the Job: a new Job of the same name starts afresh
	failures    int
	lastFailure time.Time
}

// New validates cfg and registers the controller's event handlers.
func New(cfg Config) (*Controller, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("job: Config.Client is required")
	case cfg.Informers == nil:
		return nil, errors.New("job: Config.Informers is required")
	case cfg.Recorder == nil:
		return nil, errors.New("job: Config.Recorder is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	jobInformer := cfg.Informers.Batch().V1().Jobs()
	podInformer := cfg.Informers.Core().V1().Pods()
	c := &Controller{
		client:    cfg.Client,
		recorder:  cfg.Recorder,
		clock:     cfg.Clock,
		jobLister: jobInformer.Lister(),
		podLister: podInformer.Lister(),
		queue:     workloop.NewQueue[string]("job", cfg.Clock),
		pending:   map[string]*pendingWrites{},
		backOff:   map[string]backOffRecord{},
	}
	if _, err := jobInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, fmt.Errorf("job: %w", err)
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { c.podChanged(obj, true, false) },
		UpdateFunc: func(_, obj any) { c.podChanged(obj, false, false) },
		DeleteFunc: func(obj any) { c.podChanged(obj, false, true) },
	}); err != nil {
		return nil, fmt.Errorf("job: %w", err)
	}
	c.loop = workloop.Loop[string]{Logger: cfg.Logger, Workers: cfg.Workers, KeyKind: "job", Queue: c.queue,
		Synced: []cache.InformerSynced{jobInformer.Informer().HasSynced, podInformer.Informer().HasSynced},
		Sync:   c.sync}
	return c, nil
}

// Run syncs Jobs until ctx ends.
func (c *Controller) Run(ctx context.Context) error { return c.loop.Run(ctx) }

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		c.loop.Log().Error("cannot key object", "err", err)
		return
	}
	c.queue.Add(key)
}

// podChanged wakes the Job that controls the pod and settles what that
// Job was waiting to see.
func (c *Controller) podChanged(obj any, added, deleted bool) {
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
	if ref == nil && hasTrackingFinalizer(pod) && !deleted {
		// Orphaned (its Job deleted with propagationPolicy Orphan):
		// nothing will count it.
		c.queue.Add(orphanPodPrefix + pod.Namespace + "/" + pod.Name)
		return
	}
	if ref == nil || ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return
	}
	key := pod.Namespace + "/" + ref.Name
	if hasTrackingFinalizer(pod) && !deleted {
		if job, err := c.jobLister.Jobs(pod.Namespace).Get(ref.Name); err != nil || job.UID != ref.UID {
			// Its Job is gone: nothing will count the pod, which must
			// not be kept by the finalizer.
			c.queue.Add(orphanPodPrefix + pod.Namespace + "/" + pod.Name)
			return
		}
	}
	c.mu.Lock()
	if p := c.pending[key]; p != nil {
		if added && p.creations > 0 {
			p.creations--
		}
		if deleted || !hasTrackingFinalizer(pod) {
			p.finalizers.Delete(pod.UID)
		}
	}
	c.mu.Unlock()
	c.queue.Add(key)
}

// pendingFor returns key's record of unseen writes, creating it.
func (c *Controller) pendingFor(key string) *pendingWrites {
	p := c.pending[key]
	if p == nil {
		p = &pendingWrites{finalizers: sets.New[types.UID]()}
		c.pending[key] = p
	}
	return p
}

// creationsSettled reports whether key's pod creations have all been seen
// (or waited for long enough).
func (c *Controller) creationsSettled(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending[key]
	return p == nil || p.creations <= 0 || c.clock.Since(p.at) > expectationsTTL
}

func (c *Controller) expectCreations(key string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pendingFor(key)
	p.creations, p.at = n, c.clock.Now()
}

func (c *Controller) creationFailed(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pending[key]; p != nil && p.creations > 0 {
		p.creations--
	}
}

// finalizerRemovalPending reports whether the controller removed uid's
// tracking finalizer and the cache does not show it yet.
func (c *Controller) finalizerRemovalPending(key string, uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending[key]
	return p != nil && p.finalizers.Has(uid)
}

func (c *Controller) expectFinalizerRemoval(key string, uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pendingFor(key).finalizers.Insert(uid)
}

// forget drops what the controller remembers of a finished or deleted
// Job.
func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, key)
	delete(c.backOff, key)
}
