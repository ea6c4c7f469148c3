package cronjob

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Name is the component name events are recorded under, as upstream.
const Name = "cronjob-controller"

var controllerKind = batchv1.SchemeGroupVersion.WithKind("CronJob")

// Config is what New needs.
type Config struct {
	// Client creates and deletes Jobs and writes CronJob status. Required.
	Client kubernetes.Interface
	// Informers gives the CronJob and Job informers; whoever owns it
	// starts it. Required.
	Informers informers.SharedInformerFactory
	// Recorder records events as "cronjob-controller". Required.
	Recorder record.EventRecorder
	// Clock decides when schedules are due; nil is the real clock. The
	// queue's delays follow it, so a fake clock drives the schedule.
	Clock clock.WithTicker
	// Workers is how many keys sync at once (upstream's --concurrent-*
	// flag); 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller runs CronJobs. Create it with New, start it with Run.
type Controller struct {
	client   kubernetes.Interface
	recorder record.EventRecorder
	clock    clock.WithTicker

	cronJobLister batchlisters.CronJobLister
	jobLister     batchlisters.JobLister
	queue         workqueue.TypedRateLimitingInterface[string]
	loop          workloop.Loop[string]
}

// New validates cfg and registers the controller's event handlers.
func New(cfg Config) (*Controller, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("cronjob: Config.Client is required")
	case cfg.Informers == nil:
		return nil, errors.New("cronjob: Config.Informers is required")
	case cfg.Recorder == nil:
		return nil, errors.New("cronjob: Config.Recorder is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	cjInformer := cfg.Informers.Batch().V1().CronJobs()
	jobInformer := cfg.Informers.Batch().V1().Jobs()
	c := &Controller{
		client:        cfg.Client,
		recorder:      cfg.Recorder,
		clock:         cfg.Clock,
		cronJobLister: cjInformer.Lister(),
		jobLister:     jobInformer.Lister(),
		queue:         workloop.NewQueue[string]("cronjob", cfg.Clock),
	}
	if _, err := cjInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	}); err != nil {
		return nil, fmt.Errorf("cronjob: %w", err)
	}
	if _, err := jobInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.jobChanged,
		UpdateFunc: func(_, obj any) { c.jobChanged(obj) },
		DeleteFunc: c.jobChanged,
	}); err != nil {
		return nil, fmt.Errorf("cronjob: %w", err)
	}
	c.loop = workloop.Loop[string]{Logger: cfg.Logger, Workers: cfg.Workers, KeyKind: "cronjob", Queue: c.queue,
		Synced: []cache.InformerSynced{cjInformer.Informer().HasSynced, jobInformer.Informer().HasSynced},
		Sync:   c.sync}
	return c, nil
}

// Run syncs CronJobs until ctx ends.
func (c *Controller) Run(ctx context.Context) error { return c.loop.Run(ctx) }

func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		c.loop.Log().Error("cannot key object", "err", err)
		return
	}
	c.queue.Add(key)
}

// jobChanged wakes the CronJob that controls the Job.
func (c *Controller) jobChanged(obj any) {
	job, ok := obj.(*batchv1.Job)
	if !ok {
		tomb, ok := obj.(cache.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if job, ok = tomb.Obj.(*batchv1.Job); !ok {
			return
		}
	}
	ref := metav1.GetControllerOf(job)
	if ref == nil || ref.Kind != controllerKind.Kind || ref.APIVersion != controllerKind.GroupVersion().String() {
		return
	}
	c.queue.Add(job.Namespace + "/" + ref.Name)
}
