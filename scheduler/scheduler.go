package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/tinykube/tinykube/scheduler/framework"
	schedcache "github.com/tinykube/tinykube/scheduler/internal/cache"
	"github.com/tinykube/tinykube/scheduler/internal/queue"
	"github.com/tinykube/tinykube/scheduler/plugins"
)

// Config configures a Scheduler. Client and Informers are required.
type Config struct {
	// Client binds pods, patches their status and (when Recorder is nil)
	// records events.
	Client kubernetes.Interface
	// Informers is the shared factory the scheduler takes its pod, node
	// and service informers from. Run starts it (starting an already
	// started factory is harmless).
	Informers informers.SharedInformerFactory
	// Recorder records Scheduled and FailedScheduling events; when nil, the
	// scheduler builds an event broadcaster on Client and shuts it down
	// when Run returns.
	Recorder record.EventRecorder
	// Clock drives backoff; defaults to the real clock.
	Clock clock.WithTicker
	// SchedulerName is the spec.schedulerName of the pods this scheduler
	// places; default "default-scheduler". Pods with an empty name are
	// placed by the default scheduler.
	SchedulerName string
	// Registry and Profile choose the plugins; default plugins.NewRegistry()
	// and plugins.DefaultProfile().
	Registry framework.Registry
	Profile  *framework.Profile
	// PercentageOfNodesToScore bounds how many feasible nodes are searched
	// for in big clusters before scoring; 0 is upstream's adaptive default
	// (50% minus 1% per 125 nodes, at least 5%, at least 100 nodes).
	PercentageOfNodesToScore int32
	// InitialBackoff and MaxBackoff bound the retry delay of unschedulable
	// pods; defaults 1s and 10s.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// BindWorkers is the number of goroutines that make binding and status
	// API calls off the scheduling loop; default 128. Binding is latency
	// bound (each write waits for a storage commit), so many run at once.
	BindWorkers int
}

// shutdownGrace is how long Run lets started API calls finish after its
// context ends.
const shutdownGrace = 2 * time.Second

// Scheduler binds pending pods to nodes.
type Scheduler struct {
	client        kubernetes.Interface
	informers     informers.SharedInformerFactory
	recorder      record.EventRecorder
	broadcaster   record.EventBroadcaster
	clock         clock.WithTicker
	schedulerName string
	percentage    int32
	bindWorkers   int

	fw        *framework.Framework
	cache     *schedcache.Cache
	queue     *queue.Queue
	podLister corelisters.PodLister
	synced    []cache.InformerSynced

	// tasks carries API calls to the bind workers.
	tasks chan func(context.Context)
	ready chan struct{}

	// nextStartNodeIndex rotates where the search for feasible nodes
	// starts; only the scheduling loop touches it.
	nextStartNodeIndex int
}

type handle struct {
	f informers.SharedInformerFactory
}

func (h handle) Informers() informers.SharedInformerFactory { return h.f }

// New validates cfg, builds the plugins and registers the informer event
// handlers. Nothing runs until Run.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Client == nil {
		return nil, errors.New("scheduler: Config.Client is required")
	}
	if cfg.Informers == nil {
		return nil, errors.New("scheduler: Config.Informers is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.SchedulerName == "" {
		cfg.SchedulerName = corev1.DefaultSchedulerName
	}
	if cfg.Registry == nil {
		cfg.Registry = plugins.NewRegistry()
	}
	profile := plugins.DefaultProfile()
	if cfg.Profile != nil {
		profile = *cfg.Profile
	}
	if cfg.PercentageOfNodesToScore < 0 || cfg.PercentageOfNodesToScore > 100 {
		return nil, fmt.Errorf("scheduler: PercentageOfNodesToScore %d is not in [0, 100]", cfg.PercentageOfNodesToScore)
	}
	if cfg.BindWorkers <= 0 {
		cfg.BindWorkers = 128
	}
	fw, err := framework.New(cfg.Registry, profile, handle{cfg.Informers})
	if err != nil {
		return nil, err
	}
	s := &Scheduler{
		client:        cfg.Client,
		informers:     cfg.Informers,
		recorder:      cfg.Recorder,
		clock:         cfg.Clock,
		schedulerName: cfg.SchedulerName,
		percentage:    cfg.PercentageOfNodesToScore,
		bindWorkers:   cfg.BindWorkers,
		fw:            fw,
		cache:         schedcache.New(),
		queue: queue.New(queue.Config{
			Clock:          cfg.Clock,
			InitialBackoff: cfg.InitialBackoff,
			MaxBackoff:     cfg.MaxBackoff,
		}),
		tasks: make(chan func(context.Context), 1024),
		ready: make(chan struct{}),
	}
	if s.recorder == nil {
		s.broadcaster = record.NewBroadcaster()
		s.recorder = s.broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: cfg.SchedulerName})
	}
	if err := s.addEventHandlers(); err != nil {
		return nil, err
	}
	return s, nil
}

// Ready is closed once the informers have synced and the scheduler starts
// placing pods.
func (s *Scheduler) Ready() <-chan struct{} { return s.ready }

// Run starts the informers, waits for them to sync, and schedules pods
// until ctx ends. In-flight API calls are finished before it returns.
func (s *Scheduler) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	if s.broadcaster != nil {
		s.broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.client.CoreV1().Events("")})
		defer s.broadcaster.Shutdown()
	}
	s.informers.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return fmt.Errorf("scheduler: informers did not sync: %w", ctx.Err())
	}
	var wg sync.WaitGroup
	// API calls already started may finish after ctx ends, for a short
	// grace; queued ones are dropped (a pod assumed but never bound stays
	// pending for the next start).
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	for range s.bindWorkers {
		wg.Go(func() {
			for task := range s.tasks {
				if ctx.Err() != nil {
					continue
				}
				task(workCtx)
			}
		})
	}
	wg.Go(func() { s.queue.Run(ctx, time.Second) })
	close(s.ready)
	logger.V(1).Info("scheduler started", "schedulerName", s.schedulerName)
	for s.scheduleOne(ctx) {
	}
	s.queue.Close()
	close(s.tasks)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-s.clock.After(shutdownGrace):
		cancelWork()
		<-done
	}
	return nil
}
